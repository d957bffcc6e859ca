package privacycenter_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
)

// TestBrowserTour opens every page as its user sees it, checks it
// answers and keeps a screenshot of each (those in docs/ come from
// here): the self-service pages with a download ready and an erasure in
// its grace period, the banner on an application page, the admin pages
// over a queue with overdue requests, and the signed-out page once the
// erasure ran.
func TestBrowserTour(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	bg := context.Background()
	if _, err := w.svc.StartExport(bg, w.user); err != nil {
		t.Fatal(err)
	}
	for i, days := range []int{40, 26, 12, 3} {
		u := w.clerk.AddUser(userNamed(i))
		if _, err := w.svc.QueueErasure(bg, u.ID, privacy.ReceivedAt(w.clock.Now().Add(-time.Duration(days)*24*time.Hour)), privacy.SkipGracePeriod()); err != nil {
			t.Fatal(err)
		}
	}
	s.signIn(t, ctx, "user")
	s.open(t, ctx, "/")
	docShot(t, ctx, "banner")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#steward-consent-banner button[value="accept"]`)))
	waitFor(t, "the banner's choice", func() bool {
		ok, _ := w.cons.Allowed(bg, w.user, consent.Marketing)
		return ok
	})
	waitFor(t, "the export", func() bool {
		for r := range w.svc.Requests(bg, privacy.RequestFilter{UserID: w.user, Kind: privacy.KindExport, Statuses: []privacy.Status{privacy.StatusCompleted}}) {
			return r.ID != ""
		}
		return false
	})
	page := func(path, name, heading string) {
		t.Helper()
		if st := s.open(t, ctx, path); st != http.StatusOK {
			t.Errorf("%s answered %d", path, st)
		}
		wantContains(t, path+" heading", text(t, ctx, "h1"), heading)
		docShot(t, ctx, name)
	}
	page("/privacy/", "overview", "Your privacy")
	page("/privacy/export", "export", "Download your data")
	page("/privacy/consent", "consent", "Your choices")
	s.open(t, ctx, "/privacy/delete")
	do(t, ctx, chromedp.Click(chromedp.ID("confirm")))
	submit(t, ctx, "button.danger")
	wantContains(t, "delete", text(t, ctx, "#grace-title"), "will be deleted")
	docShot(t, ctx, "delete")
	page("/privacy/requests", "requests", "Your requests")

	admin := tab(t)
	s.signIn(t, admin, "admin")
	do(t, admin, chromedp.Navigate(s.URL+"/"))
	do(t, admin, chromedp.Click(chromedp.CSS(`#steward-consent-banner button[value="reject"]`)))
	waitFor(t, "the admin's choice", func() bool { return len(w.consentRecords(w.admin)) == 3 })
	do(t, admin, chromedp.Navigate(s.URL+"/privacy/admin"))
	if b := text(t, admin, "table.queue"); !strings.Contains(b, "overdue") || !strings.Contains(b, "days left") {
		t.Errorf("the queue shows no days-left badges: %s", b)
	}
	docShot(t, admin, "admin-queue")
	submit(t, admin, "table.queue a")
	wantContains(t, "request page", text(t, admin, "#timeline-title"), "Timeline")
	docShot(t, admin, "admin-request")
	do(t, admin, chromedp.Navigate(s.URL+"/privacy/admin/lookup?userId="+w.user))
	wantContains(t, "lookup", text(t, admin, "#user-title"), w.user)
	docShot(t, admin, "admin-lookup")
	do(t, admin, chromedp.Navigate(s.URL+"/privacy/admin/audit"))
	wantContains(t, "audit", text(t, admin, "#chain-title + p"), "intact")
	docShot(t, admin, "admin-audit")

	w.clock.Advance(grace + time.Minute)
	if _, err := w.svc.ResumePending(bg); err != nil {
		t.Fatal(err)
	}
	if st := s.open(t, ctx, "/privacy/"); st != http.StatusUnauthorized {
		t.Errorf("after the erasure: %d, want 401", st)
	}
	docShot(t, ctx, "signed-out")
}
