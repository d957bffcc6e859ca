package retention_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

// blockFirstNotice makes the world's notifier stop inside the first
// notice until the returned release is called; inside is closed then.
func (w *world) blockFirstNotice() (inside <-chan struct{}, release func()) {
	in, rel := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	w.notes.hook = func(steward.User) {
		if first.CompareAndSwap(false, true) { // later notices, of any run, do not wait
			close(in)
			<-rel
		}
	}
	var relOnce sync.Once
	return in, func() { relOnce.Do(func() { close(rel) }) }
}

// runAsync starts e.Run and returns where its result arrives.
func runAsync(e *retention.Engine, opts retention.RunOptions) <-chan result {
	done := make(chan result, 1)
	go func() {
		rep, err := e.Run(context.Background(), opts)
		done <- result{rep, err}
	}()
	return done
}

type result struct {
	rep retention.Report
	err error
}

func TestLeaseKeepsRunsApart(t *testing.T) {
	ctx := context.Background()
	t.Run("a run finding the lease held does nothing, and takes it once its holder's ttl has passed on the Leaser's clock", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		if _, err := w.leases.AcquireLease(ctx, retention.LeaseName, "dead-instance", time.Minute); err != nil {
			t.Fatal(err)
		}
		rep, err := w.engine.Run(ctx, retention.RunOptions{})
		if !errors.Is(err, retention.ErrLeaseHeld) || !errors.Is(err, steward.ErrLeaseHeld) || len(rep.Policies) != 0 {
			t.Fatalf("Run = %+v, %v; want ErrLeaseHeld (retention's and steward's) and nothing done", rep, err)
		}
		if len(w.notes.told()) != 0 {
			t.Errorf("a run without the lease notified %v", w.notes.told())
		}
		w.clock.Add(time.Minute)
		if _, err := w.engine.Run(ctx, retention.RunOptions{}); err != nil {
			t.Fatalf("Run after expiry = %v", err)
		}
	})
	for _, tt := range []struct {
		name   string
		second func(w *world, t *testing.T) *retention.Engine
	}{
		{"two Runs of one Engine never both hold the lease", func(w *world, t *testing.T) *retention.Engine { return w.engine }},
		{"two Engines given the same owner name never both run", func(w *world, t *testing.T) *retention.Engine {
			w.engine = w.newEngine(t, retention.WithOwner("retentionjob"))
			return w.newEngine(t, retention.WithOwner("retentionjob"))
		}},
		{"an Engine whose clock is an hour ahead does not take a live lease", func(w *world, t *testing.T) *retention.Engine {
			return w.newEngine(t, retention.WithNow(func() time.Time { return w.clock.Now().Add(time.Hour) }))
		}},
		{"an Engine whose clock is an hour behind is not kept out by it either", func(w *world, t *testing.T) *retention.Engine {
			w.engine = w.newEngine(t, retention.WithNow(func() time.Time { return w.clock.Now().Add(time.Hour) }))
			return w.newEngine(t)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			for i := 0; i < 3; i++ {
				w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
			}
			second := tt.second(w, t)
			inside, release := w.blockFirstNotice()
			defer release()
			first := runAsync(w.engine, retention.RunOptions{})
			<-inside
			rep, err := second.Run(ctx, retention.RunOptions{})
			if !errors.Is(err, retention.ErrLeaseHeld) || len(rep.Policies) != 0 {
				t.Errorf("second Run = %+v, %v; want ErrLeaseHeld and nothing done", rep, err)
			}
			release()
			if r := <-first; r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff([]string{"user_0", "user_1", "user_2"}, w.notes.told()); diff != "" {
				t.Errorf("notified (-want +got):\n%s", diff)
			}
			if _, err := second.Run(ctx, retention.RunOptions{}); err != nil {
				t.Errorf("second Run after the first ended = %v", err)
			}
		})
	}
	t.Run("a slow notifier does not let a second run in: the lease is renewed in the background", func(t *testing.T) {
		w := newWorld(t)
		leases := steward.NewMemoryLeases(nil) // real time, short ttl
		const ttl = 60 * time.Millisecond
		w.engine = w.newEngine(t, retention.WithLease(leases, ttl))
		second := w.newEngine(t, retention.WithLease(leases, ttl))
		for i := 0; i < 3; i++ {
			w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
		}
		inside, release := w.blockFirstNotice()
		defer release()
		first := runAsync(w.engine, retention.RunOptions{})
		<-inside
		deadline := time.Now().Add(6 * ttl) // the notice takes six ttls
		tries := 0
		for time.Now().Before(deadline) {
			tries++
			if _, err := second.Run(ctx, retention.RunOptions{}); !errors.Is(err, retention.ErrLeaseHeld) {
				t.Fatalf("try %d of a second Run while the first notifies = %v, want ErrLeaseHeld", tries, err)
			}
			time.Sleep(ttl / 4)
		}
		release()
		if r := <-first; r.err != nil {
			t.Fatalf("the slow run = %v", r.err)
		}
		if diff := cmp.Diff([]string{"user_0", "user_1", "user_2"}, w.notes.told()); diff != "" {
			t.Errorf("notified (-want +got):\n%s", diff)
		}
	})
	t.Run("a lease that cannot be renewed for a whole ttl is given up", func(t *testing.T) {
		w := newWorld(t)
		const ttl = 60 * time.Millisecond
		leases := &unrenewable{MemoryLeases: steward.NewMemoryLeases(nil)}
		w.engine = w.newEngine(t, retention.WithLease(leases, ttl))
		for i := 0; i < 3; i++ {
			w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
		}
		w.notes.hook = func(u steward.User) {
			if u.ID == "user_0" {
				leases.broken.Store(true) // the database goes away mid-notice
				time.Sleep(3 * ttl)
			}
		}
		rep, err := w.engine.Run(ctx, retention.RunOptions{})
		if !errors.Is(err, retention.ErrLeaseLost) {
			t.Fatalf("Run = %v, want ErrLeaseLost", err)
		}
		if got := byName(rep)["inactive_users"].Notified; got != 1 {
			t.Errorf("notified %d, want 1 before the lease was given up", got)
		}
	})
}

