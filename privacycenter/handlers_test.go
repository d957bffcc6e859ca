package privacycenter_test

import (
	"context"
	"encoding/csv"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/retention"
)

// step is one request of a handler test and what must come back.
type step struct {
	name    string
	method  string
	path    string
	user    string // "user", "admin" or "" for nobody
	form    url.Values
	header  []string
	status  int
	has     []string // in the body
	hasNot  []string
	locates string // the Location header's prefix, for redirects
}

// run sends the steps in order against w, checking each answer, and the
// markup of every HTML page.
func (w *world) run(steps []step) {
	w.t.Helper()
	for _, st := range steps {
		user := map[string]string{"user": w.user, "admin": w.admin}[st.user]
		path := strings.NewReplacer("{user}", w.user).Replace(st.path)
		rec := w.call(st.method, path, user, st.form, st.header...)
		body := rec.Body.String()
		if rec.Code != st.status {
			w.t.Errorf("%s: %s %s answered %d, want %d\n%s", st.name, st.method, path, rec.Code, st.status, excerpt(body))
			continue
		}
		for _, s := range st.has {
			if !strings.Contains(body, s) {
				w.t.Errorf("%s: the body lacks %q\n%s", st.name, s, excerpt(body))
			}
		}
		for _, s := range st.hasNot {
			if strings.Contains(body, s) {
				w.t.Errorf("%s: the body holds %q", st.name, s)
			}
		}
		if st.locates != "" && !strings.HasPrefix(rec.Header().Get("Location"), st.locates) {
			w.t.Errorf("%s: Location %q, want it to start with %q", st.name, rec.Header().Get("Location"), st.locates)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); csp != privacycenter.ContentSecurityPolicy {
			w.t.Errorf("%s: Content-Security-Policy %q", st.name, csp)
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			for _, p := range checkMarkup(body, user != "" && rec.Code != http.StatusUnauthorized) {
				w.t.Errorf("%s: markup: %s", st.name, p)
			}
			// No page but the admin lookup shows the raw user ID, in a
			// URL or anywhere else.
			if !strings.Contains(path, "/admin/lookup") && strings.Contains(body, w.user) {
				w.t.Errorf("%s: the page holds the raw user ID", st.name)
			}
		}
	}
}

