package privacycenter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
)

// A user asks for a download, the page shows it ready, and the file the
// browser saves holds their records.
func TestBrowserUserDownloadsTheirData(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID}); err != nil {
		t.Fatal(err)
	}
	s.signIn(t, ctx, "user")
	s.open(t, ctx, "/privacy/export")
	if st := submit(t, ctx, `form[action$="/export"] button`); st != http.StatusOK {
		t.Fatalf("preparing the download answered %d", st)
	}
	wantContains(t, "notice", text(t, ctx, ".notice"), "being prepared")
	// The page reloads itself while the export is pending.
	waitFor(t, "the download link", func() bool {
		ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("a.download") !== null`))
		return ok
	})
	shot(t, ctx, "export-ready")
	do(t, ctx, chromedp.Click(chromedp.CSS("a.download")))
	var file string
	waitFor(t, "the downloaded file", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "user-data-*.json"))
		if len(m) == 1 {
			file = m[0]
		}
		return file != ""
	})
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc privacy.ExportDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the downloaded file is not an export document: %v\n%s", err, b)
	}
	if filepath.Base(file) != "user-data-"+w.user+".json" || doc.Identity.ID != w.user {
		t.Errorf("downloaded %s for identity %q, want the user's own", filepath.Base(file), doc.Identity.ID)
	}
	got := map[string]int{}
	for _, groups := range doc.Data {
		for _, g := range groups {
			got[g.Category] += len(g.Records)
		}
	}
	if diff := cmp.Diff(map[string]int{"orders": 2, "activityLog": 1}, got); diff != "" {
		t.Errorf("records by category in the file (-want +got):\n%s", diff)
	}
}

// A user deletes their account, cancels within the grace period, deletes
// again, and once the grace period is over and the erasure has run they
// are signed out, with the result on the page.
func TestBrowserUserDeletesCancelsDeletesAgainAndIsSignedOut(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	s.signIn(t, ctx, "user")

	s.open(t, ctx, "/privacy/delete")
	wantContains(t, "what will be deleted", text(t, ctx, "main"), "orders (orders): 2 records")
	do(t, ctx, chromedp.Click(chromedp.ID("confirm")))
	if st := submit(t, ctx, "button.danger"); st != http.StatusOK {
		t.Fatalf("confirming answered %d", st)
	}
	wantContains(t, "after confirming", text(t, ctx, "#grace-title"), "will be deleted")
	if !visible(t, ctx, ".countdown") || !strings.Contains(text(t, ctx, ".countdown"), "min") {
		t.Errorf("no running countdown: %q", text(t, ctx, ".lead"))
	}
	shot(t, ctx, "delete-grace")
	first := w.openErasure(w.user).ID

	if st := submit(t, ctx, `form[action$="/delete/cancel"] button`); st != http.StatusOK {
		t.Fatalf("cancelling answered %d", st)
	}
	wantContains(t, "after cancelling", text(t, ctx, ".notice"), "cancelled")
	if r, _ := w.svc.Request(context.Background(), first); r.Status != privacy.StatusCancelled {
		t.Fatalf("the first erasure is %s after cancelling, want cancelled", r.Status)
	}
	if _, ok := w.clerk.User(w.user); !ok {
		t.Fatal("the account is gone after a cancelled deletion")
	}

	do(t, ctx, chromedp.Click(chromedp.ID("confirm")))
	submit(t, ctx, "button.danger")
	second := w.openErasure(w.user)
	if second.ID == first || !second.NotBefore.After(w.clock.Now()) {
		t.Fatalf("the second deletion is %+v, want a new request in its grace period", second.LogValue())
	}
	// The grace period ends; the background runner carries it out.
	w.clock.Advance(grace + time.Minute)
	if n, err := w.svc.ResumePending(context.Background()); err != nil || n != 1 {
		t.Fatalf("ResumePending = %d, %v; want the erasure done", n, err)
	}
	if st := s.open(t, ctx, "/privacy/"); st != http.StatusUnauthorized {
		t.Errorf("the privacy center after the erasure answered %d, want 401 (signed out)", st)
	}
	wantContains(t, "heading", text(t, ctx, "h1"), "signed out")
	wantContains(t, "result", text(t, ctx, "#result-title"), "Your account was deleted")
	if present(t, ctx, "nav") {
		t.Error("the signed-out page shows the signed-in navigation")
	}
	shot(t, ctx, "signed-out")
	if _, ok := w.clerk.User(w.user); ok {
		t.Error("the account is still at Clerk")
	}
	if got := w.orders.Len(w.user); got != 0 {
		t.Errorf("%d order records left", got)
	}
}

// Consent toggles persist across a reload and are mirrored to the
// identity provider's public metadata.
func TestBrowserConsentTogglesPersistAndMirror(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	s.signIn(t, ctx, "user")
	s.open(t, ctx, "/privacy/consent")
	do(t, ctx, chromedp.Click(chromedp.ID("purpose-marketing")), chromedp.Click(chromedp.ID("purpose-analytics")))
	if st := submit(t, ctx, `form[action$="/consent"] button`); st != http.StatusOK {
		t.Fatalf("saving answered %d", st)
	}
	wantContains(t, "notice", text(t, ctx, ".notice"), "saved")
	do(t, ctx, chromedp.Reload())
	checked := run(t, ctx, chromedp.Evaluate[map[string]bool](`Object.fromEntries([...document.querySelectorAll("form input[type=checkbox]")].map(e => [e.name, e.checked]))`))
	if diff := cmp.Diff(map[string]bool{"marketing": true, "analytics": true, "third_party": false}, checked); diff != "" {
		t.Errorf("toggles after a reload (-want +got):\n%s", diff)
	}
	wantContains(t, "history", text(t, ctx, "#history-title + table"), "privacy_center")
	shot(t, ctx, "consent")
	u, _ := w.clerk.User(w.user)
	m, _ := u.PublicMetadata["consent"].(map[string]any)
	got := map[string]any{"marketing": m["marketing"], "analytics": m["analytics"], "thirdParty": m["thirdParty"]}
	if diff := cmp.Diff(map[string]any{"marketing": true, "analytics": true, "thirdParty": false}, got); diff != "" {
		t.Errorf("public metadata consent at Clerk (-want +got):\n%s", diff)
	}
}

// An administrator filters the queue to overdue requests, extends one
// with a reason and sees its days-left badge turn from red to green.
func TestBrowserAdminFiltersOverdueExtendsAndTheBadgeChanges(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	bg := context.Background()
	var overdue string
	for i, days := range []int{40, 3} {
		u := w.clerk.AddUser(userNamed(i))
		id, err := w.svc.QueueErasure(bg, u.ID, privacy.ReceivedAt(w.clock.Now().Add(-time.Duration(days)*24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if days == 40 {
			overdue = id
		}
	}
	s.signIn(t, ctx, "admin")
	s.open(t, ctx, "/privacy/admin")
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.queue tbody tr").length`)); n != 2 {
		t.Errorf("the queue shows %d requests, want 2", n)
	}
	do(t, ctx, chromedp.Click(chromedp.ID("f-overdue")))
	submit(t, ctx, `form.filters button`)
	wantContains(t, "URL", run(t, ctx, chromedp.Location()), "overdue=1")
	rows := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.queue tbody tr")].map(r => r.querySelector("code").textContent + " " + r.querySelector(".badge").className + " " + r.querySelector(".badge").textContent)`))
	if len(rows) != 1 || !strings.HasPrefix(rows[0], overdue+" badge badge-red") || !strings.Contains(rows[0], "overdue") {
		t.Fatalf("overdue rows = %q, want the one overdue request with a red badge", rows)
	}
	shot(t, ctx, "admin-queue")
	submit(t, ctx, `table.queue a`)
	do(t, ctx, chromedp.SendKeys(chromedp.ID("extend-reason"), "complex request: records at three processors"))
	if st := submit(t, ctx, `form[action$="/extend"] button`); st != http.StatusOK {
		t.Fatalf("extending answered %d", st)
	}
	wantContains(t, "notice", text(t, ctx, ".notice"), "extended")
	badge := run(t, ctx, chromedp.Evaluate[string](`(function(){var b=document.querySelector(".facts .badge");return b.className+" "+b.textContent})()`))
	if !strings.HasPrefix(badge, "badge badge-ok") || !strings.Contains(badge, "days left") {
		t.Errorf("badge after extending = %q, want green with days left", badge)
	}
	wantContains(t, "facts", text(t, ctx, ".facts"), "complex request")
	shot(t, ctx, "admin-request")
	s.open(t, ctx, "/privacy/admin?overdue=1")
	wantContains(t, "overdue queue after extending", text(t, ctx, "main"), "No request matches")
	if r, _ := w.svc.Request(bg, overdue); r.ExtensionReason != "complex request: records at three processors" {
		t.Errorf("stored extension reason %q", r.ExtensionReason)
	}
}

