package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
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

// processes returns two Stores over one fresh, migrated database, each
// with its own connection pool, as two processes would have.
func processes(t *testing.T, d sqlstore.Dialect) (a, b *sqlstore.Store) {
	t.Helper()
	db := sqltest.Open(t, d)
	var stores [2]*sqlstore.Store
	for i, db := range []*sql.DB{db, reopen(t, db, d)} {
		s, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	return stores[0], stores[1]
}

// reopen opens a second pool on db's database (its SQLite file, or its
// PostgreSQL schema).
func reopen(t *testing.T, db *sql.DB, d sqlstore.Dialect) *sql.DB {
	t.Helper()
	var other *sql.DB
	switch d {
	case sqlstore.SQLite:
		var file string
		if err := db.QueryRowContext(t.Context(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			t.Fatal(err)
		}
		var err error
		if other, err = sqlstore.OpenSQLite(file); err != nil {
			t.Fatal(err)
		}
	default:
		var schema string
		if err := db.QueryRowContext(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		cfg, err := pgx.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = schema
		other = stdlib.OpenDB(*cfg)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}

// instance is one process's retention Engine, its notifier counting the
// notices it sends.
type instance struct {
	engine *retention.Engine
	notes  *counter
}

type counter struct {
	mu    sync.Mutex
	count map[string]int
	hook  func(id string) // called before counting, when set
	delay time.Duration
}

func (c *counter) NotifyInactive(_ context.Context, u steward.User, _ time.Time) error {
	if c.hook != nil {
		c.hook(u.ID)
	}
	time.Sleep(c.delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[u.ID]++
	return nil
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.count)
}

var retentionNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// newInstance is an Engine over s whose clock is skew from retentionNow,
// with a lease of ttl (none when ttl is 0).
func newInstance(t *testing.T, s *sqlstore.Store, idp steward.IdentityProvider, skew, ttl time.Duration) instance {
	t.Helper()
	svc, err := privacy.NewService(idp, privacy.WithRequestStore(s.Requests()))
	if err != nil {
		t.Fatal(err)
	}
	in := instance{notes: &counter{count: map[string]int{}}}
	opts := []retention.Option{retention.WithIdentity(idp), retention.WithHolds(s.Holds()), retention.WithNotifier(in.notes),
		retention.WithEraser(svc), retention.WithNow(func() time.Time { return retentionNow.Add(skew) })}
	if ttl > 0 {
		opts = append(opts, retention.WithLease(s.Leases(), ttl))
	}
	in.engine, err = retention.NewEngine([]retention.Policy{{Name: "inactive_users", MaxAge: retention.InactiveUserAge,
		Action: retention.NotifyThenErase, GracePeriod: retention.InactiveGracePeriod, BatchSize: 5}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func inactiveUsers(idp *steward.MemoryIdentity, prefix string, n int) map[string]int {
	want := map[string]int{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("user_%s%02d", prefix, i)
		idp.Put(steward.User{ID: id, CreatedAt: retentionNow.AddDate(-3, 0, 0), LastActiveAt: retentionNow.AddDate(-1, -1, 0)})
		want[id] = 1
	}
	return want
}

// blockFirst makes c stop inside its first notice until release; inside
// is closed then.
func (c *counter) blockFirst() (inside <-chan struct{}, release func()) {
	in, rel := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var relOnce sync.Once
	c.hook = func(string) {
		if first.CompareAndSwap(false, true) { // later notices do not wait
			close(in)
			<-rel
		}
	}
	return in, func() { relOnce.Do(func() { close(rel) }) }
}

func runAsync(e *retention.Engine) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), retention.RunOptions{})
		done <- err
	}()
	return done
}

// TestRetentionEnginesShareOneDatabase runs retention Engines as two
// processes would, each with its own connection pool, over one SQLite
// file or PostgreSQL schema and one identity provider.
func TestRetentionEnginesShareOneDatabase(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		t.Run("with clocks an hour apart only one runs: the lease's expiry is the database's", func(t *testing.T) {
			a, b := processes(t, d)
			idp := steward.NewMemoryIdentity()
			// A one-minute lease, and clocks an hour apart: judged by
			// either caller's clock one would see the other's lease expired.
			ahead := newInstance(t, a, idp, time.Hour, time.Minute)
			behind := newInstance(t, b, idp, 0, time.Minute)
			for i, pair := range [][2]instance{{ahead, behind}, {behind, ahead}} {
				want := inactiveUsers(idp, fmt.Sprint(i), 3)
				first, second := pair[0], pair[1]
				inside, release := first.notes.blockFirst()
				defer release()
				done := runAsync(first.engine)
				<-inside
				rep, err := second.engine.Run(ctx, retention.RunOptions{})
				if !errors.Is(err, retention.ErrLeaseHeld) || len(rep.Policies) != 0 {
					t.Errorf("round %d: second Run = %+v, %v; want ErrLeaseHeld and nothing done", i, rep, err)
				}
				release()
				if err := <-done; err != nil {
					t.Fatalf("round %d: first Run = %v", i, err)
				}
				first.notes.hook = nil
				if diff := cmp.Diff(want, first.notes.counts()); diff != "" {
					t.Errorf("round %d: notices (-want +got):\n%s", i, diff)
				}
			}
		})
		t.Run("a slow notifier does not let a second run in: the lease is renewed in the background", func(t *testing.T) {
			a, b := processes(t, d)
			idp := steward.NewMemoryIdentity()
			want := inactiveUsers(idp, "", 3)
			const ttl = 300 * time.Millisecond
			slow, other := newInstance(t, a, idp, 0, ttl), newInstance(t, b, idp, 0, ttl)
			inside, release := slow.notes.blockFirst()
			defer release()
			done := runAsync(slow.engine)
			<-inside
			for deadline := time.Now().Add(4 * ttl); time.Now().Before(deadline); time.Sleep(ttl / 4) {
				if _, err := other.engine.Run(ctx, retention.RunOptions{}); !errors.Is(err, retention.ErrLeaseHeld) {
					t.Fatalf("a second Run while the first notifies = %v, want ErrLeaseHeld", err)
				}
			}
			release()
			if err := <-done; err != nil {
				t.Fatalf("the slow Run = %v", err)
			}
			if diff := cmp.Diff(want, slow.notes.counts()); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			if got := other.notes.counts(); len(got) != 0 {
				t.Errorf("the second instance notified %v", got)
			}
		})
		t.Run("two runners over the same inactive users notify each user exactly once", func(t *testing.T) {
			a, b := processes(t, d)
			idp := steward.NewMemoryIdentity()
			want := inactiveUsers(idp, "", 20)
			// No lease: only the notice records keep them apart.
			x, y := newInstance(t, a, idp, 0, 0), newInstance(t, b, idp, time.Hour, 0)
			x.notes.delay, y.notes.delay = 2*time.Millisecond, 2*time.Millisecond
			dx, dy := runAsync(x.engine), runAsync(y.engine)
			for _, done := range []<-chan error{dx, dy} {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			got := x.notes.counts()
			for id, n := range y.notes.counts() {
				got[id] += n
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("notices per user (-want +got):\n%s", diff)
			}
			if len(x.notes.counts()) == 0 || len(y.notes.counts()) == 0 {
				t.Logf("one runner sent every notice (%d and %d): they did not overlap this time", len(x.notes.counts()), len(y.notes.counts()))
			}
		})
		t.Run("a lost lease stops the run before its next destructive step", func(t *testing.T) {
			a, b := processes(t, d)
			idp := steward.NewMemoryIdentity()
			inactiveUsers(idp, "", 3)
			in := newInstance(t, a, idp, 0, time.Minute)
			var once sync.Once
			in.notes.hook = func(string) {
				once.Do(func() {
					// Another process took the lease (as after an expiry).
					if _, err := b.DB().ExecContext(ctx, `UPDATE steward_leases SET owner = 'other-instance', token = token + 1 WHERE name = 'retention'`); err != nil {
						t.Error(err)
					}
				})
			}
			rep, err := in.engine.Run(ctx, retention.RunOptions{})
			if !errors.Is(err, retention.ErrLeaseLost) || !errors.Is(err, steward.ErrLeaseLost) {
				t.Fatalf("Run = %v, want ErrLeaseLost", err)
			}
			if got := rep.Policies[0].Notified; got != 1 {
				t.Errorf("notified %d users, want 1 before the lease was lost", got)
			}
			if got := len(in.notes.counts()); got != 1 {
				t.Errorf("%d notices sent, want 1", got)
			}
		})
	})
}
