package storetest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/internal/conformance"
)

// These tests check the suites themselves: they pass the memory stores
// and catch stores that break a rule.

// fakeClock is a clock that Wait advances.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Wait(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func TestRunReplayConformance(t *testing.T) {
	RunReplayConformance(t, func(*testing.T) ReplayHarness {
		clk := newFakeClock()
		return ReplayHarness{Store: clerkadapter.NewMemoryReplayStore(100, clk.Now), TTL: time.Minute, Wait: clk.Wait}
	})
}

func TestRunInvalidationConformance(t *testing.T) {
	RunInvalidationConformance(t, func(*testing.T) InvalidationHarness {
		clk := newFakeClock()
		return InvalidationHarness{Log: clerkadapter.NewMemoryInvalidations(clk.Now), TTL: time.Minute, Wait: clk.Wait}
	})
}

// handledSet is the handled marks of the broken stores below, kept
// apart from their records and never expired: right for the rules those
// stores are made to break, wrong for the expiry of a handled mark (see
// stickyHandled).
type handledSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (h *handledSet) HandleMessage(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]bool{}
	}
	h.m[id] = true
	return nil
}

func (h *handledSet) MessageHandled(_ context.Context, id string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[id], nil
}

// stickyHandled keeps handled marks past the expiry of their records.
type stickyHandled struct {
	*clerkadapter.MemoryReplayStore
	handledSet
}

func (s *stickyHandled) HandleMessage(ctx context.Context, id string) error {
	return s.handledSet.HandleMessage(ctx, id)
}

func (s *stickyHandled) MessageHandled(ctx context.Context, id string) (bool, error) {
	return s.handledSet.MessageHandled(ctx, id)
}

// racyReplay checks and records in two steps, with a pause between them:
// the store the concurrency rule exists to catch.
type racyReplay struct {
	mu  sync.Mutex
	ids map[string]bool
	handledSet
}

func (r *racyReplay) SeenMessage(_ context.Context, id string, ttl time.Duration) (bool, error) {
	if id == "" || ttl <= 0 {
		return false, context.Canceled
	}
	r.mu.Lock()
	ok := r.ids[id]
	r.mu.Unlock()
	time.Sleep(time.Millisecond)
	r.mu.Lock()
	r.ids[id] = true
	r.mu.Unlock()
	return ok, nil
}

func (r *racyReplay) ForgetMessage(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
	return nil
}

// extendingReplay renews an ID's expiry each time it is seen.
type extendingReplay struct {
	now func() time.Time
	mu  sync.Mutex
	exp map[string]time.Time
	handledSet
}

func (e *extendingReplay) SeenMessage(_ context.Context, id string, ttl time.Duration) (bool, error) {
	if id == "" || ttl <= 0 {
		return false, context.Canceled
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.exp[id]
	seen := ok && e.now().Before(exp)
	e.exp[id] = e.now().Add(ttl)
	return seen, nil
}

func (e *extendingReplay) ForgetMessage(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.exp, id)
	return nil
}

func TestReplaySuiteCatchesBrokenStores(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(clk *fakeClock) clerkadapter.ReplayStore
		rule  string
	}{
		{"check, then record", func(*fakeClock) clerkadapter.ReplayStore { return &racyReplay{ids: map[string]bool{}} },
			"of concurrent SeenMessage calls with one ID, through both handles, exactly one finds it unseen"},
		{"a replay renews the record", func(clk *fakeClock) clerkadapter.ReplayStore {
			return &extendingReplay{now: clk.Now, exp: map[string]time.Time{}}
		}, "finding an ID seen leaves its expiry as it was"},
		{"handled marks outlive their records", func(clk *fakeClock) clerkadapter.ReplayStore {
			return &stickyHandled{MemoryReplayStore: clerkadapter.NewMemoryReplayStore(100, clk.Now)}
		}, "a handled ID is unhandled once forgotten or expired, and recorded afresh unhandled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := conformance.NewRecorder("suite")
			runReplay(r, func(tb) ReplayHarness {
				clk := newFakeClock()
				return ReplayHarness{Store: tt.store(clk), TTL: time.Minute, Wait: clk.Wait}
			})
			if _, ok := r.Failures()[tt.rule]; !ok {
				t.Errorf("the suite did not report %q; it reported %v", tt.rule, keys(r.Failures()))
			}
		})
	}
}

// newestFirst returns records newest first.
type newestFirst struct {
	*clerkadapter.MemoryInvalidations
}

func (n newestFirst) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	ids, next, err := n.MemoryInvalidations.InvalidatedSince(ctx, cursor)
	slices.Reverse(ids)
	return ids, next, err
}

// onePageOnly returns the first page and then nothing.
type onePageOnly struct {
	*clerkadapter.MemoryInvalidations
}

func (o onePageOnly) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	if cursor > 0 {
		return nil, cursor, nil
	}
	return o.MemoryInvalidations.InvalidatedSince(ctx, cursor)
}

// dropsEarly forgets every record whenever a new one is made.
type dropsEarly struct {
	mu  sync.Mutex
	m   *clerkadapter.MemoryInvalidations
	now func() time.Time
}

func (d *dropsEarly) Invalidate(ctx context.Context, id string, keep time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if keep > time.Minute && d.m.Len() > 0 {
		d.m = clerkadapter.NewMemoryInvalidations(d.now)
	}
	return d.m.Invalidate(ctx, id, keep)
}

func (d *dropsEarly) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	d.mu.Lock()
	m := d.m
	d.mu.Unlock()
	return m.InvalidatedSince(ctx, cursor)
}

func TestInvalidationSuiteCatchesBrokenLogs(t *testing.T) {
	for _, tt := range []struct {
		name string
		log  func(clk *fakeClock) clerkadapter.InvalidationLog
		rule string
	}{
		{"newest first", func(clk *fakeClock) clerkadapter.InvalidationLog {
			return newestFirst{clerkadapter.NewMemoryInvalidations(clk.Now)}
		}, "records come back oldest first, repeats included, and next reads only later ones"},
		{"one page only", func(clk *fakeClock) clerkadapter.InvalidationLog {
			return onePageOnly{clerkadapter.NewMemoryInvalidations(clk.Now)}
		}, "more records than one call returns are all read, in order, over several calls"},
		{"drops records before their keep", func(clk *fakeClock) clerkadapter.InvalidationLog {
			return &dropsEarly{m: clerkadapter.NewMemoryInvalidations(clk.Now), now: clk.Now}
		}, "a record is kept at least until its keep has passed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := conformance.NewRecorder("suite")
			runInvalidations(r, func(tb) InvalidationHarness {
				clk := newFakeClock()
				return InvalidationHarness{Log: tt.log(clk), TTL: time.Minute, Wait: clk.Wait}
			})
			if _, ok := r.Failures()[tt.rule]; !ok {
				t.Errorf("the suite did not report %q; it reported %v", tt.rule, keys(r.Failures()))
			}
		})
	}
}

func keys(m map[string][]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}