// A user without admin:users gets 403 on the admin pages, audited.
func TestBrowserNonAdminGets403(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	s.signIn(t, ctx, "user")
	for _, path := range []string{"/privacy/admin", "/privacy/admin/lookup", "/privacy/admin/audit"} {
		if st := s.open(t, ctx, path); st != http.StatusForbidden {
			t.Errorf("%s answered %d, want 403", path, st)
		}
		wantContains(t, path+" heading", text(t, ctx, "h1"), "Not allowed")
	}
	if present(t, ctx, `nav a[href$="/admin"]`) {
		t.Error("the navigation links the admin pages for a user")
	}
	shot(t, ctx, "forbidden")
	denied := 0
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.AccessDenied {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d access_denied events, want 3", denied)
	}
}

// A form posted from another origin, with the user's cookie, is refused
// and changes nothing.
func TestBrowserCrossOriginFormIsRefused(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	s.signIn(t, ctx, "user")
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(rw, `<!DOCTYPE html><html lang="en"><head><title>Win a prize</title></head><body><main><h1>Win a prize</h1>
<form method="post" action="%s/privacy/delete"><input type="hidden" name="confirm" value="yes"><button id="go" type="submit">Claim</button></form>
</main></body></html>`, s.URL)
	}))
	defer evil.Close()
	do(t, ctx, chromedp.Navigate(evil.URL))
	if st := submit(t, ctx, "#go"); st != http.StatusForbidden {
		t.Errorf("the cross-origin post answered %d, want 403", st)
	}
	wantContains(t, "heading", text(t, ctx, "h1"), "Request refused")
	shot(t, ctx, "cross-origin-refused")
	for r, err := range w.svc.Requests(context.Background(), privacy.RequestFilter{UserID: w.user}) {
		t.Errorf("the refused post made request %s (%v)", r.ID, err)
	}
	// The same form from the center's own page goes through.
	s.open(t, ctx, "/privacy/delete")
	do(t, ctx, chromedp.Click(chromedp.ID("confirm")))
	if st := submit(t, ctx, "button.danger"); st != http.StatusOK {
		t.Errorf("the same-origin post answered %d", st)
	}
	w.openErasure(w.user)
}

