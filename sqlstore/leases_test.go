package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/leasetest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestLeasesConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		t.Parallel()
		leasetest.Run(t, func(t *testing.T) leasetest.Harness {
			return leasetest.Harness{Leaser: migrated(t, d).Leases(), TTL: 300 * time.Millisecond, Wait: time.Sleep}
		})
	})
}

// migrated returns a Store over a fresh, migrated database of dialect d.
func migrated(t *testing.T, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(sqltest.Open(t, d), d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLeasesUseTheDatabaseClock shows that expiry does not depend on the
// callers' clocks: the lease's Expires is the database's time, and a
// lease taken for an hour stays held whatever time the callers think it
// is (the Leaser takes no time from them).
func TestLeasesUseTheDatabaseClock(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		leases := migrated(t, d).Leases()
		before := time.Now()
		l, err := leases.AcquireLease(ctx, "sweep", "a", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// The database and the test share this machine's clock.
		if got := l.Expires.Sub(before); got < time.Hour-5*time.Second || got > time.Hour+5*time.Second {
			t.Errorf("Expires is %v after the call began, want about an hour", got)
		}
		if _, err := leases.AcquireLease(ctx, "sweep", "b", time.Millisecond); !errors.Is(err, steward.ErrLeaseHeld) {
			t.Errorf("AcquireLease while held = %v, want ErrLeaseHeld", err)
		}
	})
}
