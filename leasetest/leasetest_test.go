package leasetest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/internal/conformance"
)

// fakeClock is a manual clock for MemoryLeases.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func memoryHarness() Harness {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return Harness{Leaser: steward.NewMemoryLeases(clock.Now), TTL: time.Minute, Wait: clock.Add}
}

func TestMemoryLeases(t *testing.T) {
	Run(t, func(*testing.T) Harness { return memoryHarness() })
}

// sameOwnerReacquires lets an owner take its own held lease again.
type sameOwnerReacquires struct{ *steward.MemoryLeases }

func (s sameOwnerReacquires) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (steward.Lease, error) {
	l, err := s.MemoryLeases.AcquireLease(ctx, name, owner, ttl)
	if errors.Is(err, steward.ErrLeaseHeld) && owner == "a" {
		return steward.Lease{Name: name, Owner: owner, Token: 1, Expires: time.Now().Add(ttl)}, nil
	}
	return l, err
}

// renewsAnything renews whatever it is given, lost or not.
type renewsAnything struct{ *steward.MemoryLeases }

func (r renewsAnything) RenewLease(ctx context.Context, l steward.Lease, ttl time.Duration) (steward.Lease, error) {
	if next, err := r.MemoryLeases.RenewLease(ctx, l, ttl); err == nil {
		return next, nil
	}
	l.Expires = l.Expires.Add(ttl)
	return l, nil
}

// neverExpires refuses every lease that was ever taken.
type neverExpires struct {
	*steward.MemoryLeases
	mu    sync.Mutex
	taken map[string]bool
}

func (n *neverExpires) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (steward.Lease, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.taken[name] {
		return steward.Lease{}, steward.ErrLeaseHeld
	}
	l, err := n.MemoryLeases.AcquireLease(ctx, name, owner, ttl)
	if err == nil {
		n.taken[name] = true
	}
	return l, err
}

// TestSuiteCatchesBrokenLeasers runs the suite on Leasers that each break
// a rule and checks that the suite reports those rules.
func TestSuiteCatchesBrokenLeasers(t *testing.T) {
	tests := []struct {
		name   string
		broken func(steward.Leaser) steward.Leaser
		want   []string
	}{
		{"the owner takes its own held lease again", func(l steward.Leaser) steward.Leaser {
			return sameOwnerReacquires{l.(*steward.MemoryLeases)}
		}, []string{
			"a held lease is refused to its own owner too, so two runs under one name never both hold it",
		}},
		{"a lost lease is renewed", func(l steward.Leaser) steward.Leaser {
			return renewsAnything{l.(*steward.MemoryLeases)}
		}, []string{
			"a lease re-acquired under the same owner name fences the earlier holder by token",
			"a released lease is free at once, with a greater token, and the released one cannot be renewed",
			"an expired lease is taken by another owner with a greater token, and its old holder can no longer renew it",
		}},
		{"leases never expire nor free", func(l steward.Leaser) steward.Leaser {
			return &neverExpires{MemoryLeases: l.(*steward.MemoryLeases), taken: map[string]bool{}}
		}, []string{
			"a lease re-acquired under the same owner name fences the earlier holder by token",
			"a released lease is free at once, with a greater token, and the released one cannot be renewed",
			"an expired lease is taken by another owner with a greater token, and its old holder can no longer renew it",
			"releasing a lease that changed hands leaves the new holder's lease alone",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := conformance.NewRecorder("suite")
			run(r, func(conformance.T) Harness {
				h := memoryHarness()
				h.Leaser = tt.broken(h.Leaser)
				return h
			})
			var got []string
			for name := range r.Failures() {
				got = append(got, name)
			}
			sort.Strings(got)
			want := slices.Sorted(slices.Values(tt.want))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rules reported broken (-want +got):\n%s", diff)
			}
		})
	}
}