// The banner on an application page records a choice through consent,
// is not shown again, and asks again once the policy version changes.
func TestBrowserBannerAsksOncePerPolicyVersion(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	s.signIn(t, ctx, "user")
	s.open(t, ctx, "/")
	if !visible(t, ctx, "#steward-consent-banner") {
		t.Fatal("no banner for a user who never chose")
	}
	wantContains(t, "banner", text(t, ctx, "#steward-consent-banner"), "version 1")
	shot(t, ctx, "banner")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#steward-consent-banner button[value="reject"]`)))
	waitFor(t, "the banner to close", func() bool {
		hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("steward-consent-banner").hidden`))
		return hidden
	})
	if diff := cmp.Diff([]string{"analytics=false/banner/v1", "marketing=false/banner/v1", "third_party=false/banner/v1"}, w.consentRecords(w.user)); diff != "" {
		t.Errorf("records after Reject all (-want +got):\n%s", diff)
	}
	for range 2 {
		s.open(t, ctx, "/")
		if present(t, ctx, "#steward-consent-banner") {
			t.Fatal("the banner asks again under the same policy version")
		}
	}
	s.open(t, ctx, "/privacy/")
	if present(t, ctx, "#steward-consent-banner") {
		t.Error("the center's pages ask again under the same policy version")
	}
	// Version 2 of the policy: the banner is back, and says so.
	v2, err := privacycenter.New(w.svc, w.cons, privacycenter.WithPolicyVersion(2), privacycenter.WithAudit(w.log))
	if err != nil {
		t.Fatal(err)
	}
	s.center.Store(v2)
	s.open(t, ctx, "/")
	if !visible(t, ctx, "#steward-consent-banner") {
		t.Fatal("no banner after the policy version changed")
	}
	wantContains(t, "banner", text(t, ctx, "#steward-consent-banner"), "version 2")
	// Without the script, the form posts and comes back.
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector("#steward-consent-banner form").replaceWith(document.querySelector("#steward-consent-banner form").cloneNode(true))`))
	do(t, ctx, chromedp.Click(chromedp.ID("banner-analytics")))
	if st := submit(t, ctx, `#steward-consent-banner button[value="save"]`); st != http.StatusOK {
		t.Fatalf("the banner's form post answered %d", st)
	}
	if loc := run(t, ctx, chromedp.Location()); loc != s.URL+"/" {
		t.Errorf("after the form post the browser is at %s, want back at %s/", loc, s.URL)
	}
	if present(t, ctx, "#steward-consent-banner") {
		t.Error("the banner asks again after the choice under version 2")
	}
	if ok, _ := w.cons.Allowed(context.Background(), w.user, consent.Analytics); !ok {
		t.Error("analytics not allowed after ticking it in the banner")
	}
}

