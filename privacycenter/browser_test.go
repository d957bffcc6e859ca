package privacycenter_test

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacycenter"
)

// Browser tests drive Debian's chromium (apt-get install chromium)
// through chromedp, one browser per test binary and a fresh browser
// context (cookies, storage) per test. Where no browser is installed
// they skip, unless STEWARD_BROWSER_TESTS=required (as .ci/run sets),
// which makes a missing browser a failure. STEWARD_CHROMIUM names the
// executable when it is not on PATH. STEWARD_SCREENSHOTS, a directory,
// receives each page's screenshot besides the test's temp dir (docs/
// keeps one per page, made this way).
const (
	requiredEnv    = "STEWARD_BROWSER_TESTS"
	chromiumEnv    = "STEWARD_CHROMIUM"
	screenshotsEnv = "STEWARD_SCREENSHOTS"
)

var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc
	browserErr    error
	browserDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if browserCancel != nil {
		browserCancel()
	}
	if browserDir != "" {
		for range 50 { // the browser's children may still be writing
			if os.RemoveAll(browserDir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func findChromium() (string, error) {
	if p := os.Getenv(chromiumEnv); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH (install Debian's chromium: apt-get install -y chromium)")
}

func startBrowser() {
	path, err := findChromium()
	if err != nil {
		browserErr = err
		return
	}
	browserDir, err = os.MkdirTemp("", "steward-chromium-")
	if err != nil {
		browserErr = err
		return
	}
	// The flags a closed network needs: nothing reaches out on its own.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(browserDir),
		chromedp.WindowSize(1200, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		browserErr = fmt.Errorf("starting %s: %w", path, err)
		return
	}
	browserCtx = ctx
	browserCancel = func() { cancelBrowser(); cancelAlloc() }
}

// tab returns a new tab in a fresh browser context of the shared browser,
// closed when the test ends; it skips (or, with STEWARD_BROWSER_TESTS=
// required, fails) when no browser can be started.
func tab(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests drive chromium")
	}
	browserOnce.Do(startBrowser)
	if browserErr != nil {
		if os.Getenv(requiredEnv) == "required" {
			t.Fatalf("browser tests are required (%s=required) but no browser starts: %v", requiredEnv, browserErr)
		}
		t.Skipf("skipping the browser test: %v; set %s=required to make this a failure", browserErr, requiredEnv)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// site is the center served over HTTP the way an application mounts it:
// clerkadapter's session middleware (fenced by the Service) in front of
// the mux, a sign-in route that sets Clerk's __session cookie for the
// demo accounts, and an application page carrying the consent banner.
type site struct {
	*httptest.Server
	w      *world
	center atomic.Pointer[privacycenter.Center]
}

func newSite(t *testing.T, w *world) *site {
	t.Helper()
	s := &site{w: w}
	s.center.Store(w.center)
	auth := clerkadapter.NewSessionAuth(w.clerk.ClientConfig(), &clerkadapter.SessionOptions{
		Roles:             clerkadapter.NewLiveRoles(w.idp, nil),
		AuthorizedParties: []string{clerktest.DefaultAuthorizedParty},
		Fence:             w.svc,
	})
	mux := http.NewServeMux()
	center := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { s.center.Load().Handler().ServeHTTP(rw, r) })
	mux.Handle("/privacy", center)
	mux.Handle("/privacy/", center)
	mux.HandleFunc("GET /sign-in", func(rw http.ResponseWriter, r *http.Request) {
		id := map[string]string{"user": w.user, "admin": w.admin}[r.URL.Query().Get("as")]
		if id == "" {
			http.Error(rw, "as=user or as=admin", http.StatusBadRequest)
			return
		}
		http.SetCookie(rw, &http.Cookie{Name: clerkadapter.SessionCookie, Value: w.clerk.SessionToken(id), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(rw, r, "/privacy/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		c := s.center.Load()
		banner, err := c.Banner(r)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = appPage.Execute(rw, map[string]any{"Banner": banner, "Prefix": c.Prefix()})
	})
	s.Server = httptest.NewServer(auth.Handler(mux))
	t.Cleanup(s.Close)
	return s
}

// appPage is an application's own page with the banner partial.
var appPage = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Example app</title>
<link rel="stylesheet" href="{{.Prefix}}/assets/center.css">
<script src="{{.Prefix}}/assets/banner.js" defer></script></head>
<body><main><h1>Example app</h1><p>An application page that carries the consent banner.</p></main>
{{.Banner}}</body></html>`))

// signIn sets the session cookie of who ("user" or "admin").
func (s *site) signIn(t *testing.T, ctx context.Context, who string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(s.URL+"/sign-in?as="+who))
}

func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// open navigates to path and returns the answer's status.
func (s *site) open(t *testing.T, ctx context.Context, path string) int64 {
	t.Helper()
	return run(t, ctx, chromedp.NavigateResponse(s.URL+path)).Status
}

// submit clicks the button sel and waits for the page it leads to,
// returning its status.
func submit(t *testing.T, ctx context.Context, sel string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("clicking %s: %v", sel, err)
	}
	return resp.Status
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return run(t, ctx, chromedp.Text(chromedp.CSS(sel)))
}

// present reports whether sel matches an element now.
func present(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
}

// visible reports whether sel matches a rendered element now.
func visible(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function(){var e=document.querySelector(%q);if(!e||e.hidden)return false;var r=e.getBoundingClientRect();return r.width>0&&r.height>0})()`, sel)))
}

// shot saves a screenshot of the page as name.png in the test's temp
// dir.
func shot(t *testing.T, ctx context.Context, name string) { saveShot(t, ctx, name, false) }

// docShot is shot, also saved in STEWARD_SCREENSHOTS when set: the
// screenshots in docs/ are made this way.
func docShot(t *testing.T, ctx context.Context, name string) { saveShot(t, ctx, name, true) }

func saveShot(t *testing.T, ctx context.Context, name string, doc bool) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv(screenshotsEnv); d != "" && doc {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond every 100 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func wantContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to contain %q", what, got, want)
	}
}
