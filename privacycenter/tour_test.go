package privacycenter_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
)

// TestBrowserTour opens every page as its user would see it and keeps a
// screenshot of each: the self-service pages with a download ready and
// an erasure in its waiting period, and the admin pages over a queue
// with overdue requests.
func TestBrowserTour(t *testing.T) {
	ctx := tab(t)
	w := newWorld(t, withClerk())
	s := newSite(t, w)
	bg := context.Background()
	if _, err := w.cons.Update(bg, w.user, map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: false, consent.ThirdParty: false},
		consent.Meta{PolicyVersion: 1, Source: "banner"}); err != nil {
		t.Fatal(err)
	}
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
	for _, p := range []struct{ path, name string }{
		{"/privacy/", "overview"}, {"/privacy/export", "export"}, {"/privacy/consent", "consent"},
		{"/privacy/delete", "delete-confirm"}, {"/privacy/requests", "requests"},
	} {
		if st := s.open(t, ctx, p.path); st != 200 {
			t.Errorf("%s: %d", p.path, st)
		}
		shot(t, ctx, p.name)
	}
}
