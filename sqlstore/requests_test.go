package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// requestsStore returns a migrated Store over a fresh database of dialect d.
func requestsStore(t *testing.T, d sqlstore.Dialect) *sqlstore.Store {
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

func TestRequestsConformance(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			// One migrated database per dialect, emptied before each case:
			// the cases run one after another.
			s := requestsStore(t, d)
			privacytest.RunRequestStoreConformance(t, func(ctx context.Context, t *testing.T) (privacy.RequestStore, error) {
				for _, table := range []string{"steward_privacy_requests", "steward_privacy_ledger"} {
					if _, err := s.DB().ExecContext(ctx, "DELETE FROM "+table); err != nil {
						return nil, err
					}
				}
				return s.Requests(), nil
			})
		})
	}
}

// TestLedgerConformance runs the Ledger suite on a ledger kept in a
// database of its own.
func TestLedgerConformance(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			s := requestsStore(t, d)
			privacytest.RunLedgerConformance(t, func(ctx context.Context, t *testing.T) (privacy.Ledger, error) {
				return s.Ledger(), nil
			})
		})
	}
}

func TestRequestsWithService(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) { requestsWithService(t, requestsStore(t, d)) })
	}
}

func requestsWithService(t *testing.T, s *sqlstore.Store) {
	{
		ctx := context.Background()
		idp := steward.NewMemoryIdentity()
		idp.Put(steward.User{ID: "user_sql1", CreatedAt: time.Now()})
		orders := privacy.NewMemoryStore("orders")
		orders.Add("user_sql1", privacy.Record{Category: "orders", Data: map[string]any{"total": 1}})
		newService := func() *privacy.Service {
			svc, err := privacy.NewService(idp, privacy.WithStores(orders), privacy.WithRequestStore(s.Requests()),
				privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
			if err != nil {
				t.Fatal(err)
			}
			return svc
		}
		// Two processes erase the same user at once: one request, done once.
		var wg sync.WaitGroup
		results := make([]privacy.DeletionResult, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := newService().Erase(ctx, "user_sql1")
				if err != nil {
					t.Errorf("Erase %d: %v", i, err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		n := 0
		ids := map[string]bool{}
		for _, res := range results {
			ids[res.RequestID] = true
		}
		for id := range ids {
			r, err := s.Requests().Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if r.Status != privacy.StatusCompleted || r.UserID == "user_sql1" {
				t.Errorf("request %s is %s, naming the user: %v", r.ID, r.Status, r.UserID == "user_sql1")
			}
		}
		if n < 1 || n > 2 || orders.Len("user_sql1") != 0 {
			t.Errorf("%d requests, %d records left; want the user erased", n, orders.Len("user_sql1"))
		}
		if _, err := idp.GetUser(ctx, "user_sql1"); !errors.Is(err, steward.ErrUserNotFound) {
			t.Errorf("identity not deleted: %v", err)
		}
	}
}
