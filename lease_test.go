package steward_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
)

func TestRunLeased(t *testing.T) {
	ctx := context.Background()
	t.Run("f runs holding the lease, which is released after", func(t *testing.T) {
		leases := steward.NewMemoryLeases(nil)
		err := steward.RunLeased(ctx, leases, "sweep", "a", time.Minute, func(ctx context.Context) error {
			if _, err := leases.AcquireLease(ctx, "sweep", "b", time.Minute); !errors.Is(err, steward.ErrLeaseHeld) {
				t.Errorf("AcquireLease inside f = %v, want ErrLeaseHeld", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("RunLeased = %v", err)
		}
		if _, err := leases.AcquireLease(ctx, "sweep", "b", time.Minute); err != nil {
			t.Errorf("AcquireLease after RunLeased = %v, want the lease free", err)
		}
	})
	t.Run("a held lease is not run", func(t *testing.T) {
		leases := steward.NewMemoryLeases(nil)
		if _, err := leases.AcquireLease(ctx, "sweep", "b", time.Minute); err != nil {
			t.Fatal(err)
		}
		var ran atomic.Bool
		err := steward.RunLeased(ctx, leases, "sweep", "a", time.Minute, func(context.Context) error { ran.Store(true); return nil })
		if !errors.Is(err, steward.ErrLeaseHeld) || ran.Load() {
			t.Errorf("RunLeased = %v (ran %v), want ErrLeaseHeld and f not run", err, ran.Load())
		}
	})
	t.Run("a slow f keeps the lease by renewing it", func(t *testing.T) {
		leases := steward.NewMemoryLeases(nil)
		err := steward.RunLeased(ctx, leases, "sweep", "a", 300*time.Millisecond, func(ctx context.Context) error {
			// Three ttls; a ttl of a few hundred milliseconds leaves the
			// renewals (every ttl/3) room on a loaded machine under -race.
			time.Sleep(900 * time.Millisecond)
			if _, err := leases.AcquireLease(ctx, "sweep", "b", time.Minute); !errors.Is(err, steward.ErrLeaseHeld) {
				t.Errorf("AcquireLease after three ttls = %v, want ErrLeaseHeld", err)
			}
			return ctx.Err()
		})
		if err != nil {
			t.Errorf("RunLeased = %v", err)
		}
	})
	t.Run("a lost lease cancels f and is reported", func(t *testing.T) {
		var now atomic.Int64
		now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		leases := steward.NewMemoryLeases(func() time.Time { return time.Unix(0, now.Load()) })
		err := steward.RunLeased(ctx, leases, "sweep", "a", 20*time.Millisecond, func(ctx context.Context) error {
			now.Add(int64(time.Hour)) // the lease expires at once...
			if _, err := leases.AcquireLease(context.Background(), "sweep", "b", time.Hour); err != nil {
				t.Errorf("takeover: %v", err) // ...and someone else takes it
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
				t.Error("f was not canceled after the lease was lost")
				return nil
			}
		})
		if !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("RunLeased = %v, want ErrLeaseLost", err)
		}
	})
}

func TestNewOwnerIsUnique(t *testing.T) {
	a, b := steward.NewOwner(), steward.NewOwner()
	if a == b || a == "" {
		t.Errorf("NewOwner twice = %q, %q; want two different names", a, b)
	}
}
