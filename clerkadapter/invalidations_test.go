package clerkadapter_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

// replica is one process's LiveRoles over a shared fake Clerk.
type replica struct {
	roles  *clerkadapter.LiveRoles
	mu     sync.Mutex
	errors []error
}

func (r *replica) errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errors...)
}

func newReplica(srv *clerktest.Server, log clerkadapter.InvalidationLog, clk *clock, poll time.Duration) *replica {
	r := &replica{}
	prov := clerkadapter.New(srv.ClientConfig(), fastRetries, clerkadapter.WithMaxAttempts(1))
	r.roles = clerkadapter.NewLiveRoles(prov, &clerkadapter.LiveRolesOptions{
		TTL: time.Hour, Now: clk.Now, Invalidations: log, PollInterval: poll,
		OnError: func(err error) { r.mu.Lock(); r.errors = append(r.errors, err); r.mu.Unlock() },
	})
	return r
}

func role(t *testing.T, r *replica, id string) string {
	t.Helper()
	acct, err := r.roles.Account(t.Context(), id)
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	return string(acct.Role)
}

func TestLiveRolesInvalidationReachesOtherProcesses(t *testing.T) {
	clk := newClock()
	srv := newServer(t, clerktest.WithNow(clk.Now))
	log := clerkadapter.NewMemoryInvalidations(clk.Now)
	a, b := newReplica(srv, log, clk, 0), newReplica(srv, log, clk, 0)
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "user"}})
	if n, err := b.roles.Poll(t.Context()); err != nil || n != 0 {
		t.Fatalf("first Poll of an empty log = %d, %v", n, err)
	}
	if got := role(t, b, u.ID); got != "user" {
		t.Fatalf("role %q, want user", got)
	}

	if err := a.roles.InvalidateContext(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.PublicMetadata["role"] = "admin"; return x }())
	if got := role(t, b, u.ID); got != "user" {
		t.Errorf("role %q before the other process polled: want its cached user (the TTL is an hour)", got)
	}
	if n, err := b.roles.Poll(t.Context()); err != nil || n != 1 {
		t.Errorf("Poll = %d, %v; want the one invalidation", n, err)
	}
	if got := role(t, b, u.ID); got != "admin" {
		t.Errorf("role %q after the other process polled, want admin", got)
	}
	if n, err := b.roles.Poll(t.Context()); err != nil || n != 0 {
		t.Errorf("a second Poll = %d, %v; want nothing new", n, err)
	}
	if gets := srv.CountRequests(http.MethodGet, "/v1/users/"+u.ID); gets != 2 {
		t.Errorf("the user was read %d times, want 2 (before and after the change)", gets)
	}
}

func TestLiveRolesRunPollsAtItsInterval(t *testing.T) {
	srv := newServer(t)
	log := clerkadapter.NewMemoryInvalidations(nil)
	clk := &clock{t: time.Now()} // the TTL of an hour does not pass
	a, b := newReplica(srv, log, clk, 10*time.Millisecond), newReplica(srv, log, clk, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- b.roles.Run(ctx) }()
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	if got := role(t, b, u.ID); got != "admin" {
		t.Fatalf("role %q, want admin", got)
	}
	srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.Banned = true; return x }())
	a.roles.Invalidate(u.ID) // as useradmin does in the other process after a ban
	deadline := time.Now().Add(10 * time.Second)
	for {
		acct, err := b.roles.Account(t.Context(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if acct.Banned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ban made in one process never reached the other's Run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if len(a.errs())+len(b.errs()) != 0 {
		t.Errorf("OnError heard %v, %v", a.errs(), b.errs())
	}
}

// downLog is an InvalidationLog that cannot be reached while down is set.
type downLog struct {
	clerkadapter.InvalidationLog
	mu   sync.Mutex
	down bool
}

var errLogDown = errors.New("invalidation log unreachable")

func (d *downLog) set(down bool) { d.mu.Lock(); d.down = down; d.mu.Unlock() }

func (d *downLog) isDown() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.down }

func (d *downLog) Invalidate(ctx context.Context, id string, keep time.Duration) error {
	if d.isDown() {
		return errLogDown
	}
	return d.InvalidationLog.Invalidate(ctx, id, keep)
}

func (d *downLog) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	if d.isDown() {
		return nil, cursor, errLogDown
	}
	return d.InvalidationLog.InvalidatedSince(ctx, cursor)
}