func excerpt(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestSelfServiceRoutes(t *testing.T) {
	w := newWorld(t)
	w.run([]step{
		{name: "signed out", method: "GET", path: "/privacy/", status: 401, has: []string{"You are signed out", `href="/sign-in"`}},
		{name: "overview without the slash", method: "GET", path: "/privacy", user: "user", status: 200, has: []string{"What we hold about you", "activityLog"}},
		{name: "overview", method: "GET", path: "/privacy/", user: "user", status: 200,
			has: []string{"<td>orders</td><td>orders</td><td class=\"num\">2</td>", "You have no open requests", `aria-current="page"`, "steward-consent-banner"}},
		{name: "requests, none yet", method: "GET", path: "/privacy/requests", user: "user", status: 200, has: []string{"You have made no requests"}},
		{name: "unknown page", method: "GET", path: "/privacy/nope", user: "user", status: 404, has: []string{"Page not found"}},
		{name: "wrong method", method: "DELETE", path: "/privacy/export", user: "user", status: 405},
		{name: "export page", method: "GET", path: "/privacy/export", user: "user", status: 200, has: []string{"Prepare my download", "You have not asked"}},
		{name: "a download that is not theirs", method: "GET", path: "/privacy/export/download?requestId=req_unknown", user: "user", status: 404},
		{name: "consent page", method: "GET", path: "/privacy/consent", user: "user", status: 200,
			has: []string{`id="purpose-marketing"`, "version 1", "You have made no choices yet"}, hasNot: []string{"steward-consent-banner"}},
		{name: "save consent", method: "POST", path: "/privacy/consent", user: "user", form: form("marketing", "on"), status: 303, locates: "/privacy/consent?done=consent-saved"},
		{name: "save the same again", method: "POST", path: "/privacy/consent", user: "user", form: form("marketing", "on"), status: 303, locates: "/privacy/consent?done=consent-same"},
		{name: "consent shows the choice", method: "GET", path: "/privacy/consent?done=consent-saved", user: "user", status: 200,
			has: []string{`name="marketing" checked`, "Your choices were saved", "privacy_center"}},
		{name: "banner gone once every purpose is decided", method: "GET", path: "/privacy/", user: "user", status: 200, hasNot: []string{"steward-consent-banner"}},
		{name: "cross-origin post", method: "POST", path: "/privacy/consent", user: "user", form: form("marketing", "on"),
			header: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, has: []string{"Request refused"}},
		{name: "delete confirmation", method: "GET", path: "/privacy/delete", user: "user", status: 200, has: []string{"What will be deleted", `id="confirm"`}},
		{name: "delete without the box ticked", method: "POST", path: "/privacy/delete", user: "user", form: form(), status: 400, has: []string{"Tick the box", `aria-invalid="true"`}},
		{name: "delete", method: "POST", path: "/privacy/delete", user: "user", form: form("confirm", "yes"), status: 303, locates: "/privacy/delete?done=deletion-planned"},
		{name: "countdown", method: "GET", path: "/privacy/delete", user: "user", status: 200, has: []string{"Your account will be deleted", "data-countdown", "Cancel the deletion"}},
		{name: "cancel someone else's request", method: "POST", path: "/privacy/delete/cancel", user: "user", form: form("requestId", "req_nope"), status: 404},
	})
	r := w.openErasure(w.user)
	w.run([]step{
		{name: "requests shows the erasure", method: "GET", path: "/privacy/requests", user: "user", status: 200, has: []string{"Account deletion", "Steps done: 0 of"}},
		{name: "cancel", method: "POST", path: "/privacy/delete/cancel", user: "user", form: form("requestId", r.ID), status: 303, locates: "/privacy/delete?done=deletion-cancel"},
		{name: "cancel again", method: "POST", path: "/privacy/delete/cancel", user: "user", form: form("requestId", r.ID), status: 404},
		{name: "back to the confirmation", method: "GET", path: "/privacy/delete?done=deletion-cancel", user: "user", status: 200, has: []string{"was cancelled", `id="confirm"`}},
		{name: "assets", method: "GET", path: "/privacy/assets/center.css", status: 200, has: []string{"--accent"}},
	})
	rec := w.call("GET", "/privacy/assets/banner.js", "", nil)
	if cc := rec.Header().Get("Cache-Control"); rec.Code != 200 || cc != "public, max-age=3600" || rec.Body.Len() > 2048 {
		t.Errorf("banner.js: %d, Cache-Control %q, %d bytes; want 200, cached, under 2 kB", rec.Code, cc, rec.Body.Len())
	}
}

func TestExportRoutes(t *testing.T) {
	w := newWorld(t)
	w.run([]step{{name: "start", method: "POST", path: "/privacy/export", user: "user", form: form(), status: 303, locates: "/privacy/export?done=export-started"}})
	var id string
	waitFor(t, "the export", func() bool {
		for r := range w.svc.Requests(context.Background(), privacy.RequestFilter{UserID: w.user, Kind: privacy.KindExport, Statuses: []privacy.Status{privacy.StatusCompleted}}) {
			id = r.ID
		}
		return id != ""
	})
	w.run([]step{
		{name: "ready", method: "GET", path: "/privacy/export", user: "user", status: 200, has: []string{"Download the file", "/privacy/export/download?requestId=" + id}},
		{name: "someone else cannot download it", method: "GET", path: "/privacy/export/download?requestId=" + id, user: "admin", status: 404},
	})
	rec := w.call("GET", "/privacy/export/download?requestId="+id, w.user, nil)
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Disposition"), "user-data-"+w.user+".json") || !strings.Contains(rec.Body.String(), "ord_1") {
		t.Errorf("download: %d %v\n%s", rec.Code, rec.Header(), excerpt(rec.Body.String()))
	}
	w.clock.Advance(privacy.DefaultExportTTL + time.Hour)
	w.run([]step{{name: "expired", method: "GET", path: "/privacy/export/download?requestId=" + id, user: "user", status: 410, has: []string{"no longer available"}}})

	closed := newWorld(t)
	_ = closed.svc.Close(context.Background())
	closed.run([]step{{name: "service closed", method: "POST", path: "/privacy/export", user: "user", form: form(), status: 503, has: []string{"restarting"}}})
}

