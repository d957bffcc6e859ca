package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
// the final state, in exactly the guide's shape.
func TestConsentManagerOverSQL(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s, _ := sqlstore.New(db, d)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := func() time.Time { return consentT0 }
		idp := steward.NewMemoryIdentity()
		idp.Put(steward.User{ID: "user_alice"})
		m, err := consent.NewManager(s.Consent(), idp, consent.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := []consent.Purpose{consent.Analytics, consent.ThirdParty}[g%2]
				for i := 0; i < 5; i++ {
					if _, err := m.Update(ctx, "user_alice", map[consent.Purpose]bool{p: i%2 == 0}, consent.Meta{Source: "settings"}); err != nil {
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
		want := map[string]any{"marketing": false, "analytics": true, "thirdParty": true, "updatedAt": "2026-03-01T12:00:00Z"}
		if diff := cmp.Diff(want, consentMirror(t, idp)); diff != "" {
			t.Errorf("mirror (-want +got):\n%s", diff)
		}
		if due, _ := s.Consent().Queued(ctx, 0); len(due) != 0 {
			t.Errorf("outbox not drained: %+v", due)
		}
	})
}

var consentT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func consentMirror(t *testing.T, idp *steward.MemoryIdentity) any {
	t.Helper()
	u, err := idp.GetUser(context.Background(), "user_alice")
	if err != nil {
		t.Fatal(err)
	}
	return u.PublicMetadata["consent"]
}

// consentDownIdentity fails every UpdateMetadata while down is set.
type consentDownIdentity struct {
	steward.IdentityProvider
	down atomic.Bool
}

func (d *consentDownIdentity) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	if d.down.Load() {
		return errors.New("identity provider unavailable")
	}
	return d.IdentityProvider.UpdateMetadata(ctx, id, p)
}

// TestConsentSyncSurvivesARestart: changes whose mirror failed stay in
// the SQL outbox, and a new Manager over the same database (a restarted
// process) applies the latest state once the provider is back.
func TestConsentSyncSurvivesARestart(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s, _ := sqlstore.New(db, d)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := consentT0
		clock := func() time.Time { return now }
		mem := steward.NewMemoryIdentity()
		mem.Put(steward.User{ID: "user_alice"})
		idp := &consentDownIdentity{IdentityProvider: mem}
		idp.down.Store(true)
		opts := []consent.Option{consent.WithNow(clock), consent.WithRetry(time.Millisecond, 2*time.Millisecond, 2)}
		before, err := consent.NewManager(s.Consent(), idp, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := before.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true}, consent.Meta{}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if _, err := before.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Analytics: false}, consent.Meta{}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if n, err := before.SyncPending(ctx); n != 0 || err == nil {
			t.Fatalf("SyncPending during the outage = %d, %v", n, err)
		}
		due, _ := s.Consent().Queued(ctx, 0)
		if len(due) != 1 || due[0].Attempts != 2 || due[0].LastErr == "" || due[0].Owner != "" {
			t.Fatalf("outbox during the outage = %+v, want one unclaimed entry with 2 attempts", due)
		}

		idp.down.Store(false)
		now = now.Add(time.Hour)
		after, err := consent.NewManager(s.Consent(), idp, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := after.SyncPending(ctx); n != 1 || err != nil {
			t.Fatalf("SyncPending after the restart = %d, %v; want 1, nil", n, err)
		}
		want := map[string]any{"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:01:00Z"}
		if diff := cmp.Diff(want, consentMirror(t, mem)); diff != "" {
			t.Errorf("mirror (-want +got):\n%s", diff)
		}
		if due, _ := s.Consent().Queued(ctx, 0); len(due) != 0 {
			t.Errorf("outbox not drained: %+v", due)
		}
	})
}