func TestLiveRolesWithTheLogDownFallBackToTheTTL(t *testing.T) {
	clk := newClock()
	srv := newServer(t, clerktest.WithNow(clk.Now))
	log := &downLog{InvalidationLog: clerkadapter.NewMemoryInvalidations(clk.Now)}
	a, b := newReplica(srv, log, clk, 0), newReplica(srv, log, clk, 0)
	auth := clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{Now: clk.Now, Roles: b.roles})
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	if got := role(t, b, u.ID); got != "admin" {
		t.Fatalf("role %q, want admin", got)
	}

	log.set(true)
	srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.PublicMetadata["role"] = "user"; return x }())
	if err := a.roles.InvalidateContext(t.Context(), u.ID); !errors.Is(err, errLogDown) {
		t.Errorf("InvalidateContext with the log down = %v, want its error", err)
	}
	if got := role(t, a, u.ID); got != "user" {
		t.Errorf("role %q in the process that invalidated, want user: it forgets its own entry whatever the log", got)
	}
	a.roles.Invalidate(u.ID)
	if errs := a.errs(); len(errs) != 1 || !errors.Is(errs[0], errLogDown) {
		t.Errorf("OnError after Invalidate heard %v, want the log's error", errs)
	}
	if _, err := b.roles.Poll(t.Context()); !errors.Is(err, errLogDown) {
		t.Errorf("Poll with the log down = %v, want its error", err)
	}
	// Authentication goes on from the cache, until the TTL.
	p, ok := serve(auth, bearer(srv.SessionToken(u.ID)))
	if !ok || p.Role != "admin" {
		t.Errorf("principal %+v (present %v) with the log down: want the cached admin", p, ok)
	}
	clk.Advance(time.Hour)
	if p, ok := serve(auth, bearer(srv.SessionToken(u.ID))); !ok || p.Role != "user" {
		t.Errorf("principal %+v (present %v) after the TTL: want the change read afresh", p, ok)
	}

	// Back up: the position was kept, so nothing recorded is missed.
	log.set(false)
	if err := a.roles.InvalidateContext(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := b.roles.Poll(t.Context()); err != nil || n != 1 {
		t.Errorf("Poll once the log is back = %d, %v; want the one invalidation recorded", n, err)
	}
}

func TestRunAndPollNeedALog(t *testing.T) {
	roles := clerkadapter.NewLiveRoles(steward.NewMemoryIdentity(), nil)
	if err := roles.Run(t.Context()); err == nil {
		t.Error("Run without Invalidations returned nil")
	}
	if _, err := roles.Poll(t.Context()); err == nil {
		t.Error("Poll without Invalidations returned nil")
	}
}

func TestMemoryInvalidationsDropExpiredRecords(t *testing.T) {
	clk := newClock()
	log := clerkadapter.NewMemoryInvalidations(clk.Now)
	ctx := t.Context()
	for range 5 {
		if err := log.Invalidate(ctx, "user_a", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	if err := log.Invalidate(ctx, "user_b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := log.Len(); n != 1 {
		t.Errorf("Len = %d after five records expired, want 1", n)
	}
	ids, _, err := log.InvalidatedSince(ctx, 0)
	if diff := cmp.Diff([]string{"user_b"}, ids); diff != "" || err != nil {
		t.Errorf("InvalidatedSince(0) (-want +got):\n%s%v", diff, err)
	}
}

func TestWebhookFailsWhenTheInvalidationCannotBeRecorded(t *testing.T) {
	f := newWebhookFixture(t)
	log := &downLog{InvalidationLog: clerkadapter.NewMemoryInvalidations(f.clock.Now)}
	roles := clerkadapter.NewLiveRoles(clerkadapter.New(f.srv.ClientConfig()), &clerkadapter.LiveRolesOptions{Now: f.clock.Now, Invalidations: log})
	auth := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{Now: f.clock.Now, Roles: roles})
	var handled int
	h, err := clerkadapter.NewWebhookHandler(f.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		OnUserUpdated: func(context.Context, clerkadapter.UserEvent) error { handled++; return nil },
		Roles:         auth,
		Now:           f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	p, _ := f.srv.UserEventPayload("user.updated", f.user.ID)
	log.set(true)
	if code := f.deliver(f.request("msg_inv", f.clock.Now(), p)); code != http.StatusInternalServerError || handled != 0 {
		t.Errorf("with the invalidation log down: status %d, handled %d; want 500 and not handled", code, handled)
	}
	log.set(false)
	f.clock.Advance(5 * time.Second) // Svix's next attempt
	if code := f.deliver(f.request("msg_inv", f.clock.Now(), p)); code != http.StatusOK || handled != 1 {
		t.Errorf("redelivery: status %d, handled %d; want 200 and handled once", code, handled)
	}
	ids, _, err := log.InvalidatedSince(t.Context(), 0)
	if diff := cmp.Diff([]string{f.user.ID}, ids); diff != "" || err != nil {
		t.Errorf("invalidations recorded for the other processes (-want +got):\n%s%v", diff, err)
	}
}

// countingLog counts the reads of an InvalidationLog.
type countingLog struct {
	clerkadapter.InvalidationLog
	reads atomic.Int32
}

func (c *countingLog) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	c.reads.Add(1)
	return c.InvalidationLog.InvalidatedSince(ctx, cursor)
}

// TestRequestsNeverReadTheLog: authenticating requests reads accounts
// from the cache; only Poll (and Run) read the log.
func TestRequestsNeverReadTheLog(t *testing.T) {
	clk := newClock()
	srv := newServer(t, clerktest.WithNow(clk.Now))
	log := &countingLog{InvalidationLog: clerkadapter.NewMemoryInvalidations(clk.Now)}
	r := newReplica(srv, log, clk, 0)
	auth := clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{Now: clk.Now, Roles: r.roles})
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	tok := srv.SessionToken(u.ID)
	for range 100 {
		if p, ok := serve(auth, bearer(tok)); !ok || p.Role != "admin" {
			t.Fatalf("principal %+v (present %v)", p, ok)
		}
	}
	if n := log.reads.Load(); n != 0 {
		t.Errorf("100 requests read the log %d times, want 0", n)
	}
	if _, err := r.roles.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := log.reads.Load(); n != 1 {
		t.Errorf("one Poll of an empty log read it %d times, want 1", n)
	}
}
