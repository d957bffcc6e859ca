package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/retentiontest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestHoldsConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		retentiontest.RunHoldStoreConformance(t, func(t *testing.T) retention.HoldStore {
			s, err := sqlstore.New(sqltest.Open(t, d), d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s.Holds()
		})
	})
}

// TestHoldsLeaseKeepsConcurrentEnginesApart runs two retention Engines,
// as two processes would, over one database: while the first runs, the
// second finds the lease held and does nothing.
func TestHoldsLeaseKeepsConcurrentEnginesApart(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		logs := &retention.MemoryTarget{}
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 10; i++ {
			logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * 24 * time.Hour)})
		}
		inside, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		engine := func(owner string) *retention.Engine {
			e, err := retention.NewEngine([]retention.Policy{{Name: "logs", Target: logs, MaxAge: retention.ActivityLogRetention,
				Action: retention.Delete, BatchSize: 2}},
				retention.WithHolds(s.Holds()), retention.WithLease(s.Holds(), owner, time.Minute),
				retention.WithNow(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		first, second := engine("host-a:1"), engine("host-b:1")
		done := make(chan retention.Report)
		go func() {
			rep, err := first.Run(ctx, retention.RunOptions{Progress: func(retention.Progress) {
				once.Do(func() { close(inside); <-release })
			}})
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		<-inside
		if _, err := second.Run(ctx, retention.RunOptions{}); !errors.Is(err, retention.ErrLeaseHeld) {
			t.Errorf("second Run = %v, want ErrLeaseHeld", err)
		}
		close(release)
		if rep := <-done; rep.Policies[0].Purged != 10 {
			t.Errorf("first run purged %d, want 10", rep.Policies[0].Purged)
		}
		if _, err := second.Run(ctx, retention.RunOptions{}); err != nil {
			t.Errorf("second Run after the first = %v", err)
		}
	})
}
