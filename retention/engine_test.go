package retention_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type notifier struct {
	mu    sync.Mutex
	users []string
}

func (n *notifier) NotifyInactive(_ context.Context, u steward.User, _ time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.users = append(n.users, u.ID)
	return nil
}

type world struct {
	clock    *clock
	idp      *steward.MemoryIdentity
	logs     *retention.MemoryTarget
	sessions *retention.MemoryTarget
	holds    *retention.MemoryHolds
	notes    *notifier
	svc      *privacy.Service
	sink     *audit.MemorySink
	engine   *retention.Engine
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{clock: &clock{t: now}, logs: &retention.MemoryTarget{}, sessions: &retention.MemoryTarget{},
		holds: &retention.MemoryHolds{}, notes: &notifier{}, sink: audit.NewMemorySink()}
	w.idp = steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
	log, err := audit.NewLogger(w.sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = privacy.NewService(w.idp, privacy.WithNow(w.clock.Now), privacy.WithHoldChecker(retention.Checker{Holds: w.holds}),
		privacy.WithRequestStore(privacy.NewMemoryRequestStore()))
	if err != nil {
		t.Fatal(err)
	}
	w.engine, err = retention.NewEngine(retention.DefaultPolicies(w.logs, w.sessions),
		retention.WithIdentity(w.idp), retention.WithHolds(w.holds), retention.WithNotifier(w.notes),
		retention.WithEraser(w.svc), retention.WithAudit(log), retention.WithNow(w.clock.Now),
		retention.WithLease(w.holds, "test", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) run(t *testing.T, dry bool) retention.Report {
	t.Helper()
	rep, err := w.engine.Run(context.Background(), retention.RunOptions{DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func byName(rep retention.Report) map[string]retention.PolicyReport {
	out := map[string]retention.PolicyReport{}
	for _, p := range rep.Policies {
		out[p.Name] = p
	}
	return out
}

// TestBoundaries puts records and users exactly at, just inside and just
// outside each limit: exactly the maximum age is kept; older goes.
func TestBoundaries(t *testing.T) {
	w := newWorld(t)
	for _, age := range []time.Duration{90*day - time.Second, 90 * day, 90*day + time.Second, 200 * day} {
		w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-age)})
	}
	for _, age := range []time.Duration{30*day - time.Second, 30 * day, 30*day + time.Second} {
		w.sessions.Add(retention.Row{Subject: "user_a", Time: now.Add(-age)})
	}
	for id, age := range map[string]time.Duration{"user_in": 365*day - time.Second, "user_at": 365 * day, "user_out": 365*day + time.Second} {
		w.idp.Put(steward.User{ID: id, CreatedAt: now.Add(-400 * day), LastActiveAt: now.Add(-age)})
	}
	rep := byName(w.run(t, false))
	if got := rep["activity_logs"].Purged; got != 2 {
		t.Errorf("activity logs purged %d, want 2 (older than 90 days)", got)
	}
	if got := rep["sessions"].Purged; got != 1 {
		t.Errorf("sessions purged %d, want 1 (older than 30 days)", got)
	}
	if diff := cmp.Diff([]string{"user_out"}, w.notes.users); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	for _, r := range w.logs.Rows() {
		if now.Sub(r.Time) > 90*day {
			t.Errorf("a log %v old survived", now.Sub(r.Time))
		}
	}
}

func TestNotifyOnceThenEraseAfterGrace(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.idp.Put(steward.User{ID: "user_gone", CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-400 * day)})
	rep := byName(w.run(t, false))
	if rep["inactive_users"].Notified != 1 {
		t.Fatalf("first run: %+v", rep["inactive_users"])
	}
	u, _ := w.idp.GetUser(ctx, "user_gone")
	if u.PrivateMetadata[retention.NotifiedKey] != now.Format(time.RFC3339) {
		t.Errorf("private metadata = %v", u.PrivateMetadata)
	}
	w.clock.Add(retention.InactiveGracePeriod - time.Second)
	rep = byName(w.run(t, false))
	if got := rep["inactive_users"]; got.Notified != 0 || got.Waiting != 1 || got.Erased != 0 {
		t.Fatalf("within the grace period: %+v", got)
	}
	if len(w.notes.users) != 1 {
		t.Errorf("notified %d times, want once", len(w.notes.users))
	}
	w.clock.Add(time.Second)
	rep = byName(w.run(t, false))
	if got := rep["inactive_users"]; got.Erased != 1 {
		t.Fatalf("after the grace period: %+v", got)
	}
	if _, err := w.idp.GetUser(ctx, "user_gone"); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("user still exists: %v", err)
	}
	var purges int
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.RetentionPurge {
			purges++
		}
		if e.Subject == "user_gone" {
			t.Error("an audit event carries the raw user ID")
		}
	}
	if purges != 1 {
		t.Errorf("%d retention_purge events, want 1", purges)
	}
}

func TestReactivationCancelsErasure(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.idp.Put(steward.User{ID: "user_back", CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-400 * day)})
	w.run(t, false)
	// The user signs in during the grace period.
	w.clock.Add(10 * day)
	u, _ := w.idp.GetUser(ctx, "user_back")
	u.LastActiveAt = w.clock.Now()
	w.idp.Put(u)
	w.clock.Add(retention.InactiveGracePeriod)
	rep := byName(w.run(t, false))
	if got := rep["inactive_users"]; got.Erased != 0 {
		t.Fatalf("an active user was erased: %+v", got)
	}
	if _, err := w.idp.GetUser(ctx, "user_back"); err != nil {
		t.Fatalf("user gone: %v", err)
	}
	// A year later they are inactive again: a new notice, not an erasure.
	w.clock.Add(366 * day)
	rep = byName(w.run(t, false))
	if got := rep["inactive_users"]; got.Erased != 0 || got.Notified != 1 || got.Reactivated != 1 {
		t.Fatalf("inactive again: %+v", got)
	}
}

