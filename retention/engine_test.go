package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
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

// notifier records who was told, and fails for the IDs in fail.
type notifier struct {
	mu    sync.Mutex
	users []string
	fail  map[string]bool
	hook  func(u steward.User) // called before recording, when set
}

func (n *notifier) NotifyInactive(_ context.Context, u steward.User, _ time.Time) error {
	if n.hook != nil {
		n.hook(u)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail[u.ID] {
		return errors.New("mail server unavailable")
	}
	n.users = append(n.users, u.ID)
	return nil
}

func (n *notifier) told() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.users...)
}

type world struct {
	clock    *clock
	idp      *steward.MemoryIdentity
	logs     *retention.MemoryTarget
	sessions *retention.MemoryTarget
	holds    *retention.MemoryHolds
	leases   *steward.MemoryLeases
	notes    *notifier
	svc      *privacy.Service
	sink     *audit.MemorySink
	log      *audit.Logger
	engine   *retention.Engine
}

func newWorld(t *testing.T, opts ...retention.Option) *world {
	t.Helper()
	w := &world{clock: &clock{t: now}, logs: &retention.MemoryTarget{}, sessions: &retention.MemoryTarget{},
		holds: &retention.MemoryHolds{}, notes: &notifier{}, sink: audit.NewMemorySink()}
	w.leases = steward.NewMemoryLeases(w.clock.Now)
	w.idp = steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
	var err error
	w.log, err = audit.NewLogger(w.sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = privacy.NewService(w.idp, privacy.WithNow(w.clock.Now), privacy.WithHoldChecker(retention.Checker{Holds: w.holds}),
		privacy.WithRequestStore(privacy.NewMemoryRequestStore()))
	if err != nil {
		t.Fatal(err)
	}
	w.engine = w.newEngine(t, opts...)
	return w
}

// newEngine returns an Engine over the world, with its own owner name.
func (w *world) newEngine(t *testing.T, opts ...retention.Option) *retention.Engine {
	t.Helper()
	e, err := retention.NewEngine(retention.DefaultPolicies(w.logs, w.sessions), append([]retention.Option{
		retention.WithIdentity(w.idp), retention.WithHolds(w.holds), retention.WithNotifier(w.notes),
		retention.WithEraser(w.svc), retention.WithAudit(w.log), retention.WithNow(w.clock.Now),
		retention.WithLease(w.leases, time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) run(t *testing.T, dry bool) map[string]retention.PolicyReport {
	t.Helper()
	rep, err := w.engine.Run(context.Background(), retention.RunOptions{DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun != dry {
		t.Errorf("Report.DryRun = %v, want %v", rep.DryRun, dry)
	}
	return byName(rep)
}

func (w *world) user(t *testing.T, id string) steward.User {
	t.Helper()
	u, err := w.idp.GetUser(context.Background(), id)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", id, err)
	}
	return u
}

func (w *world) events(t *testing.T) []audit.Event {
	t.Helper()
	if err := w.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w.sink.Snapshot()
}

func byName(rep retention.Report) map[string]retention.PolicyReport {
	out := map[string]retention.PolicyReport{}
	for _, p := range rep.Policies {
		out[p.Name] = p
	}
	return out
}

// inactiveUser puts a user last active age ago.
func (w *world) inactiveUser(id string, age time.Duration, meta map[string]any) {
	w.idp.Put(steward.User{ID: id, CreatedAt: now.Add(-800 * day), LastActiveAt: w.clock.Now().Add(-age), PrivateMetadata: meta})
}

func notice(at time.Time) map[string]any {
	return map[string]any{retention.NotifiedKey: at.Format(time.RFC3339)}
}

// TestBoundaries puts records and users just inside, exactly at and just
// outside each policy's maximum age: exactly the maximum age is kept,
// anything older goes.
func TestBoundaries(t *testing.T) {
	ages := map[string]time.Duration{"just inside": -time.Second, "exactly at": 0, "just outside": time.Second}
	want := map[string]bool{"just inside": false, "exactly at": false, "just outside": true}
	for _, policy := range []struct {
		name   string
		maxAge time.Duration
	}{{"activity_logs", 90 * day}, {"sessions", 30 * day}, {"inactive_users", 365 * day}} {
		for where, delta := range ages {
			t.Run(fmt.Sprintf("%s %s %v", policy.name, where, policy.maxAge), func(t *testing.T) {
				w := newWorld(t)
				age := policy.maxAge + delta
				switch policy.name {
				case "activity_logs":
					w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-age)})
				case "sessions":
					w.sessions.Add(retention.Row{Subject: "user_a", Time: now.Add(-age)})
				default:
					w.inactiveUser("user_a", age, nil)
				}
				rep := w.run(t, false)[policy.name]
				got := rep.Purged+rep.Notified == 1
				if got != want[where] {
					t.Errorf("acted = %v, want %v: %+v", got, want[where], rep)
				}
			})
		}
	}
}

func TestNotifyOnceThenEraseAfterGrace(t *testing.T) {
	w := newWorld(t)
	w.inactiveUser("user_gone", 400*day, nil)
	if got := w.run(t, false)["inactive_users"]; got.Notified != 1 || got.Scanned != 1 {
		t.Fatalf("first run: %+v", got)
	}
	if got := w.user(t, "user_gone").PrivateMetadata[retention.NotifiedKey]; got != now.Format(time.RFC3339) {
		t.Errorf("private metadata %s = %v, want the time of the notice", retention.NotifiedKey, got)
	}
	// Every run inside the grace period leaves the user waiting; nobody is told twice.
	for _, after := range []time.Duration{time.Hour, 10 * day, retention.InactiveGracePeriod - time.Second} {
		w.clock.t = now.Add(after)
		if got := w.run(t, false)["inactive_users"]; got.Notified != 0 || got.Waiting != 1 || got.Erased != 0 {
			t.Fatalf("%v after the notice: %+v", after, got)
		}
	}
	if diff := cmp.Diff([]string{"user_gone"}, w.notes.told()); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	w.clock.t = now.Add(retention.InactiveGracePeriod)
	if got := w.run(t, false)["inactive_users"]; got.Erased != 1 {
		t.Fatalf("exactly at the end of the grace period: %+v", got)
	}
	if _, err := w.idp.GetUser(context.Background(), "user_gone"); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("user still exists: %v", err)
	}
	var actions []any
	for _, e := range w.events(t) {
		if e.Type == audit.RetentionPurge {
			actions = append(actions, e.Details["action"])
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "user_gone") {
			t.Errorf("an audit event carries the raw user ID: %s", b)
		}
	}
	if diff := cmp.Diff([]any{"notify_inactive", "erase_inactive"}, actions); diff != "" {
		t.Errorf("retention_purge events (-want +got):\n%s", diff)
	}
}

func TestReactivationCancelsErasure(t *testing.T) {
	t.Run("a user active again is not erased, and gets a new notice only after another year", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_back", 400*day, nil)
		w.run(t, false)
		w.clock.Add(10 * day)
		u := w.user(t, "user_back")
		u.LastActiveAt = w.clock.Now() // signs in during the grace period
		w.idp.Put(u)
		w.clock.Add(retention.InactiveGracePeriod)
		if got := w.run(t, false)["inactive_users"]; got.Erased != 0 || got.Scanned != 0 {
			t.Fatalf("an active user was erased: %+v", got)
		}
		w.user(t, "user_back")
		w.clock.Add(366 * day)
		if got := w.run(t, false)["inactive_users"]; got.Erased != 0 || got.Notified != 1 || got.Reactivated != 1 {
			t.Fatalf("inactive again: %+v", got)
		}
		if got := w.user(t, "user_back").PrivateMetadata[retention.NotifiedKey]; got != w.clock.Now().Format(time.RFC3339) {
			t.Errorf("the notice was not renewed: %v", got)
		}
	})
	t.Run("a user who came back after the scan read them is re-read, not erased, and their notice cleared", func(t *testing.T) {
		w := newWorld(t)
		stale := &staleIdentity{MemoryIdentity: w.idp}
		w.engine = w.newEngine(t, retention.WithIdentity(stale))
		w.inactiveUser("user_back", 400*day, notice(now.Add(-40*day)))
		stale.freeze(t)
		u := w.user(t, "user_back")
		u.LastActiveAt = now.Add(-time.Minute) // signs in while the scan runs
		w.idp.Put(u)
		if got := w.run(t, false)["inactive_users"]; got.Erased != 0 || got.Reactivated != 1 {
			t.Fatalf("report: %+v", got)
		}
		if md := w.user(t, "user_back").PrivateMetadata; md[retention.NotifiedKey] != nil {
			t.Errorf("the notice of a returning user was kept: %v", md)
		}
	})
}

// staleIdentity lists users as they were when frozen, like a scan that
// read a page before the users changed.
type staleIdentity struct {
	*steward.MemoryIdentity
	users []steward.User
}

func (s *staleIdentity) freeze(t *testing.T) {
	for u, err := range s.MemoryIdentity.ListUsers(context.Background(), steward.UserQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		s.users = append(s.users, u)
	}
}

func (s *staleIdentity) ListUsers(_ context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		for _, u := range s.users {
			if q.Matches(u) && !yield(u, nil) {
				return
			}
		}
	}
}

