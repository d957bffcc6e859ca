package consenttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
)

// NewInstances returns two handles on one empty store, each also a
// consent.Outbox, as two processes sharing one database would hold them
// (each with its own connection pool, say).
type NewInstances func(t *testing.T) (consent.Store, consent.Store)

// RunInstances runs the cases for several instances: two Managers, each
// over its own handle on one store, change and mirror the same users to
// one identity provider fake that records every write. Each case states
// what must hold for the mirror.
func RunInstances(t *testing.T, newInstances NewInstances) {
	for _, r := range instanceRules {
		t.Run(r.name, func(t *testing.T) {
			a, b := newInstances(t)
			r.f(t, newPair(a, b))
		})
	}
}

var instanceUsers = []string{"user_alice", "user_bob", "user_carol"}

// pair is two instances sharing one store and one identity provider.
type pair struct {
	stores [2]consent.Store
	idp    *provider
	clock  *clock
}

func newPair(a, b consent.Store) *pair {
	p := &pair{stores: [2]consent.Store{a, b}, idp: newProvider(), clock: &clock{now: t0}}
	for _, u := range instanceUsers {
		p.idp.Put(steward.User{ID: u})
	}
	return p
}

// manager returns a Manager over instance i's handle, with fast retries.
func (p *pair) manager(t *testing.T, i int, opts ...consent.Option) *consent.Manager {
	t.Helper()
	base := []consent.Option{consent.WithNow(p.clock.Now), consent.WithRetry(time.Millisecond, 4*time.Millisecond, 3)}
	m, err := consent.NewManager(p.stores[i], p.idp, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// outbox is instance i's handle as an Outbox.
func (p *pair) outbox(i int) consent.Outbox { return p.stores[i].(consent.Outbox) }

// update changes user at a time one second after the last change, so
// every change gives a mirror of its own, and returns the mirror of the
// user's state right after the change.
func (p *pair) update(t *testing.T, m *consent.Manager, user string, changes map[consent.Purpose]bool) any {
	t.Helper()
	ctx := context.Background()
	p.clock.Add(time.Second)
	at := p.clock.Now()
	if _, err := m.Update(ctx, user, changes, consent.Meta{Source: "settings"}); err != nil {
		t.Errorf("Update: %v", err)
	}
	st, err := m.At(ctx, user, at)
	if err != nil {
		t.Errorf("At: %v", err)
	}
	return m.Mirror(st)
}

// assertConverged checks that every user's mirror is the store's latest
// state, and that nothing is left to sync.
func (p *pair) assertConverged(t *testing.T, m *consent.Manager) {
	t.Helper()
	ctx := context.Background()
	for _, u := range instanceUsers {
		st, err := m.Current(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if len(st) > 0 {
			want = m.Mirror(st)
		}
		if diff := cmp.Diff(want, p.idp.mirror(t, u)); diff != "" {
			t.Errorf("%s: mirror (-store's latest state +identity provider):\n%s", u, diff)
		}
	}
	cs, err := p.outbox(0).Claim(ctx, consent.ClaimQuery{Owner: "probe", TTL: time.Minute, Now: p.clock.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("outbox not drained: %+v", pendings(cs))
	}
}

// drain runs SyncPending on both until a round of both syncs nothing and
// fails nothing.
func (p *pair) drain(t *testing.T, ms ...*consent.Manager) {
	t.Helper()
	for range 50 {
		p.clock.Add(time.Minute) // past any backoff
		quiet := true
		for _, m := range ms {
			n, err := m.SyncPending(context.Background())
			if n != 0 || err != nil {
				quiet = false
			}
		}
		if quiet {
			return
		}
	}
	t.Error("the outbox did not drain in 50 rounds")
}

type instanceRule struct {
	name string
	f    func(t *testing.T, p *pair)
}

var instanceRules = []instanceRule{
	{"two Managers changing and syncing the same users at once end with every mirror equal to the store's latest state, never writing one user from both at once", func(t *testing.T, p *pair) {
		ms := []*consent.Manager{p.manager(t, 0), p.manager(t, 1)}
		p.idp.setHook(func(context.Context, string, any) error {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		var runs sync.WaitGroup
		for _, m := range ms {
			runs.Add(1)
			go func() { defer runs.Done(); _ = m.Run(ctx, time.Millisecond, nil) }()
		}
		purposes := []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 6 {
					u := instanceUsers[(g+i)%len(instanceUsers)]
					p.update(t, ms[g%2], u, map[consent.Purpose]bool{purposes[(g+i)%3]: (g+i)%2 == 0})
				}
			}()
		}
		wg.Wait()
		cancel()
		runs.Wait()
		p.drain(t, ms...)
		p.assertConverged(t, ms[0])
		if n := p.idp.overlaps.Load(); n != 0 {
			t.Errorf("%d writes began while another write of the same user was under way", n)
		}
	}},
	{"each change is mirrored once when changes come from both instances in turn while both run their sync loops", func(t *testing.T, p *pair) {
		var done atomic.Int32
		ms := []*consent.Manager{
			p.manager(t, 0, consent.WithOutbox(countingDone{p.outbox(0), &done})),
			p.manager(t, 1, consent.WithOutbox(countingDone{p.outbox(1), &done})),
		}
		ctx, cancel := context.WithCancel(context.Background())
		var runs sync.WaitGroup
		for _, m := range ms {
			runs.Add(1)
			go func() { defer runs.Done(); _ = m.Run(ctx, time.Millisecond, nil) }()
		}
		want := map[string][]any{}
		purposes := []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty}
		for i := range 12 {
			u := instanceUsers[i%len(instanceUsers)]
			want[u] = append(want[u], p.update(t, ms[i%2], u, map[consent.Purpose]bool{purposes[i%3]: i%4 < 2}))
			// The change's sync ends with one Done, by whichever
			// instance claimed it, before the next change is made.
			waitFor(t, func() bool { return done.Load() == int32(i+1) })
		}
		cancel()
		runs.Wait()
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes per user (-each change once, in order +got):\n%s", diff)
		}
		p.assertConverged(t, ms[0])
	}},
	{"a withdrawal recorded by one instance while the other is still writing the grant is mirrored, once, after the grant", func(t *testing.T, p *pair) {
		a, b := p.manager(t, 0), p.manager(t, 1)
		started, release := make(chan struct{}), make(chan struct{})
		p.idp.setHook(blockFirst(started, release))
		var grant any
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			grant = p.update(t, a, "user_alice", map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true})
		}()
		<-started
		withdrawal := p.update(t, b, "user_alice", map[consent.Purpose]bool{consent.Marketing: false})
		if n := p.idp.callsOf("user_alice"); n != 1 {
			t.Errorf("%d calls to the provider while the grant was being written, want only that one: the second instance must leave the user to the claim's holder", n)
		}
		close(release)
		<-finished
		want := map[string][]any{"user_alice": {grant, withdrawal}}
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		p.assertConverged(t, a)
	}},
	{"a slow write keeps its claim by renewal, so the other instance writes nothing for that user meanwhile", func(t *testing.T, p *pair) {
		a, b := p.manager(t, 0, consent.WithClaimTTL(claimTTL)), p.manager(t, 1)
		started, release := make(chan struct{}), make(chan struct{})
		p.idp.setHook(blockFirst(started, release))
		var grant any
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			grant = p.update(t, a, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: true})
		}()
		<-started
		withdrawal := p.update(t, b, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: false})
		for deadline := time.Now().Add(4 * claimTTL); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := b.SyncPending(context.Background()); err != nil {
				t.Errorf("SyncPending on the other instance: %v", err)
			}
		}
		if n := p.idp.callsOf("user_alice"); n != 1 {
			t.Errorf("%d calls to the provider during a write four claim TTLs long, want only that one", n)
		}
		close(release)
		<-finished
		want := map[string][]any{"user_alice": {grant, withdrawal}}
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		if n := p.idp.overlaps.Load(); n != 0 {
			t.Errorf("%d writes overlapped", n)
		}
		p.assertConverged(t, a)
	}},
	{"a write whose claim expired and was taken over lands late, and the newer state is written again after it, even by a holder that has just sent it", func(t *testing.T, p *pair) {
		// Instance a cannot renew (its database connection is down),
		// so its claim lapses while its provider call is stuck.
		a := p.manager(t, 0, consent.WithClaimTTL(claimTTL), consent.WithOutbox(noRenew{p.outbox(0)}))
		gate := &gatedDone{Outbox: p.outbox(1), entered: make(chan struct{}), release: make(chan struct{})}
		b := p.manager(t, 1, consent.WithOutbox(gate))
		started, release := make(chan struct{}), make(chan struct{})
		p.idp.setHook(blockFirst(started, release))
		var grant, withdrawal any
		aDone, bDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(aDone)
			grant = p.update(t, a, "user_alice", map[consent.Purpose]bool{consent.Marketing: true})
		}()
		<-started
		expire()
		go func() {
			defer close(bDone)
			withdrawal = p.update(t, b, "user_alice", map[consent.Purpose]bool{consent.Marketing: false})
		}()
		<-gate.entered // b wrote the withdrawal and is about to finish
		close(release) // a's grant lands after it
		<-aDone
		if got := p.idp.mirror(t, "user_alice"); cmp.Diff(grant, got) != "" {
			t.Fatalf("the late write did not land as this case needs: mirror %v", got)
		}
		close(gate.release)
		<-bDone
		want := map[string][]any{"user_alice": {withdrawal, grant, withdrawal}}
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		p.assertConverged(t, b)
	}},
	{"a write whose claim expired lands after its new holder finished, and the next sync writes the latest state again", func(t *testing.T, p *pair) {
		a := p.manager(t, 0, consent.WithClaimTTL(claimTTL), consent.WithOutbox(noRenew{p.outbox(0)}))
		b := p.manager(t, 1)
		started, release := make(chan struct{}), make(chan struct{})
		p.idp.setHook(blockFirst(started, release))
		var grant any
		aDone := make(chan struct{})
		go func() {
			defer close(aDone)
			grant = p.update(t, a, "user_alice", map[consent.Purpose]bool{consent.Analytics: true})
		}()
		<-started
		expire()
		withdrawal := p.update(t, b, "user_alice", map[consent.Purpose]bool{consent.Analytics: false})
		close(release)
		<-aDone
		if n, err := b.SyncPending(context.Background()); n != 1 || err != nil {
			t.Errorf("SyncPending after the late write = %d, %v; want the user queued again and synced", n, err)
		}
		want := map[string][]any{"user_alice": {withdrawal, grant, withdrawal}}
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		p.assertConverged(t, b)
	}},
	{"after an outage on both instances each user is written once, with its latest state, by one of them", func(t *testing.T, p *pair) {
		ms := []*consent.Manager{p.manager(t, 0), p.manager(t, 1)}
		var down atomic.Bool
		down.Store(true)
		p.idp.setHook(func(context.Context, string, any) error {
			if down.Load() {
				return errors.New("identity provider unavailable")
			}
			return nil
		})
		for i, u := range instanceUsers {
			p.update(t, ms[i%2], u, map[consent.Purpose]bool{consent.Marketing: true})
			p.update(t, ms[(i+1)%2], u, map[consent.Purpose]bool{consent.Marketing: false, consent.Analytics: true})
		}
		both := func() {
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = m.SyncPending(context.Background()) }()
			}
			wg.Wait()
		}
		for range 2 {
			p.clock.Add(time.Minute)
			both()
		}
		if w := p.idp.writes(); len(w) != 0 {
			t.Fatalf("writes landed during the outage: %v", w)
		}
		down.Store(false)
		p.clock.Add(time.Hour)
		both()
		p.drain(t, ms...)
		want := map[string][]any{}
		for _, u := range instanceUsers {
			st, _ := ms[0].Current(context.Background(), u)
			want[u] = []any{ms[0].Mirror(st)}
		}
		if diff := cmp.Diff(want, p.idp.writes()); diff != "" {
			t.Errorf("writes after the outage (-once each +got):\n%s", diff)
		}
		if n := p.idp.overlaps.Load(); n != 0 {
			t.Errorf("%d writes overlapped", n)
		}
		p.assertConverged(t, ms[0])
	}},
}