// A browser sending Global Privacy Control ends with third_party
// withdrawn, recorded with source gpc and audited.
func TestBrowserGPCWithdrawsThirdParty(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	if _, err := w.cons.Update(context.Background(), w.user, map[consent.Purpose]bool{consent.ThirdParty: true, consent.Marketing: true},
		consent.Meta{PolicyVersion: 1, Source: "banner"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{consent.GPCHeader: "1"}}); err != nil {
		t.Fatal(err)
	}
	s.signIn(t, ctx, "user")
	s.open(t, ctx, "/privacy/consent")
	checked := run(t, ctx, chromedp.Evaluate[map[string]bool](`Object.fromEntries([...document.querySelectorAll("form input[type=checkbox]")].map(e => [e.name, e.checked]))`))
	if diff := cmp.Diff(map[string]bool{"marketing": true, "analytics": false, "third_party": false}, checked); diff != "" {
		t.Errorf("toggles under GPC (-want +got):\n%s", diff)
	}
	wantContains(t, "third_party hint", text(t, ctx, "#purpose-third_party-about"), "Global Privacy Control")
	wantContains(t, "history", text(t, ctx, "#history-title + table"), "gpc")
	shot(t, ctx, "gpc")
	if ok, err := w.cons.Allowed(context.Background(), w.user, consent.ThirdParty); ok || err != nil {
		t.Errorf("Allowed(third_party) = %v, %v under GPC; want false", ok, err)
	}
	gpc := 0
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.ConsentChange && e.Details["source"] == consent.SourceGPC {
			gpc++
		}
	}
	if gpc != 1 {
		t.Errorf("%d consent_change events with source gpc, want 1", gpc)
	}
	u, _ := w.clerk.User(w.user)
	if m, _ := u.PublicMetadata["consent"].(map[string]any); m["thirdParty"] != false {
		t.Errorf("mirror at Clerk: %v, want thirdParty false", m)
	}
}
