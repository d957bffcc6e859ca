package sqlstore_test

import (
	"context"
	"database/sql"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/consent/consenttest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// twoProcesses returns two migrated Stores on one fresh database of
// dialect d, each over its own connection pool, as two processes would
// open it: one SQLite file opened twice, or one PostgreSQL schema.
func twoProcesses(t *testing.T, d sqlstore.Dialect) (*sqlstore.Store, *sqlstore.Store) {
	t.Helper()
	var a, b *sql.DB
	switch d {
	case sqlstore.SQLite:
		path := filepath.Join(t.TempDir(), "steward.db")
		for _, db := range []**sql.DB{&a, &b} {
			var err error
			if *db, err = sqlstore.OpenSQLite(path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = (*db).Close() })
		}
	case sqlstore.Postgres:
		a = sqltest.Open(t, d)
		var schema string
		if err := a.QueryRowContext(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		cfg, err := pgx.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = schema
		b = stdlib.OpenDB(*cfg)
		t.Cleanup(func() { _ = b.Close() })
	}
	var out [2]*sqlstore.Store
	for i, db := range []*sql.DB{a, b} {
		s, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out[0], out[1]
}

// TestConsentInstances runs the several-instances cases on two
// connection pools to one SQLite file and to one PostgreSQL schema.
func TestConsentInstances(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			if d == sqlstore.Postgres && os.Getenv(sqltest.PostgresDSNEnv) == "" {
				t.Skipf("set %s to run", sqltest.PostgresDSNEnv)
			}
			consenttest.RunInstances(t, func(t *testing.T) (consent.Store, consent.Store) {
				a, b := twoProcesses(t, d)
				return a.Consent(), b.Consent()
			})
		})
	}
}

// TestConsentTwoProcessesConvergeThroughClerkOutages: two Managers, each
// on its own pool to one database, change the same users and run their
// sync loops against the fake Clerk while it answers 429 and 503; once it
// recovers, every user's publicMetadata.consent equals the store's latest
// state and the outbox is empty.
func TestConsentTwoProcessesConvergeThroughClerkOutages(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		ctx := t.Context()
		srv := clerktest.NewServer()
		defer srv.Close()
		var users []string
		for _, email := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
			u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: email, Verified: true}}})
			users = append(users, u.ID)
		}
		var mu sync.Mutex
		now := consentT0
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		a, b := twoProcesses(t, d)
		var ms []*consent.Manager
		for _, s := range []*sqlstore.Store{a, b} {
			// One attempt per call, so every fault reaches the Managers.
			prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(1))
			m, err := consent.NewManager(s.Consent(), prov, consent.WithNow(clock), consent.WithRetry(time.Millisecond, 5*time.Millisecond, 3))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		srv.FailNext(6, http.StatusTooManyRequests, 0)
		srv.FailNext(6, http.StatusServiceUnavailable, 0)
		runCtx, stop := context.WithCancel(ctx)
		var runs sync.WaitGroup
		for _, m := range ms {
			runs.Add(1)
			go func() { defer runs.Done(); _ = m.Run(runCtx, 2*time.Millisecond, nil) }()
		}
		var wg sync.WaitGroup
		for g, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 6 {
					advance(time.Second)
					p := []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty}[(g+i)%3]
					if _, err := m.Update(ctx, users[(g+i)%len(users)], map[consent.Purpose]bool{p: i%2 == g}, consent.Meta{}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		// Let the loops retry past the outage, then stop them.
		deadline := time.Now().Add(20 * time.Second)
		for {
			advance(time.Minute)
			due, err := a.Consent().Queued(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the outbox did not drain: %+v", due)
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		runs.Wait()
		for _, id := range users {
			st, err := ms[0].Current(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := srv.User(id)
			if diff := cmp.Diff(ms[0].Mirror(st), u.PublicMetadata["consent"]); diff != "" {
				t.Errorf("Clerk public metadata consent (-store +Clerk):\n%s", diff)
			}
		}
		failed := 0
		for _, r := range srv.Requests() {
			if strings.HasSuffix(r.Path, "/metadata") && r.Status >= 400 {
				failed++
			}
		}
		if failed != 12 {
			t.Errorf("%d metadata writes answered an error, want the 12 faults injected", failed)
		}
	})
}

// TestConsentClaimsMigrationKeepsQueuedSyncs: a sync queued before
// migration 0007 stays queued after it, unclaimed, with its token as its
// Version.
func TestConsentClaimsMigrationKeepsQueuedSyncs(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := t.Context()
		s, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		before := fstest.MapFS{}
		err = fs.WalkDir(sqlstore.MigrationFiles, "migrations/"+string(d), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() >= "0007" {
				return err
			}
			b, err := fs.ReadFile(sqlstore.MigrationFiles, path)
			before[path] = &fstest.MapFile{Data: b}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.MigrateFS(ctx, s, before); err != nil {
			t.Fatal(err)
		}
		var due any = consentT0
		if d == sqlstore.SQLite {
			due = "2026-03-01T12:00:00.000000Z"
		}
		if _, err := db.ExecContext(ctx, d.Rebind(`INSERT INTO steward_consent_outbox (user_id, token, due, attempts, last_error)
			VALUES ('user_a', 41, ?, 2, 'boom')`), due); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.Consent().Queued(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []consent.Claim{{Pending: consent.Pending{UserID: "user_a", Version: 41, Due: consentT0, Attempts: 2, LastErr: "boom"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outbox after 0007 (-want +got):\n%s", diff)
		}
		cs, err := s.Consent().Claim(ctx, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: consentT0})
		if err != nil || len(cs) != 1 {
			t.Fatalf("Claim after 0007 = %+v, %v; want the queued entry", cs, err)
		}
	})
}