// clock is a settable clock shared by both instances.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// provider is an identity provider that records every mirror write per
// user and notices two writes of one user under way at once. A hook runs
// before each write and may slow it down, block it or fail it; a write
// lands even if its caller has given up waiting, as an HTTP request
// already sent does.
type provider struct {
	*steward.MemoryIdentity
	mu       sync.Mutex
	hook     func(ctx context.Context, userID string, value any) error
	calls    map[string]int
	landed   map[string][]any
	inflight map[string]int
	overlaps atomic.Int32
}

func newProvider() *provider {
	return &provider{MemoryIdentity: steward.NewMemoryIdentity(), calls: map[string]int{}, landed: map[string][]any{}, inflight: map[string]int{}}
}

func (p *provider) setHook(h func(ctx context.Context, userID string, value any) error) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *provider) UpdateMetadata(ctx context.Context, userID string, patch steward.MetadataPatch) error {
	value := patch.Public[consent.MetadataKey]
	p.mu.Lock()
	p.calls[userID]++
	p.inflight[userID]++
	if p.inflight[userID] > 1 {
		p.overlaps.Add(1)
	}
	hook := p.hook
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight[userID]--
		p.mu.Unlock()
	}()
	if hook != nil {
		if err := hook(ctx, userID, value); err != nil {
			return err
		}
	}
	if err := p.MemoryIdentity.UpdateMetadata(context.WithoutCancel(ctx), userID, patch); err != nil {
		return err
	}
	p.mu.Lock()
	p.landed[userID] = append(p.landed[userID], value)
	p.mu.Unlock()
	return nil
}

