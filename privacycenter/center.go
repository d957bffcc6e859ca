package privacycenter

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/*
var assetFS embed.FS

// DefaultPrefix is where the pages are mounted unless WithPrefix says
// otherwise.
const DefaultPrefix = "/privacy"

// DefaultPageSize is how many requests one page of the admin queue shows.
const DefaultPageSize = 50

// ContentSecurityPolicy is the Content-Security-Policy of every page: the
// center's own stylesheet and scripts only, no inline code, forms posting
// to the same origin, never framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ErasureCookie keeps, in the browser that asked for an erasure, the
// request's ID (random, no personal data), so that the page can show
// the result once the user is signed out.
const ErasureCookie = "steward_erasure"

// AuditLogger records audit events; *audit.Logger satisfies it.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// Holds places and releases legal holds; retention.AuditedHolds (which
// audits each change first) satisfies it, and should be what is given.
type Holds interface {
	Place(ctx context.Context, h retention.Hold) error
	Release(ctx context.Context, userID string) error
	Get(ctx context.Context, userID string) (retention.Hold, bool, error)
}

// Option configures a Center.
type Option func(*Center) error

// WithPrefix sets the path the pages live under (default DefaultPrefix):
// "/" + segments, without a trailing slash.
func WithPrefix(prefix string) Option {
	return func(c *Center) error {
		if !strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") || strings.ContainsAny(prefix, "{}? #") {
			return fmt.Errorf("%w: WithPrefix(%q): want a path such as /privacy, without a trailing slash", ErrInvalidConfig, prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithPolicyVersion sets the current version of the privacy policy
// (default 1): consent is recorded under it, and the banner asks again
// every user whose latest decision on some purpose was made under an
// older version.
func WithPolicyVersion(v int) Option {
	return func(c *Center) error {
		if v < 0 {
			return fmt.Errorf("%w: WithPolicyVersion(%d): negative", ErrInvalidConfig, v)
		}
		c.policy = v
		return nil
	}
}

// WithAuthorizer decides who may open the admin pages: principals
// allowed privacy.AdminPermission (admin:users). The default is
// rbac.Default(), the default policy. Give the privacy.Service the same
// one (privacy.WithAuthorizer), so that administrators may cancel.
func WithAuthorizer(a privacy.Authorizer) Option {
	return func(c *Center) error {
		if a == nil {
			return fmt.Errorf("%w: WithAuthorizer: nil", ErrInvalidConfig)
		}
		c.authz = a
		return nil
	}
}

// WithAudit writes the center's own audit events: data_access when an
// administrator looks a user up, access_denied when someone without
// admin:users opens an admin page. When l is an *audit.Logger, its
// Pseudonymizer also names the subjects of open requests on the admin
// pages (see WithPseudonymizer).
func WithAudit(l AuditLogger) Option {
	return func(c *Center) error {
		if l == nil {
			return fmt.Errorf("%w: WithAudit: nil", ErrInvalidConfig)
		}
		c.audit = l
		return nil
	}
}

// WithAuditReader lets the admin pages read the audit trail: each
// request's events in its timeline, a looked-up user's events, and the
// chain's status (audit.Verify). sqlstore's AuditSink and
// audit.MemorySink are Readers. The timeline reads the trail from its
// start, so it costs a pass over the events.
func WithAuditReader(r audit.Reader) Option {
	return func(c *Center) error {
		if r == nil {
			return fmt.Errorf("%w: WithAuditReader: nil", ErrInvalidConfig)
		}
		c.reader = r
		return nil
	}
}

// WithHolds enables placing and releasing legal holds from a request's
// admin page. Give retention.AuditedHolds, so that every change is
// audited before it is made.
func WithHolds(h Holds) Option {
	return func(c *Center) error {
		if h == nil {
			return fmt.Errorf("%w: WithHolds: nil", ErrInvalidConfig)
		}
		c.holds = h
		return nil
	}
}

// WithPseudonymizer names the subjects of requests on the admin pages,
// and finds a looked-up user's audit events: give the audit logger's
// (*audit.Logger.Pseudonymizer), so that pseudonyms on the pages match
// those in the trail and in finished requests. The default is the
// WithAudit logger's; without either, subjects of open requests are
// shown as "hidden".
func WithPseudonymizer(p *audit.Pseudonymizer) Option {
	return func(c *Center) error {
		if p == nil {
			return fmt.Errorf("%w: WithPseudonymizer: nil", ErrInvalidConfig)
		}
		c.pseudo = p
		return nil
	}
}

// WithNow sets the clock (default time.Now), used for days left and
// countdowns; give the privacy.Service the same.
func WithNow(now func() time.Time) Option {
	return func(c *Center) error {
		if now == nil {
			return fmt.Errorf("%w: WithNow: nil", ErrInvalidConfig)
		}
		c.now = now
		return nil
	}
}

// WithPageSize sets how many requests a page of the admin queue shows
// (default DefaultPageSize).
func WithPageSize(n int) Option {
	return func(c *Center) error {
		if n < 1 {
			return fmt.Errorf("%w: WithPageSize(%d): want at least 1", ErrInvalidConfig, n)
		}
		c.pageSize = n
		return nil
	}
}

// WithTrustedOrigins lets forms be posted from other origins of the
// application, such as "https://app.example.com" when the pages are
// served from "https://privacy.example.com" (see
// http.CrossOriginProtection.AddTrustedOrigin). Every other cross-origin
// post is refused.
func WithTrustedOrigins(origins ...string) Option {
	return func(c *Center) error {
		for _, o := range origins {
			if err := c.cop.AddTrustedOrigin(o); err != nil {
				return fmt.Errorf("%w: WithTrustedOrigins: %w", ErrInvalidConfig, err)
			}
		}
		return nil
	}
}

// WithTitle sets the name shown at the top of every page (default
// "Privacy center").
func WithTitle(title string) Option {
	return func(c *Center) error {
		if strings.TrimSpace(title) == "" {
			return fmt.Errorf("%w: WithTitle: empty", ErrInvalidConfig)
		}
		c.title = title
		return nil
	}
}

// WithSignInURL sets where the signed-out page sends people to sign in.
func WithSignInURL(u string) Option {
	return func(c *Center) error {
		c.signIn = u
		return nil
	}
}

// WithPurposeText sets how a consent purpose is named and explained on
// the pages; the built-in purposes have English defaults.
func WithPurposeText(p consent.Purpose, label, description string) Option {
	return func(c *Center) error {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: WithPurposeText: %w", ErrInvalidConfig, err)
		}
		c.purposeText[p] = purposeText{label, description}
		return nil
	}
}

// WithLogger sets where failures the pages cannot show are logged
// (default slog.Default()). Errors reaching it never hold a user ID.
func WithLogger(l *slog.Logger) Option {
	return func(c *Center) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger: nil", ErrInvalidConfig)
		}
		c.log = l
		return nil
	}
}

// ErrInvalidConfig reports a bad argument to New; the message names it.
var ErrInvalidConfig = errors.New("privacycenter: invalid configuration")

type purposeText struct{ label, description string }

// Center serves the privacy center's pages. It is safe for concurrent
// use; all its state is in the Service's and the Manager's stores.
type Center struct {
	svc      *privacy.Service
	consents *consent.Manager
	prefix   string
	policy   int
	authz    privacy.Authorizer
	audit    AuditLogger
	reader   audit.Reader
	holds    Holds
	pseudo   *audit.Pseudonymizer
	now      func() time.Time
	pageSize int
	cop      *http.CrossOriginProtection
	title    string
	signIn   string
	log      *slog.Logger

	purposeText map[consent.Purpose]purposeText
	pages       map[string]*template.Template
	banner      *template.Template
	handler     http.Handler
}

// New returns a Center over svc (requests, exports, erasure) and
// consents (consent toggles and the banner). Both are required; the
// session middleware that puts the principal in each request's context
// (clerkadapter's SessionAuth.Handler, rbac.WithPrincipal) goes in front
// of Handler.
func New(svc *privacy.Service, consents *consent.Manager, opts ...Option) (*Center, error) {
	if svc == nil {
		return nil, fmt.Errorf("%w: nil privacy.Service", ErrInvalidConfig)
	}
	if consents == nil {
		return nil, fmt.Errorf("%w: nil consent.Manager", ErrInvalidConfig)
	}
	c := &Center{
		svc: svc, consents: consents, prefix: DefaultPrefix, policy: 1, authz: rbac.Default(),
		now: time.Now, pageSize: DefaultPageSize, cop: http.NewCrossOriginProtection(),
		title: "Privacy center", log: slog.Default(),
		purposeText: map[consent.Purpose]purposeText{
			consent.Marketing:  {"Marketing messages", "News, offers and product updates by email."},
			consent.Analytics:  {"Analytics", "Measuring how the product is used, so that it can be improved."},
			consent.ThirdParty: {"Sharing with third parties", "Sharing your data with partners, which California law counts as a sale or sharing."},
		},
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.pseudo == nil {
		if l, ok := c.audit.(interface{ Pseudonymizer() *audit.Pseudonymizer }); ok {
			c.pseudo = l.Pseudonymizer()
		}
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.handler = c.routes()
	return c, nil
}

// Prefix returns the path the pages live under.
func (c *Center) Prefix() string { return c.prefix }

// PolicyVersion returns the current policy version (WithPolicyVersion).
func (c *Center) PolicyVersion() int { return c.policy }

// Handler serves every page under the prefix. Mount it for the prefix
// and everything below it:
//
//	mux.Handle("/privacy", center.Handler())
//	mux.Handle("/privacy/", center.Handler())
//
// Every answer carries ContentSecurityPolicy and Cache-Control:
// no-store (assets aside); every form that changes something is a POST
// refused when it comes from another origin (http.CrossOriginProtection,
// WithTrustedOrigins); requests carrying Global Privacy Control are
// honoured (consent.Manager.HonourGPC).
func (c *Center) Handler() http.Handler { return c.handler }

func (c *Center) routes() http.Handler {
	mux := http.NewServeMux()
	p := c.prefix
	handle := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+p+path, h)
	}
	handle("GET ", c.overview)
	handle("GET /{$}", c.overview)
	handle("GET /export", c.exportPage)
	handle("POST /export", c.startExport)
	handle("GET /export/download", c.download)
	handle("GET /delete", c.deletePage)
	handle("POST /delete", c.confirmDelete)
	handle("POST /delete/cancel", c.cancelDelete)
	handle("GET /consent", c.consentPage)
	handle("POST /consent", c.saveConsent)
	handle("POST /consent/banner", c.saveBanner)
	handle("GET /requests", c.requestsPage)
	handle("GET /admin", c.admin(c.queuePage))
	handle("GET /admin/requests.csv", c.admin(c.queueCSV))
	handle("GET /admin/requests/{id}", c.admin(c.requestPage))
	handle("POST /admin/requests/{id}/{action}", c.admin(c.requestAction))
	handle("GET /admin/lookup", c.admin(c.lookupPage))
	handle("GET /admin/audit", c.admin(c.auditPage))
	assets, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix(p+"/assets/", http.FileServerFS(assets))
	mux.Handle("GET "+p+"/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		// A page that exists for another method answers 405.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != p+"/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			c.fail(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page does not answer "+r.Method+".")
			return
		}
		c.fail(w, r, http.StatusNotFound, "Page not found", "There is no such page in the privacy center.")
	})

	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was refused. Open the page here and send it again.")
	}))
	gpc := c.consents.HonourGPC(func(r *http.Request, err error) {
		c.log.ErrorContext(r.Context(), "privacycenter: recording a Global Privacy Control opt-out", "err", err)
	})
	inner := c.cop.Handler(gpc(mux))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		inner.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title     string
	AppTitle  string
	Prefix    string
	Nav       string
	Signed    bool
	Admin     bool
	Policy    int
	Notice    string
	Error     string
	Banner    template.HTML
	SignInURL string
	Data      any
}

var funcs = template.FuncMap{
	"when":   formatTime,
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	"short":  shortPseudonym,
	"status": statusText,
	"kind":   kindText,
	"step":   stepText,
	"detail": func(e audit.Event, key string) string {
		if v, ok := e.Details[key]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	},
}

func (c *Center) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "banner" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/banner.html", n)
		if err != nil {
			return fmt.Errorf("privacycenter: template %s: %w", n, err)
		}
		c.pages[base] = t
	}
	c.banner, err = template.New("banner.html").Funcs(funcs).ParseFS(templateFS, "templates/banner.html")
	return err
}

// render writes the page called name with status.
func (c *Center) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	t, ok := c.pages[name]
	if !ok {
		panic("privacycenter: no template " + name)
	}
	pg.AppTitle, pg.Prefix, pg.Policy, pg.SignInURL = c.title, c.prefix, c.policy, c.signIn
	if p, ok := principal(r); ok {
		pg.Signed = true
		pg.Admin = c.authz.Allowed(p, privacy.AdminPermission)
		if name != "consent" && pg.Banner == "" {
			pg.Banner, _ = c.Banner(r)
		}
	}
	if pg.Notice == "" {
		pg.Notice = notices[r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pg); err != nil {
		c.log.ErrorContext(r.Context(), "privacycenter: rendering a page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page.
func (c *Center) fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	c.render(w, r, status, "error", page{Title: title, Data: message})
}

// internal logs err and renders a 500 page that does not show it.
func (c *Center) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.log.ErrorContext(r.Context(), "privacycenter: "+what, "err", err)
	c.fail(w, r, http.StatusInternalServerError, "Something went wrong",
		"We could not "+what+". Nothing was changed; please try again in a moment.")
}

// redirect answers a form post with 303 to path under the prefix, with
// done naming the notice to show.
func (c *Center) redirect(w http.ResponseWriter, r *http.Request, path, done string) {
	u := c.prefix + path
	if done != "" {
		u += "?done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// notices are the messages shown after a redirect (?done=).
var notices = map[string]string{
	"export-started":   "Your download is being prepared. This page shows when it is ready.",
	"consent-saved":    "Your choices were saved.",
	"consent-same":     "Nothing changed: your choices were already these.",
	"deletion-cancel":  "The deletion of your account was cancelled. Nothing was deleted.",
	"deletion-planned": "Your account will be deleted when the waiting period ends. You can still cancel it here.",
	"resumed":          "The request was run again.",
	"scheduled":        "The request is in its waiting period: nothing runs before it ends.",
	"extended":         "The deadline was extended and the reason recorded.",
	"cancelled":        "The request was cancelled and the reason recorded.",
	"held":             "A legal hold was placed on the user; their erasure will not run while it lasts.",
	"released":         "The legal hold was released.",
}

// principal returns the signed-in principal of r.
func principal(r *http.Request) (rbac.Principal, bool) {
	p, ok := rbac.PrincipalFrom(r.Context())
	return p, ok && p.UserID != ""
}

// clock returns the current time in UTC.
func (c *Center) clock() time.Time { return c.now().UTC() }