func TestHeldUsersAreUntouched(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	hold := retention.Hold{Reason: "litigation 2026-17", PlacedBy: "user_counsel", PlacedAt: now}
	for _, id := range []string{"user_held", "user_held_new"} {
		hold.UserID = id
		if err := w.holds.Place(ctx, hold); err != nil {
			t.Fatal(err)
		}
	}
	w.inactiveUser("user_held", 400*day, notice(now.Add(-100*day)))
	w.inactiveUser("user_held_new", 400*day, nil)
	w.logs.Add(retention.Row{Subject: "user_held", Time: now.Add(-200 * day)}, retention.Row{Subject: "user_free", Time: now.Add(-200 * day)})
	heldNew := w.user(t, "user_held_new")

	rep := w.run(t, false)
	if got := rep["inactive_users"]; got.Held != 2 || got.Erased != 0 || got.Notified != 0 {
		t.Errorf("inactive users: %+v", got)
	}
	if diff := cmp.Diff([]retention.Row{{Subject: "user_held", Time: now.Add(-200 * day)}}, w.logs.Rows()); diff != "" {
		t.Errorf("logs left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(heldNew, w.user(t, "user_held_new")); diff != "" {
		t.Errorf("a held user was changed (-before +after):\n%s", diff)
	}
	if len(w.notes.told()) != 0 {
		t.Errorf("held users were notified: %v", w.notes.told())
	}
	// Erasure through privacy refuses the held user too.
	res, err := w.svc.Erase(ctx, "user_held")
	if !errors.Is(err, privacy.ErrLegalHold) || res.Success {
		t.Errorf("Erase of a held user = %+v, %v", res, err)
	}
	if err := w.holds.Release(ctx, "user_held"); err != nil {
		t.Fatal(err)
	}
	rep = w.run(t, false)
	if rep["inactive_users"].Erased != 1 || rep["activity_logs"].Purged != 1 {
		t.Errorf("after release: %+v", rep)
	}
}

func TestAHoldPlacedDuringTheRunStopsTheErasure(t *testing.T) {
	for _, checker := range []bool{true, false} {
		t.Run(fmt.Sprintf("privacy checks holds: %v", checker), func(t *testing.T) {
			w := newWorld(t)
			if !checker {
				svc, err := privacy.NewService(w.idp, privacy.WithNow(w.clock.Now), privacy.WithRequestStore(privacy.NewMemoryRequestStore()))
				if err != nil {
					t.Fatal(err)
				}
				w.engine = w.newEngine(t, retention.WithEraser(svc))
			}
			w.inactiveUser("user_due", 400*day, notice(now.Add(-40*day)))
			// Progress runs after the scan's last page, before the erasures.
			rep, err := w.engine.Run(context.Background(), retention.RunOptions{Progress: func(p retention.Progress) {
				if p.Policy == "inactive_users" && p.Scanned == 1 {
					_ = w.holds.Place(context.Background(), retention.Hold{UserID: "user_due", Reason: "subpoena", PlacedBy: "user_counsel", PlacedAt: now})
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if got := byName(rep)["inactive_users"]; got.Held != 1 || got.Erased != 0 {
				t.Errorf("report: %+v", got)
			}
			w.user(t, "user_due")
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)}, retention.Row{Subject: "user_a", Time: now})
	w.sessions.Add(retention.Row{Subject: "user_a", Time: now.Add(-31 * day)})
	w.inactiveUser("user_new", 400*day, nil)
	w.inactiveUser("user_due", 500*day, notice(now.Add(-60*day)))
	w.inactiveUser("user_waiting", 500*day, notice(now.Add(-1*day)))
	w.inactiveUser("user_held", 500*day, notice(now.Add(-60*day)))
	if err := w.holds.Place(ctx, retention.Hold{UserID: "user_held", Reason: "audit", PlacedBy: "user_counsel", PlacedAt: now}); err != nil {
		t.Fatal(err)
	}
	snapshot := func() any {
		var users []steward.User
		for u, err := range w.idp.ListUsers(ctx, steward.UserQuery{}) {
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		holds, err := w.holds.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"users": users, "logs": w.logs.Rows(), "sessions": w.sessions.Rows(),
			"audit": w.events(t), "notified": w.notes.told(), "holds": holds}
	}
	before := snapshot()
	rep := w.run(t, true)
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("a dry run changed state (-before +after):\n%s", diff)
	}
	other, err := w.leases.AcquireLease(ctx, retention.LeaseName, "other", time.Minute)
	if err != nil {
		t.Errorf("a dry run left the lease taken: %v", err)
	}
	type counts struct{ Purged, Scanned, Notified, Erased, Waiting, Held int }
	got := map[string]counts{}
	for name, p := range rep {
		got[name] = counts{p.Purged, p.Scanned, p.Notified, p.Erased, p.Waiting, p.Held}
	}
	want := map[string]counts{
		"activity_logs":  {Purged: 1},
		"sessions":       {Purged: 1},
		"inactive_users": {Scanned: 4, Notified: 1, Erased: 1, Waiting: 1, Held: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dry-run report (-want +got):\n%s", diff)
	}
	if got := rep["activity_logs"].Batches; got != 1 {
		t.Errorf("the dry run predicts %d batches for one expired log, want 1", got)
	}
	// The real run does what the dry run said.
	if err := w.leases.ReleaseLease(ctx, other); err != nil {
		t.Fatal(err)
	}
	real := map[string]counts{}
	for name, p := range w.run(t, false) {
		real[name] = counts{p.Purged, p.Scanned, p.Notified, p.Erased, p.Waiting, p.Held}
	}
	if diff := cmp.Diff(want, real); diff != "" {
		t.Errorf("the run differs from its dry run (-dry +real):\n%s", diff)
	}
}

func TestProgressReportsEveryBatch(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 10; i++ {
		w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
		w.inactiveUser(fmt.Sprintf("user_%02d", i), 400*day, nil)
	}
	w.inactiveUser("user_due", 400*day, notice(now.Add(-40*day)))
	policies := []retention.Policy{
		{Name: "logs", Target: w.logs, MaxAge: 90 * day, Action: retention.Delete, BatchSize: 4},
		{Name: "users", MaxAge: 365 * day, Action: retention.NotifyThenErase, GracePeriod: 30 * day, BatchSize: 4},
	}
	e, err := retention.NewEngine(policies, retention.WithIdentity(w.idp), retention.WithNotifier(w.notes),
		retention.WithEraser(w.svc), retention.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	var got []retention.Progress
	rep, err := e.Run(context.Background(), retention.RunOptions{Progress: func(p retention.Progress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	d, n := retention.Delete, retention.NotifyThenErase
	want := []retention.Progress{
		{Policy: "logs", Action: d, Batch: 4, Done: 4}, {Policy: "logs", Action: d, Batch: 4, Done: 8}, {Policy: "logs", Action: d, Batch: 2, Done: 10},
		{Policy: "users", Action: n, Batch: 4, Done: 4, Scanned: 4}, {Policy: "users", Action: n, Batch: 4, Done: 8, Scanned: 8},
		{Policy: "users", Action: n, Batch: 2, Done: 10, Scanned: 11}, // the 11th is due, not notified
		{Policy: "users", Action: n, Batch: 1, Done: 11, Scanned: 11}, // its erasure
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if b := byName(rep); b["logs"].Batches != 3 || b["users"].Batches != 4 {
		t.Errorf("batches: %+v", rep)
	}
}

func TestFailedUsersAreCountedAndRetried(t *testing.T) {
	w := newWorld(t)
	w.notes.fail = map[string]bool{"user_b": true}
	w.inactiveUser("user_a", 400*day, nil)
	w.inactiveUser("user_b", 400*day, nil)
	rep, err := w.engine.Run(context.Background(), retention.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "mail server unavailable") {
		t.Fatalf("Run = %v, want the notifier's error", err)
	}
	if strings.Contains(err.Error(), "user_b") {
		t.Errorf("the error names the user: %v", err)
	}
	if got := byName(rep)["inactive_users"]; got.Notified != 1 || got.Failed != 1 {
		t.Errorf("report: %+v", got)
	}
	if md := w.user(t, "user_b").PrivateMetadata; md[retention.NotifiedKey] != nil {
		t.Errorf("a failed notice was recorded: %v", md)
	}
	w.notes.fail = nil
	if got := w.run(t, false)["inactive_users"]; got.Notified != 1 || got.Waiting != 1 || got.Failed != 0 {
		t.Errorf("retry: %+v", got)
	}
	if diff := cmp.Diff([]string{"user_a", "user_b"}, w.notes.told()); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
}

func TestBulkPurgesAuditCountsWithoutUserIDs(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 5; i++ {
		w.logs.Add(retention.Row{Subject: fmt.Sprintf("user_%d", i), Time: now.Add(-100 * day)})
	}
	w.run(t, false)
	events := w.events(t)
	if len(events) != 1 {
		t.Fatalf("%d events, want one summary: %+v", len(events), events)
	}
	e := events[0]
	if e.Type != audit.RetentionPurge || e.Subject != "" || e.Actor != retention.Actor {
		t.Errorf("event: type %q subject %q actor %q", e.Type, e.Subject, e.Actor)
	}
	want := map[string]any{"policy": "activity_logs", "action": "delete", "purged": 5, "batches": 1, "held": 0,
		"cutoff": now.Add(-90 * day).Format(time.RFC3339)}
	str := func(m map[string]any) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	if diff := cmp.Diff(str(want), str(e.Details)); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	if b, _ := json.Marshal(e); strings.Contains(string(b), "user_") {
		t.Errorf("the summary carries a user ID: %s", b)
	}
}

func TestAnonymisePolicyKeepsRowsWithoutSubjects(t *testing.T) {
	w := newWorld(t)
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day), Data: map[string]any{"ip": "203.0.113.7"}},
		retention.Row{Subject: "user_a", Time: now, Data: map[string]any{"ip": "203.0.113.8"}})
	e, err := retention.NewEngine([]retention.Policy{{Name: "logs", Target: w.logs, MaxAge: 90 * day, Action: retention.Anonymise}},
		retention.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 0} {
		rep, err := e.Run(context.Background(), retention.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Policies[0].Purged; got != want {
			t.Errorf("run %d anonymised %d, want %d", i+1, got, want)
		}
	}
	want := []retention.Row{{Time: now.Add(-100 * day)}, {Subject: "user_a", Time: now, Data: map[string]any{"ip": "203.0.113.8"}}}
	if diff := cmp.Diff(want, w.logs.Rows()); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestASecondConcurrentRunDoesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.notes.hook = func(steward.User) {
		once.Do(func() { close(inside); <-release })
	}
	done := make(chan error)
	go func() {
		_, err := w.engine.Run(ctx, retention.RunOptions{})
		done <- err
	}()
	<-inside
	second := w.newEngine(t)
	rep, err := second.Run(ctx, retention.RunOptions{})
	if !errors.Is(err, retention.ErrLeaseHeld) || len(rep.Policies) != 0 {
		t.Errorf("second Run = %+v, %v; want ErrLeaseHeld and nothing done", rep, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(w.notes.told()); got != 3 {
		t.Errorf("%d notices, want 3 (one each)", got)
	}
	if _, err := second.Run(ctx, retention.RunOptions{}); err != nil {
		t.Errorf("Run after the first finished = %v", err)
	}
}

func TestScheduleRunsOnItsClockUntilCancelled(t *testing.T) {
	w := newWorld(t)
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	e := w.newEngine(t, retention.WithAfter(func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan retention.Report, 3)
	done := make(chan error)
	go func() {
		done <- e.Schedule(ctx, time.Hour, 10*time.Minute, retention.RunOptions{}, func(r retention.Report, err error) {
			if err != nil {
				t.Error(err)
			}
			runs <- r
		})
	}()
	if d := <-waits; d < 0 || d >= 10*time.Minute {
		t.Errorf("first wait %v, want under the jitter", d)
	}
	for i, want := range []int{1, 0} {
		fire <- now
		if got := byName(<-runs)["activity_logs"].Purged; got != want {
			t.Errorf("run %d purged %d, want %d", i+1, got, want)
		}
		if d := <-waits; d < time.Hour || d >= time.Hour+10*time.Minute {
			t.Errorf("wait %v, want the interval plus under the jitter", d)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Schedule = %v, want context.Canceled", err)
	}
	if err := e.Schedule(ctx, 0, 0, retention.RunOptions{}, nil); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("Schedule with no interval = %v", err)
	}
}

func TestPolicyValidation(t *testing.T) {
	target := &retention.MemoryTarget{}
	tests := []struct {
		name string
		p    retention.Policy
		want string
	}{
		{"a policy needs a name", retention.Policy{MaxAge: day, Action: retention.Delete, Target: target}, "Name is empty"},
		{"MaxAge must be positive", retention.Policy{Name: "x", Action: retention.Delete, Target: target}, "MaxAge must be positive"},
		{"Delete needs a Target", retention.Policy{Name: "x", MaxAge: day, Action: retention.Delete}, "needs a Target"},
		{"Anonymise needs an Anonymiser", retention.Policy{Name: "x", MaxAge: day, Action: retention.Anonymise, Target: onlyTarget{}}, "implements Anonymiser"},
		{"the action must be known", retention.Policy{Name: "x", MaxAge: day, Action: "shred", Target: target}, `unknown Action "shred"`},
		{"BatchSize must not be negative", retention.Policy{Name: "x", MaxAge: day, Action: retention.Delete, Target: target, BatchSize: -1}, "BatchSize is negative"},
		{"GracePeriod must not be negative", retention.Policy{Name: "x", MaxAge: day, Action: retention.NotifyThenErase, GracePeriod: -day}, "GracePeriod is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := retention.NewEngine([]retention.Policy{tt.p})
			if !errors.Is(err, retention.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewEngine = %v, want ErrInvalidPolicy saying %q", err, tt.want)
			}
		})
	}
	t.Run("policy names are unique", func(t *testing.T) {
		p := retention.Policy{Name: "x", MaxAge: day, Action: retention.Delete, Target: target}
		if _, err := retention.NewEngine([]retention.Policy{p, p}); !errors.Is(err, retention.ErrInvalidPolicy) {
			t.Errorf("NewEngine = %v", err)
		}
	})
	t.Run("NotifyThenErase needs an identity provider, a notifier and an eraser", func(t *testing.T) {
		if _, err := retention.NewEngine(retention.DefaultPolicies(target, target)); !errors.Is(err, retention.ErrInvalidPolicy) {
			t.Errorf("NewEngine = %v", err)
		}
	})
}

type onlyTarget struct{}

func (onlyTarget) Count(context.Context, time.Time, []string) (int, error)      { return 0, nil }
func (onlyTarget) Purge(context.Context, time.Time, int, []string) (int, error) { return 0, nil }

func TestDefaultPolicies(t *testing.T) {
	type row struct {
		Name   string
		MaxAge time.Duration
		Action retention.Action
		Grace  time.Duration
	}
	var got []row
	for _, p := range retention.DefaultPolicies(&retention.MemoryTarget{}, &retention.MemoryTarget{}) {
		got = append(got, row{p.Name, p.MaxAge, p.Action, p.GracePeriod})
	}
	want := []row{
		{"activity_logs", 90 * day, retention.Delete, 0},
		{"sessions", 30 * day, retention.Delete, 0},
		{"inactive_users", 365 * day, retention.NotifyThenErase, 30 * day},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultPolicies (-want +got):\n%s", diff)
	}
}

// TestDefaultPoliciesForTheTablesAnAppHas: an app without a sessions (or
// activity) table passes nil and gets the other policies, which validate
// and run.
func TestDefaultPoliciesForTheTablesAnAppHas(t *testing.T) {
	var noTable *retention.MemoryTarget // a typed nil counts as none too
	tests := []struct {
		name               string
		activity, sessions retention.Target
		want               []string
	}{
		{"both", &retention.MemoryTarget{}, &retention.MemoryTarget{}, []string{"activity_logs", "sessions", "inactive_users"}},
		{"no sessions table", &retention.MemoryTarget{}, nil, []string{"activity_logs", "inactive_users"}},
		{"no activity table", nil, &retention.MemoryTarget{}, []string{"sessions", "inactive_users"}},
		{"neither", nil, noTable, []string{"inactive_users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := retention.DefaultPolicies(tt.activity, tt.sessions)
			var got []string
			for _, p := range ps {
				got = append(got, p.Name)
				if err := p.Validate(); err != nil {
					t.Errorf("policy %s: %v", p.Name, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("policies (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("an engine runs the policies of an app without sessions", func(t *testing.T) {
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		logs := &retention.MemoryTarget{}
		logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)}, retention.Row{Subject: "user_a", Time: now.Add(-10 * day)})
		ps := retention.DefaultPolicies(logs, nil)[:1] // the inactive-user policy needs an identity provider
		e, err := retention.NewEngine(ps, retention.WithNow(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.Run(t.Context(), retention.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{1}, []int{rep.Policies[0].Purged}); diff != "" || len(rep.Policies) != 1 {
			t.Errorf("purged (-want +got):\n%s (policies %d)", diff, len(rep.Policies))
		}
	})
}