// unrenewable cannot renew leases once broken, like a database that went
// away after the lease was taken.
type unrenewable struct {
	*steward.MemoryLeases
	broken atomic.Bool
}

func (u *unrenewable) RenewLease(ctx context.Context, l steward.Lease, ttl time.Duration) (steward.Lease, error) {
	if u.broken.Load() {
		return steward.Lease{}, errors.New("connection refused")
	}
	return u.MemoryLeases.RenewLease(ctx, l, ttl)
}

// steal lets the world's lease expire and gives it to another owner.
func (w *world) steal(t *testing.T) {
	w.clock.Add(2 * time.Minute)
	if _, err := w.leases.AcquireLease(context.Background(), retention.LeaseName, "other-instance", time.Hour); err != nil {
		t.Errorf("stealing the lease: %v", err)
	}
}

func TestALostLeaseStopsTheRunBeforeItsNextDestructiveStep(t *testing.T) {
	ctx := context.Background()
	t.Run("notices", func(t *testing.T) {
		w := newWorld(t)
		for i := 0; i < 3; i++ {
			w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
		}
		var once sync.Once
		w.notes.hook = func(steward.User) { once.Do(func() { w.steal(t) }) }
		rep, err := w.engine.Run(ctx, retention.RunOptions{})
		if !errors.Is(err, retention.ErrLeaseLost) || !errors.Is(err, steward.ErrLeaseLost) {
			t.Fatalf("Run = %v, want ErrLeaseLost (retention's and steward's)", err)
		}
		if got := byName(rep)["inactive_users"]; got.Notified != 1 || got.Failed != 0 {
			t.Errorf("report %+v, want one notice before the lease was lost", got)
		}
		if diff := cmp.Diff([]string{"user_0"}, w.notes.told()); diff != "" {
			t.Errorf("notified (-want +got):\n%s", diff)
		}
		// The notice that was sent is recorded; the others were not claimed.
		if md := w.user(t, "user_0").PrivateMetadata; md[retention.NotifiedKey] == nil {
			t.Errorf("the sent notice was not recorded: %v", md)
		}
		for _, id := range []string{"user_1", "user_2"} {
			if _, claimed, err := w.holds.ClaimNotice(ctx, id, now.Add(-400*day), "probe", time.Minute); err != nil || !claimed {
				t.Errorf("%s: the stopped run left a claim (%v, %v)", id, claimed, err)
			}
		}
	})
	t.Run("purge batches, and the policies after", func(t *testing.T) {
		w := newWorld(t)
		for i := 0; i < 6; i++ {
			w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
		}
		w.sessions.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
		target := &stealing{MemoryTarget: w.logs, steal: func() { w.steal(t) }}
		w.engine = w.newEngine(t)
		e, err := retention.NewEngine([]retention.Policy{
			{Name: "logs", Target: target, MaxAge: 90 * day, Action: retention.Delete, BatchSize: 2},
			{Name: "sessions", Target: w.sessions, MaxAge: 30 * day, Action: retention.Delete},
		}, retention.WithNow(w.clock.Now), retention.WithLease(w.leases, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := e.Run(ctx, retention.RunOptions{})
		if !errors.Is(err, retention.ErrLeaseLost) {
			t.Fatalf("Run = %v, want ErrLeaseLost", err)
		}
		if len(rep.Policies) != 1 || rep.Policies[0].Purged != 2 {
			t.Errorf("report %+v, want one batch of logs and no sessions policy", rep.Policies)
		}
		if got := len(w.logs.Rows()); got != 4 {
			t.Errorf("%d logs left, want 4", got)
		}
		if got := len(w.sessions.Rows()); got != 1 {
			t.Errorf("%d sessions left, want 1: a later policy ran without the lease", got)
		}
	})
	t.Run("erasures", func(t *testing.T) {
		w := newWorld(t)
		for i := 0; i < 3; i++ {
			w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, notice(now.Add(-40*day)))
		}
		var once sync.Once
		w.engine = w.newEngine(t, retention.WithEraser(eraserFunc(func(ctx context.Context, id string, opts ...privacy.EraseOption) (privacy.DeletionResult, error) {
			res, err := w.svc.Erase(ctx, id, opts...)
			once.Do(func() { w.steal(t) })
			return res, err
		})))
		rep, err := w.engine.Run(ctx, retention.RunOptions{})
		if !errors.Is(err, retention.ErrLeaseLost) {
			t.Fatalf("Run = %v, want ErrLeaseLost", err)
		}
		if got := byName(rep)["inactive_users"].Erased; got != 1 {
			t.Errorf("erased %d, want 1 before the lease was lost", got)
		}
		left := 0
		for i := 0; i < 3; i++ {
			if _, err := w.idp.GetUser(ctx, fmt.Sprintf("user_%d", i)); err == nil {
				left++
			}
		}
		if left != 2 {
			t.Errorf("%d users left, want 2", left)
		}
	})
}

type eraserFunc func(ctx context.Context, userID string, opts ...privacy.EraseOption) (privacy.DeletionResult, error)

func (f eraserFunc) Erase(ctx context.Context, userID string, opts ...privacy.EraseOption) (privacy.DeletionResult, error) {
	return f(ctx, userID, opts...)
}

// stealing is a target that has the lease stolen after its first purge.
type stealing struct {
	*retention.MemoryTarget
	steal func()
	once  sync.Once
}

func (s *stealing) Purge(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	n, err := s.MemoryTarget.Purge(ctx, olderThan, limit, exclude)
	s.once.Do(s.steal)
	return n, err
}

func TestADryRunIsSafeBesideARealRun(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for i := 0; i < 3; i++ {
		w.inactiveUser(fmt.Sprintf("user_%d", i), 400*day, nil)
	}
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
	dryNotes := &notifier{}
	dry := w.newEngine(t, retention.WithNotifier(dryNotes))
	inside, release := w.blockFirstNotice()
	defer release()
	real := runAsync(w.engine, retention.RunOptions{})
	<-inside // the real run holds the lease and has claimed user_0's notice
	before := w.user(t, "user_1")
	rep, err := dry.Run(ctx, retention.RunOptions{DryRun: true})
	if err != nil {
		t.Fatalf("a dry run beside a real one = %v, want it to run", err)
	}
	if got := byName(rep)["inactive_users"]; got.Notified != 3 || got.Scanned != 3 {
		t.Errorf("dry report %+v, want 3 users who would be notified", got)
	}
	if len(dryNotes.told()) != 0 {
		t.Errorf("a dry run notified %v", dryNotes.told())
	}
	if diff := cmp.Diff(before, w.user(t, "user_1")); diff != "" {
		t.Errorf("a dry run changed a user (-before +after):\n%s", diff)
	}
	for _, id := range []string{"user_1", "user_2"} {
		n, claimed, err := w.holds.ClaimNotice(ctx, id, now.Add(-400*day), "probe", time.Nanosecond+time.Millisecond)
		if err != nil || !claimed {
			t.Errorf("%s: a dry run left a notice claim: %+v, %v", id, n, err)
		}
	}
	time.Sleep(5 * time.Millisecond) // the probes' claims run out
	release()
	r := <-real
	if r.err != nil {
		t.Fatalf("the real run beside a dry run = %v, want it undisturbed", r.err)
	}
	if diff := cmp.Diff([]string{"user_0", "user_1", "user_2"}, w.notes.told()); diff != "" {
		t.Errorf("the real run notified (-want +got):\n%s", diff)
	}
	if got := byName(r.rep)["activity_logs"].Purged; got != 1 {
		t.Errorf("the real run purged %d logs, want 1", got)
	}
}

// countingNotifier counts notices per user, slowly enough that runners
// overlap.
type countingNotifier struct {
	mu    sync.Mutex
	count map[string]int
	delay time.Duration
}

func (c *countingNotifier) NotifyInactive(_ context.Context, u steward.User, _ time.Time) error {
	time.Sleep(c.delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		c.count = map[string]int{}
	}
	c.count[u.ID]++
	return nil
}

func (c *countingNotifier) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.count)
}