func TestFencedAndErasedUsers(t *testing.T) {
	w := newWorld(t, withCenter())
	if _, err := w.svc.Erase(context.Background(), w.user, privacy.SkipGracePeriod()); err != nil {
		t.Fatal(err)
	}
	// An application whose sessions are not fenced still gets the fence
	// from the center: 410 with the result.
	w.run([]step{
		{name: "erased, session not fenced", method: "GET", path: "/privacy/", user: "user", header: []string{"X-Test-Fence", "off"}, status: 410, has: []string{"Your account was deleted"}},
		{name: "erased, session fenced", method: "GET", path: "/privacy/consent", user: "user", status: 401, has: []string{"You are signed out"}},
		{name: "erased, posting", method: "POST", path: "/privacy/consent", user: "user", header: []string{"X-Test-Fence", "off"}, form: form("marketing", "on"), status: 410},
	})
	w2 := newWorld(t)
	if _, err := w2.svc.QueueErasure(context.Background(), w2.user, privacy.SkipGracePeriod()); err != nil {
		t.Fatal(err)
	}
	w2.run([]step{{name: "being erased", method: "GET", path: "/privacy/export", user: "user", header: []string{"X-Test-Fence", "off"}, status: 409, has: []string{"Your account is being deleted"}}})
}

func TestDeleteWithoutGraceShowsTheResult(t *testing.T) {
	w := newWorld(t)
	if err := w.holds.Place(context.Background(), retention.Hold{UserID: w.user, Reason: "litigation 2026-17", PlacedBy: w.admin, PlacedAt: w.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	// With the grace period the hold shows only after it; an erasure
	// that runs at once answers the hold, never its reason.
	svc, err := privacy.NewService(w.idp, privacy.WithRequestStore(w.reqs), privacy.WithHoldChecker(retention.Checker{Holds: w.holds}), privacy.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.center, err = privacycenter.New(svc, w.cons, privacycenter.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.run([]step{{name: "held", method: "POST", path: "/privacy/delete", user: "user", form: form("confirm", "yes"), status: 409,
		has: []string{"cannot be deleted now"}, hasNot: []string{"litigation"}}})
	// Without a hold the erasure runs at once and the page shows its
	// result.
	w = newWorld(t)
	svc, err = privacy.NewService(w.idp, privacy.WithRequestStore(w.reqs), privacy.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.center, err = privacycenter.New(svc, w.cons, privacycenter.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.run([]step{{name: "erased at once", method: "POST", path: "/privacy/delete", user: "user", form: form("confirm", "yes"), status: 200,
		has: []string{"Your account was deleted", "You have been signed out"}}})
}

func TestBannerRoutes(t *testing.T) {
	w := newWorld(t)
	w.run([]step{
		{name: "signed out", method: "POST", path: "/privacy/consent/banner", form: form("choice", "accept"), status: 401},
		{name: "signed out, script", method: "POST", path: "/privacy/consent/banner", form: form("choice", "accept"), header: []string{"Accept", "application/json"}, status: 401},
		{name: "unknown choice", method: "POST", path: "/privacy/consent/banner", user: "user", form: form("choice", "maybe"), status: 400},
		{name: "unknown choice, script", method: "POST", path: "/privacy/consent/banner", user: "user", form: form("choice", "maybe"), header: []string{"Accept", "application/json"}, status: 400},
		{name: "a return to another site is not followed", method: "POST", path: "/privacy/consent/banner", user: "user", form: form("choice", "reject", "return", "//evil.example/"), status: 303, locates: "/privacy/"},
		{name: "accept, script", method: "POST", path: "/privacy/consent/banner", user: "user", form: form("choice", "accept"), header: []string{"Accept", "application/json", consent.GPCHeader, "1"}, status: 200, has: []string{`"saved":true`}},
		{name: "save, form", method: "POST", path: "/privacy/consent/banner", user: "user", form: form("choice", "save", "analytics", "on", "return", "/shop?x=1"), status: 303, locates: "/shop?x=1"},
	})
	want := []string{"analytics=false/banner/v1", "marketing=false/banner/v1", "third_party=false/banner/v1",
		"analytics=true/banner/v1", "marketing=true/banner/v1", "marketing=false/banner/v1"}
	if diff := cmp.Diff(want, w.consentRecords(w.user)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestAdminRoutes(t *testing.T) {
	w := newWorld(t, withCenter(privacycenter.WithPageSize(2)))
	bg := context.Background()
	var ids []string
	for i, days := range []int{40, 20, 5} {
		uid := "user_q" + string(rune('a'+i))
		id, err := w.svc.QueueErasure(bg, uid, privacy.ReceivedAt(w.clock.Now().Add(-time.Duration(days)*24*time.Hour)), privacy.SkipGracePeriod())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := w.svc.StartExport(bg, w.user); err != nil {
		t.Fatal(err)
	}
	// Page two, through the first page's own link.
	rec := w.call("GET", "/privacy/admin", w.admin, nil)
	next := strings.ReplaceAll(linkBefore(rec.Body.String(), `" rel="next"`), "&amp;", "&")
	w.run([]step{{name: "second page", method: "GET", path: next, user: "admin", status: 200,
		has: []string{ids[2], "First page"}, hasNot: []string{ids[0], ids[1], `rel="next"`}}})
	w.run([]step{
		{name: "signed out", method: "GET", path: "/privacy/admin", status: 401},
		{name: "a user", method: "GET", path: "/privacy/admin", user: "user", status: 403, has: []string{"Not allowed"}},
		{name: "first page of two", method: "GET", path: "/privacy/admin", user: "admin", status: 200,
			has: []string{ids[0], ids[1], `rel="next"`, "badge-red", "days overdue", "hmac-sha256:k1:"}, hasNot: []string{ids[2], "First page"}},
		{name: "bad kind", method: "GET", path: "/privacy/admin?kind=bogus", user: "admin", status: 400},
		{name: "bad cursor", method: "GET", path: "/privacy/admin?after=bm90LWEtY3Vyc29y", user: "admin", status: 400},
		{name: "overdue", method: "GET", path: "/privacy/admin?overdue=1", user: "admin", status: 200, has: []string{ids[0]}, hasNot: []string{ids[1], ids[2]}},
		{name: "exports", method: "GET", path: "/privacy/admin?kind=export&status=all", user: "admin", status: 200, hasNot: []string{ids[0]}},
		{name: "unknown request", method: "GET", path: "/privacy/admin/requests/req_nope", user: "admin", status: 404},
		{name: "request", method: "GET", path: "/privacy/admin/requests/" + ids[0], user: "admin", status: 200,
			has: []string{"Timeline", "Extend the deadline", "Place a hold", "Audit events of this request"}},
		{name: "extend without a reason", method: "POST", path: "/privacy/admin/requests/" + ids[0] + "/extend", user: "admin", form: form("reason", " "), status: 400, has: []string{"Give a reason"}},
		{name: "extend", method: "POST", path: "/privacy/admin/requests/" + ids[0] + "/extend", user: "admin", form: form("reason", "complex"), status: 303, locates: "/privacy/admin/requests/" + ids[0] + "?done=extended"},
		{name: "extend twice", method: "POST", path: "/privacy/admin/requests/" + ids[0] + "/extend", user: "admin", form: form("reason", "again"), status: 409},
		{name: "hold", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/hold", user: "admin", form: form("reason", "litigation"), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=held"},
		{name: "held shows", method: "GET", path: "/privacy/admin/requests/" + ids[1], user: "admin", status: 200, has: []string{"Release the hold", "litigation"}},
		{name: "release", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/release", user: "admin", form: form(), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=released"},
		{name: "resume", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/resume", user: "admin", form: form(), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=resumed"},
		{name: "cancel", method: "POST", path: "/privacy/admin/requests/" + ids[2] + "/cancel", user: "admin", form: form("reason", "duplicate"), status: 303, locates: "/privacy/admin/requests/" + ids[2] + "?done=cancelled"},
		{name: "cancel twice", method: "POST", path: "/privacy/admin/requests/" + ids[2] + "/cancel", user: "admin", form: form("reason", "again"), status: 409},
		{name: "hold a finished request", method: "POST", path: "/privacy/admin/requests/" + ids[2] + "/hold", user: "admin", form: form("reason", "x"), status: 409},
		{name: "unknown action", method: "POST", path: "/privacy/admin/requests/" + ids[2] + "/explode", user: "admin", form: form(), status: 404},
		{name: "lookup form", method: "GET", path: "/privacy/admin/lookup", user: "admin", status: 200, has: []string{`id="lookup-user"`}},
		{name: "lookup of a bad ID", method: "GET", path: "/privacy/admin/lookup?userId=a%20b", user: "admin", status: 400},
		{name: "lookup", method: "GET", path: "/privacy/admin/lookup?userId={user}", user: "admin", status: 200, has: []string{"<code>" + w.user + "</code>", "<td>export</td>"}},
		{name: "audit chain", method: "GET", path: "/privacy/admin/audit", user: "admin", status: 200, has: []string{"intact"}},
	})
	var lookups int
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.DataAccess && e.Details["what"] == "privacy center lookup" {
			lookups++
		}
	}
	if lookups != 1 {
		t.Errorf("%d lookup data_access events, want 1", lookups)
	}

	rec = w.call("GET", "/privacy/admin/requests.csv?status=all", w.admin, nil)
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV: %d %v %v", rec.Code, rec.Header(), err)
	}
	if len(rows) != 5 || rows[0][0] != "id" || strings.Contains(rec.Body.String(), "user_") {
		t.Errorf("CSV rows %v: want a header and 4 requests, no user IDs", rows)
	}
}

// linkBefore returns the href of the link whose attribute list ends
// with end.
func linkBefore(page, end string) string {
	i := strings.Index(page, end)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(page[:i], `href="`)
	return page[j+len(`href="`) : i]
}

// tampered alters one event's details on the way out.
type tampered struct{ *audit.MemorySink }

func (r tampered) Events(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for e, err := range r.MemorySink.Events(ctx, from) {
			if e.Sequence == 2 {
				e.Details = map[string]any{"what": "edited"}
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestAuditPageShowsABrokenChain(t *testing.T) {
	w := newWorld(t)
	for range 3 {
		if err := w.log.Log(context.Background(), audit.Event{Type: audit.DataAccess, Subject: w.user, Actor: w.admin}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := privacycenter.New(w.svc, w.cons, privacycenter.WithAuditReader(tampered{w.sink}))
	if err != nil {
		t.Fatal(err)
	}
	w.center = c
	w.run([]step{{name: "broken", method: "GET", path: "/privacy/admin/audit", user: "admin", status: 200, has: []string{"broken", "sequence 2"}}})
}

func TestNewRejectsBadConfig(t *testing.T) {
	w := newWorld(t)
	for name, opt := range map[string]privacycenter.Option{
		"prefix":   privacycenter.WithPrefix("privacy/"),
		"page":     privacycenter.WithPageSize(0),
		"policy":   privacycenter.WithPolicyVersion(-1),
		"origins":  privacycenter.WithTrustedOrigins("not a url"),
		"title":    privacycenter.WithTitle(" "),
		"purpose":  privacycenter.WithPurposeText("Bad Name", "x", "y"),
		"clock":    privacycenter.WithNow(nil),
		"reader":   privacycenter.WithAuditReader(nil),
		"logger":   privacycenter.WithLogger(nil),
		"holds":    privacycenter.WithHolds(nil),
		"audit":    privacycenter.WithAudit(nil),
		"authz":    privacycenter.WithAuthorizer(nil),
		"pseudo":   privacycenter.WithPseudonymizer(nil),
		"nil svc":  nil,
		"nil mgr":  nil,
		"prefix 2": privacycenter.WithPrefix("/a b"),
	} {
		var err error
		switch name {
		case "nil svc":
			_, err = privacycenter.New(nil, w.cons)
		case "nil mgr":
			_, err = privacycenter.New(w.svc, nil)
		default:
			_, err = privacycenter.New(w.svc, w.cons, opt)
		}
		if err == nil || !strings.Contains(err.Error(), "privacycenter: invalid configuration") {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	c, err := privacycenter.New(w.svc, w.cons, privacycenter.WithPrefix("/account/privacy"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/account/privacy/", nil)
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `href="/account/privacy/assets/center.css"`) {
		t.Errorf("under another prefix: %d", rec.Code)
	}
}
