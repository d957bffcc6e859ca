package sqlstore_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/consent/consenttest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestConsentConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		consenttest.RunConformance(t, func(t *testing.T) consent.Store {
			s, err := sqlstore.New(sqltest.Open(t, d), d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s.Consent()
		})
	})
}

func TestConsentRecordsAreAppendOnly(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s, _ := sqlstore.New(db, d)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, d.Rebind(`INSERT INTO steward_consent_records (user_id, purpose, granted, policy_version, at) VALUES ('user_a', 'marketing', ?, 1, ?)`),
			true, "2026-03-01T12:00:00.000000Z"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE steward_consent_records SET granted = NOT granted`); err == nil {
			t.Error("an UPDATE of a consent record succeeded")
		}
	})
}

// TestConsentManagerOverSQL runs the Manager on the SQL store: 8
// goroutines updating concurrently lose nothing, and the mirror ends on
// the final state.
func TestConsentManagerOverSQL(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s, _ := sqlstore.New(db, d)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		idp := steward.NewMemoryIdentity()
		idp.Put(steward.User{ID: "user_alice"})
		m, err := consent.NewManager(s.Consent(), idp)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					if _, err := m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Analytics: true}, consent.Meta{Source: "settings"}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		n := 0
		for _, err := range m.History(ctx, "user_alice") {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 40 {
			t.Errorf("%d records after 40 concurrent updates", n)
		}
		u, _ := idp.GetUser(ctx, "user_alice")
		c, _ := u.PublicMetadata["consent"].(map[string]any)
		if c["analytics"] != true || c["marketing"] != false {
			t.Errorf("mirror = %v", c)
		}
		if due, _ := s.Consent().Due(ctx, time.Now().Add(time.Hour), 10); len(due) != 0 {
			t.Errorf("outbox not drained: %+v", due)
		}
	})
}