// engineWithoutLease is an Engine of the world's users that takes no
// lease, so only the notice records keep it from another runner.
func (w *world) engineWithoutLease(t *testing.T, n retention.Notifier, opts ...retention.Option) *retention.Engine {
	t.Helper()
	e, err := retention.NewEngine([]retention.Policy{{Name: "inactive_users", MaxAge: 365 * day, Action: retention.NotifyThenErase,
		GracePeriod: 30 * day, BatchSize: 4}}, append([]retention.Option{retention.WithIdentity(w.idp), retention.WithHolds(w.holds),
		retention.WithNotifier(n), retention.WithEraser(w.svc), retention.WithNow(w.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestNotices(t *testing.T) {
	ctx := context.Background()
	t.Run("a notice is claimed before it is sent", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		var seen retention.Notice
		var claimed bool
		w.notes.hook = func(u steward.User) {
			var err error
			seen, claimed, err = w.holds.ClaimNotice(ctx, u.ID, lastActiveOf(u), "another-runner", time.Minute)
			if err != nil {
				t.Error(err)
			}
		}
		w.run(t, false)
		if claimed || seen.State != retention.NoticePending {
			t.Errorf("while the notice was sent, another runner's claim got %+v (claimed %v), want it refused as pending", seen, claimed)
		}
	})
	t.Run("two runners over the same inactive users notify each user exactly once", func(t *testing.T) {
		w := newWorld(t)
		want := map[string]int{}
		for i := 0; i < 20; i++ {
			id := fmt.Sprintf("user_%02d", i)
			w.inactiveUser(id, 400*day, nil)
			want[id] = 1
		}
		notes := &countingNotifier{delay: time.Millisecond}
		a, b := w.engineWithoutLease(t, notes), w.engineWithoutLease(t, notes)
		ra, rb := runAsync(a, retention.RunOptions{}), runAsync(b, retention.RunOptions{})
		total := 0
		for _, c := range []<-chan result{ra, rb} {
			r := <-c
			if r.err != nil {
				t.Fatal(r.err)
			}
			p := r.rep.Policies[0]
			total += p.Notified
			if p.Notified+p.Waiting != 20 {
				t.Errorf("a runner accounted for %d notified and %d waiting, want 20 in all: %+v", p.Notified, p.Waiting, p)
			}
		}
		if diff := cmp.Diff(want, notes.counts()); diff != "" {
			t.Errorf("notices per user (-want +got):\n%s", diff)
		}
		if total != 20 {
			t.Errorf("the runners report %d notices, want 20", total)
		}
		for id := range want {
			if w.user(t, id).PrivateMetadata[retention.NotifiedKey] != now.Format(time.RFC3339) {
				t.Errorf("%s: the notice is not in the metadata", id)
			}
		}
	})
	t.Run("a failed notice is recorded as failed and sent on a later run, once", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		w.notes.fail = map[string]bool{"user_a": true}
		if _, err := w.engine.Run(ctx, retention.RunOptions{}); err == nil {
			t.Fatal("Run with a failing notifier succeeded")
		}
		w.notes.fail = nil
		for i := 0; i < 3; i++ {
			w.clock.Add(day)
			w.run(t, false)
		}
		if diff := cmp.Diff([]string{"user_a"}, w.notes.told()); diff != "" {
			t.Errorf("notified (-want +got):\n%s", diff)
		}
	})
	t.Run("a notice sent but missing from the metadata is not sent again, and the metadata is mended", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		flaky := &flakyMetadata{MemoryIdentity: w.idp}
		flaky.fail.Store(1)
		w.engine = w.newEngine(t, retention.WithIdentity(flaky))
		rep, err := w.engine.Run(ctx, retention.RunOptions{})
		if err == nil {
			t.Fatal("Run whose metadata write failed reported no error")
		}
		if got := byName(rep)["inactive_users"]; got.Notified != 1 || got.Failed != 1 {
			t.Errorf("first run %+v, want the user notified and the failed write counted", got)
		}
		w.clock.Add(day)
		if got := w.run(t, false)["inactive_users"]; got.Notified != 0 || got.Waiting != 1 {
			t.Errorf("second run %+v, want the user waiting", got)
		}
		if diff := cmp.Diff([]string{"user_a"}, w.notes.told()); diff != "" {
			t.Errorf("notified (-want +got):\n%s", diff)
		}
		if got := w.user(t, "user_a").PrivateMetadata[retention.NotifiedKey]; got != now.Format(time.RFC3339) {
			t.Errorf("metadata %s = %v, want the time of the first notice", retention.NotifiedKey, got)
		}
	})
	t.Run("a claim left by a runner that died is sent once it has run out", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		if _, _, err := w.holds.ClaimNotice(ctx, "user_a", lastActiveOf(w.user(t, "user_a")), "dead-runner", 30*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if got := w.run(t, false)["inactive_users"]; got.Notified != 0 || got.Waiting != 1 {
			t.Errorf("while the claim is live: %+v, want the user left to its holder", got)
		}
		time.Sleep(60 * time.Millisecond)
		if got := w.run(t, false)["inactive_users"]; got.Notified != 1 {
			t.Errorf("after the claim ran out: %+v, want the user notified", got)
		}
		if diff := cmp.Diff([]string{"user_a"}, w.notes.told()); diff != "" {
			t.Errorf("notified (-want +got):\n%s", diff)
		}
	})
	t.Run("an erased user's notice record is forgotten", func(t *testing.T) {
		w := newWorld(t)
		w.inactiveUser("user_a", 400*day, nil)
		w.run(t, false)
		w.clock.Add(retention.InactiveGracePeriod)
		if got := w.run(t, false)["inactive_users"]; got.Erased != 1 {
			t.Fatalf("run after the grace period: %+v", got)
		}
		n, claimed, err := w.holds.ClaimNotice(ctx, "user_a", now.Add(-400*day), "probe", time.Minute)
		if err != nil || !claimed || n.Attempts != 1 {
			t.Errorf("claim after the erasure = %+v, %v, %v; want a fresh record", n, claimed, err)
		}
	})
}

func lastActiveOf(u steward.User) time.Time {
	if !u.LastActiveAt.IsZero() {
		return u.LastActiveAt
	}
	return u.CreatedAt
}

// flakyMetadata fails the next fail writes of NotifiedKey.
type flakyMetadata struct {
	*steward.MemoryIdentity
	fail atomic.Int32
}

func (f *flakyMetadata) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	if _, ok := p.Private[retention.NotifiedKey]; ok && f.fail.Add(-1) >= 0 {
		return errors.New("identity provider unavailable")
	}
	return f.MemoryIdentity.UpdateMetadata(ctx, id, p)
}

func TestLeaseOptionsAreChecked(t *testing.T) {
	policies := []retention.Policy{{Name: "logs", Target: &retention.MemoryTarget{}, MaxAge: day, Action: retention.Delete}}
	for name, opts := range map[string][]retention.Option{
		"an owner name over the limit": {retention.WithOwner(strings.Repeat("x", steward.MaxLeaseNameLen+1))},
		"a ttl under a millisecond":    {retention.WithLease(steward.NewMemoryLeases(nil), time.Microsecond)},
	} {
		if _, err := retention.NewEngine(policies, opts...); !errors.Is(err, steward.ErrInvalidLease) {
			t.Errorf("NewEngine with %s = %v, want ErrInvalidLease", name, err)
		}
	}
}
