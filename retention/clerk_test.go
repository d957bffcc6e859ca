package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

// TestInactiveScanWithDayPrecision runs the inactive-user scan against a
// fake Clerk, which, like Clerk, serves last_active_at "with day
// precision" (Backend API spec, User.last_active_at): activity later on
// the day of a notice reads as the start of that day, before the notice.
// Such a user was active after being told, so a year later they must be
// told again, not erased on the old notice.
func TestInactiveScanWithDayPrecision(t *testing.T) {
	clk := &clock{t: now.Add(10 * time.Hour)} // notices go out at 10:00
	srv := clerktest.NewServer(clerktest.WithNow(clk.Now))
	t.Cleanup(srv.Close)
	prov := clerkadapter.New(srv.ClientConfig())
	u := srv.AddUser(steward.User{CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-400 * day),
		EmailAddresses: []steward.EmailAddress{{Address: "quinn@example.com", Verified: true}}})

	svc, err := privacy.NewService(prov, privacy.WithNow(clk.Now), privacy.WithRequestStore(privacy.NewMemoryRequestStore()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	notes := &notifier{}
	engine, err := retention.NewEngine(retention.DefaultPolicies(&retention.MemoryTarget{}, &retention.MemoryTarget{}),
		retention.WithIdentity(prov), retention.WithNotifier(notes), retention.WithEraser(svc), retention.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	run := func() retention.PolicyReport {
		t.Helper()
		rep, err := engine.Run(t.Context(), retention.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return byName(rep)["inactive_users"]
	}

	if got := run(); got.Notified != 1 {
		t.Fatalf("first scan: %+v, want the inactive user notified", got)
	}
	// The user signs in at 15:00 the same day; Clerk reports 00:00.
	back, _ := srv.User(u.ID)
	back.LastActiveAt = now.Add(15 * time.Hour)
	srv.AddUser(back)

	clk.Add(366 * day)
	got := run()
	if got.Erased != 0 || got.Notified != 1 || got.Reactivated != 1 {
		t.Errorf("a year after activity on the notice's day: %+v, want a new notice, not an erasure", got)
	}
	if _, ok := srv.User(u.ID); !ok {
		t.Error("the user was erased on a notice they had been active after")
	}
}
