package leasetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/internal/conformance"
)

// Harness is one Leaser under test.
type Harness struct {
	// Leaser is the implementation under test, with no leases held.
	Leaser steward.Leaser
	// TTL is the lease duration the suite uses: long enough for a few
	// calls to the Leaser, short enough to wait out a few times.
	TTL time.Duration
	// Wait lets d pass on the Leaser's clock.
	Wait func(d time.Duration)
}

// Maker makes a fresh Harness for one case.
type Maker func(t *testing.T) Harness

// Run runs every case on fresh harnesses.
func Run(t *testing.T, newHarness Maker) {
	t.Helper()
	run(conformance.Wrap(t), func(t conformance.T) Harness { return newHarness(conformance.Testing(t)) })
}

type maker func(t conformance.T) Harness

type rule struct {
	name string
	f    func(t conformance.T, h Harness)
}

func run(t conformance.T, newHarness maker) {
	for _, c := range rules {
		t.Run(c.name, func(t conformance.T) { c.f(t, newHarness(t)) })
	}
}

var rules = []rule{
	{"a free lease is acquired with a positive token and an expiry about ttl away", func(t conformance.T, h Harness) {
		ctx := t.Context()
		l, err := h.Leaser.AcquireLease(ctx, "sweep", "a", h.TTL)
		if err != nil {
			t.Fatalf("AcquireLease = %v", err)
		}
		if l.Name != "sweep" || l.Owner != "a" || l.Token <= 0 {
			t.Errorf("AcquireLease = %+v, want name sweep, owner a, token > 0", l)
		}
		if l.Expires.IsZero() {
			t.Errorf("Expires is zero")
		}
	}},
	{"a held lease is refused to another owner with ErrLeaseHeld", func(t conformance.T, h Harness) {
		ctx := t.Context()
		mustAcquire(t, h, "sweep", "a")
		if _, err := h.Leaser.AcquireLease(ctx, "sweep", "b", h.TTL); !errors.Is(err, steward.ErrLeaseHeld) {
			t.Errorf("second AcquireLease = %v, want ErrLeaseHeld", err)
		}
	}},
	{"a held lease is refused to its own owner too, so two runs under one name never both hold it", func(t conformance.T, h Harness) {
		ctx := t.Context()
		mustAcquire(t, h, "sweep", "a")
		if _, err := h.Leaser.AcquireLease(ctx, "sweep", "a", h.TTL); !errors.Is(err, steward.ErrLeaseHeld) {
			t.Errorf("second AcquireLease by the same owner = %v, want ErrLeaseHeld", err)
		}
	}},
	{"leases of different names are independent", func(t conformance.T, h Harness) {
		mustAcquire(t, h, "sweep", "a")
		mustAcquire(t, h, "forward", "b")
	}},
	{"an expired lease is taken by another owner with a greater token, and its old holder can no longer renew it", func(t conformance.T, h Harness) {
		ctx := t.Context()
		old := mustAcquire(t, h, "sweep", "a")
		h.Wait(h.TTL + h.TTL/2)
		next := mustAcquire(t, h, "sweep", "b")
		if next.Token <= old.Token {
			t.Errorf("token after takeover = %d, want > %d", next.Token, old.Token)
		}
		if _, err := h.Leaser.RenewLease(ctx, old, h.TTL); !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("RenewLease by the old holder = %v, want ErrLeaseLost", err)
		}
	}},
	{"a renewed lease stays held past its first expiry", func(t conformance.T, h Harness) {
		ctx := t.Context()
		l := mustAcquire(t, h, "sweep", "a")
		h.Wait(h.TTL * 2 / 3)
		r, err := h.Leaser.RenewLease(ctx, l, h.TTL)
		if err != nil {
			t.Fatalf("RenewLease = %v", err)
		}
		if r.Token != l.Token || r.Owner != "a" {
			t.Errorf("RenewLease = %+v, want the same owner and token as %+v", r, l)
		}
		if !r.Expires.After(l.Expires) {
			t.Errorf("renewed Expires %v is not after %v", r.Expires, l.Expires)
		}
		h.Wait(h.TTL * 2 / 3)
		if _, err := h.Leaser.AcquireLease(ctx, "sweep", "b", h.TTL); !errors.Is(err, steward.ErrLeaseHeld) {
			t.Errorf("AcquireLease after the first expiry of a renewed lease = %v, want ErrLeaseHeld", err)
		}
	}},
	{"an expired lease nobody took can still be renewed by its holder", func(t conformance.T, h Harness) {
		ctx := t.Context()
		l := mustAcquire(t, h, "sweep", "a")
		h.Wait(h.TTL + h.TTL/2)
		if _, err := h.Leaser.RenewLease(ctx, l, h.TTL); err != nil {
			t.Errorf("RenewLease = %v, want nil", err)
		}
	}},
	{"a released lease is free at once, with a greater token, and the released one cannot be renewed", func(t conformance.T, h Harness) {
		ctx := t.Context()
		l := mustAcquire(t, h, "sweep", "a")
		if err := h.Leaser.ReleaseLease(ctx, l); err != nil {
			t.Fatalf("ReleaseLease = %v", err)
		}
		next := mustAcquire(t, h, "sweep", "b")
		if next.Token <= l.Token {
			t.Errorf("token after release = %d, want > %d", next.Token, l.Token)
		}
		if _, err := h.Leaser.RenewLease(ctx, l, h.TTL); !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("RenewLease of a released lease = %v, want ErrLeaseLost", err)
		}
	}},
	{"releasing a lease that changed hands leaves the new holder's lease alone", func(t conformance.T, h Harness) {
		ctx := t.Context()
		old := mustAcquire(t, h, "sweep", "a")
		h.Wait(h.TTL + h.TTL/2)
		mustAcquire(t, h, "sweep", "b")
		if err := h.Leaser.ReleaseLease(ctx, old); err != nil {
			t.Errorf("ReleaseLease of a lost lease = %v, want nil", err)
		}
		if _, err := h.Leaser.AcquireLease(ctx, "sweep", "c", h.TTL); !errors.Is(err, steward.ErrLeaseHeld) {
			t.Errorf("AcquireLease after the old holder released = %v, want ErrLeaseHeld (b holds it)", err)
		}
	}},
	{"a lease re-acquired under the same owner name fences the earlier holder by token", func(t conformance.T, h Harness) {
		ctx := t.Context()
		first := mustAcquire(t, h, "sweep", "a")
		if err := h.Leaser.ReleaseLease(ctx, first); err != nil {
			t.Fatalf("ReleaseLease = %v", err)
		}
		second := mustAcquire(t, h, "sweep", "a")
		if _, err := h.Leaser.RenewLease(ctx, first, h.TTL); !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("RenewLease with the first token = %v, want ErrLeaseLost", err)
		}
		if _, err := h.Leaser.RenewLease(ctx, second, h.TTL); err != nil {
			t.Errorf("RenewLease with the second token = %v", err)
		}
	}},
	{"of many owners acquiring one lease at once exactly one wins", func(t conformance.T, h Harness) {
		ctx := t.Context()
		const n = 8
		// A ttl far above h.TTL: the acquisitions queue on the store's
		// lock (SQLite's writer lock), and on a loaded machine the last
		// may come after a short lease has expired, when it rightly wins.
		ttl := max(h.TTL, time.Minute)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			won  int
			errs []error
		)
		for i := range n {
			wg.Go(func() {
				_, err := h.Leaser.AcquireLease(ctx, "sweep", fmt.Sprint("owner", i), ttl)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case !errors.Is(err, steward.ErrLeaseHeld):
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if won != 1 || len(errs) > 0 {
			t.Errorf("%d of %d acquired the lease (errors: %v), want exactly 1", won, n, errs)
		}
	}},
	{"an empty name or owner, or a ttl under a millisecond, is refused with ErrInvalidLease", func(t conformance.T, h Harness) {
		ctx := t.Context()
		for _, c := range []struct {
			name, owner string
			ttl         time.Duration
		}{{"", "a", h.TTL}, {"sweep", "", h.TTL}, {"sweep", "a", 0}, {"sweep", "a", -time.Second}} {
			if _, err := h.Leaser.AcquireLease(ctx, c.name, c.owner, c.ttl); !errors.Is(err, steward.ErrInvalidLease) {
				t.Errorf("AcquireLease(%q, %q, %v) = %v, want ErrInvalidLease", c.name, c.owner, c.ttl, err)
			}
		}
	}},
	{"a canceled context fails the call", func(t conformance.T, h Harness) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := h.Leaser.AcquireLease(ctx, "sweep", "a", h.TTL); err == nil {
			t.Errorf("AcquireLease with a canceled context = nil error")
		}
	}},
}

func mustAcquire(t conformance.T, h Harness, name, owner string) steward.Lease {
	t.Helper()
	l, err := h.Leaser.AcquireLease(t.Context(), name, owner, h.TTL)
	if err != nil {
		t.Fatalf("AcquireLease(%q, %q) = %v", name, owner, err)
	}
	return l
}