func (p *provider) callsOf(userID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[userID]
}

// writes returns the values that landed, per user, in order.
func (p *provider) writes() map[string][]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]any{}
	for u, vs := range p.landed {
		out[u] = append([]any(nil), vs...)
	}
	return out
}

func (p *provider) mirror(t *testing.T, userID string) any {
	t.Helper()
	u, err := p.GetUser(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return u.PublicMetadata[consent.MetadataKey]
}

// blockFirst is a hook that holds the first write until release is
// closed, saying on started that it has begun; later writes pass.
func blockFirst(started, release chan struct{}) func(context.Context, string, any) error {
	var once atomic.Bool
	return func(context.Context, string, any) error {
		if once.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return nil
	}
}

// countingDone counts the Done calls that finished an entry.
type countingDone struct {
	consent.Outbox
	n *atomic.Int32
}

func (c countingDone) Done(ctx context.Context, cl consent.Claim) error {
	err := c.Outbox.Done(ctx, cl)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

// noRenew is an outbox whose renewals fail, as when the instance cannot
// reach its database for a while.
type noRenew struct{ consent.Outbox }

func (noRenew) Renew(context.Context, consent.Claim, time.Duration) (consent.Claim, error) {
	return consent.Claim{}, errors.New("database unreachable")
}

// gatedDone holds the first Done until release is closed, saying on
// entered that it was called.
type gatedDone struct {
	consent.Outbox
	entered, release chan struct{}
	once             sync.Once
}

func (g *gatedDone) Done(ctx context.Context, c consent.Claim) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return g.Outbox.Done(ctx, c)
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("condition not met in 10s"))
		}
	}
}