func TestHeldUsersAreUntouched(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.holds.Place(ctx, retention.Hold{UserID: "user_held", Reason: "litigation 2026-17", PlacedBy: "user_counsel", PlacedAt: now}); err != nil {
		t.Fatal(err)
	}
	w.idp.Put(steward.User{ID: "user_held", CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-400 * day),
		PrivateMetadata: map[string]any{retention.NotifiedKey: now.Add(-100 * day).Format(time.RFC3339)}})
	w.logs.Add(retention.Row{Subject: "user_held", Time: now.Add(-200 * day)}, retention.Row{Subject: "user_free", Time: now.Add(-200 * day)})
	rep := byName(w.run(t, false))
	if rep["inactive_users"].Held != 1 || rep["inactive_users"].Erased != 0 {
		t.Errorf("inactive users: %+v", rep["inactive_users"])
	}
	if diff := cmp.Diff([]retention.Row{{Subject: "user_held", Time: now.Add(-200 * day)}}, w.logs.Rows()); diff != "" {
		t.Errorf("logs left (-want +got):\n%s", diff)
	}
	// Erasure through privacy refuses the held user too.
	res, err := w.svc.Erase(ctx, "user_held")
	if !errors.Is(err, privacy.ErrLegalHold) || res.Success {
		t.Errorf("Erase of a held user = %+v, %v", res, err)
	}
	if err := w.holds.Release(ctx, "user_held"); err != nil {
		t.Fatal(err)
	}
	rep = byName(w.run(t, false))
	if rep["inactive_users"].Erased != 1 || rep["activity_logs"].Purged != 1 {
		t.Errorf("after release: %+v", rep)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)}, retention.Row{Subject: "user_a", Time: now})
	w.sessions.Add(retention.Row{Subject: "user_a", Time: now.Add(-31 * day)})
	w.idp.Put(steward.User{ID: "user_new", CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-400 * day)})
	w.idp.Put(steward.User{ID: "user_due", CreatedAt: now.Add(-800 * day), LastActiveAt: now.Add(-500 * day),
		PrivateMetadata: map[string]any{retention.NotifiedKey: now.Add(-60 * day).Format(time.RFC3339)}})
	snapshot := func() any {
		var users []steward.User
		for u, err := range w.idp.ListUsers(ctx, steward.UserQuery{}) {
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		return []any{users, w.logs.Rows(), w.sessions.Rows(), w.sink.Snapshot(), append([]string(nil), w.notes.users...)}
	}
	before := snapshot()
	rep := w.run(t, true)
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("a dry run changed state (-before +after):\n%s", diff)
	}
	got := byName(rep)
	want := map[string][2]int{"activity_logs": {1, 0}, "sessions": {1, 0}}
	for name, w := range want {
		if got[name].Purged != w[0] {
			t.Errorf("%s would purge %d, want %d", name, got[name].Purged, w[0])
		}
	}
	if iu := got["inactive_users"]; iu.Notified != 1 || iu.Erased != 1 {
		t.Errorf("inactive users would: %+v", iu)
	}
	if !rep.DryRun {
		t.Error("report does not say dry run")
	}
}

func TestSecondConcurrentRunFindsTheLeaseHeld(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if ok, _ := w.holds.AcquireLease(ctx, "retention", "other-instance", now, time.Hour); !ok {
		t.Fatal("could not take the lease")
	}
	if _, err := w.engine.Run(ctx, retention.RunOptions{}); !errors.Is(err, retention.ErrLeaseHeld) {
		t.Fatalf("Run = %v, want ErrLeaseHeld", err)
	}
	w.clock.Add(2 * time.Hour) // the other instance died; its lease expired
	if _, err := w.engine.Run(ctx, retention.RunOptions{}); err != nil {
		t.Fatalf("Run after expiry = %v", err)
	}
}

func TestPolicyValidation(t *testing.T) {
	tests := []struct {
		p    retention.Policy
		want string
	}{
		{retention.Policy{MaxAge: day, Action: retention.Delete, Target: &retention.MemoryTarget{}}, "Name is empty"},
		{retention.Policy{Name: "x", Action: retention.Delete, Target: &retention.MemoryTarget{}}, "MaxAge must be positive"},
		{retention.Policy{Name: "x", MaxAge: day, Action: retention.Delete}, "needs a Target"},
		{retention.Policy{Name: "x", MaxAge: day, Action: "shred", Target: &retention.MemoryTarget{}}, `unknown Action "shred"`},
	}
	for _, tt := range tests {
		_, err := retention.NewEngine([]retention.Policy{tt.p})
		if !errors.Is(err, retention.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewEngine(%+v) = %v, want %q", tt.p, err, tt.want)
		}
	}
	if _, err := retention.NewEngine(retention.DefaultPolicies(&retention.MemoryTarget{}, &retention.MemoryTarget{})); err == nil {
		t.Error("NotifyThenErase without identity, notifier and eraser was accepted")
	}
}
