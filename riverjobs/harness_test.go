package riverjobs

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// fastRetry keeps in-run retries to microseconds.
var fastRetry = privacy.Retry{MaxAttempts: 2, InitialInterval: time.Microsecond, MaxInterval: 10 * time.Microsecond}

// pgDB returns a migrated database (Steward's and River's tables) in a
// schema of its own, and that schema's name; it skips t without
// PostgreSQL.
func pgDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db := sqltest.Open(t, sqlstore.Postgres)
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE effects (step TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT '', pid INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, schema
}

// tb is what the helpers below need of a test, so that a worker process
// can use them too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// openSchema opens the database of the test DSN on schema.
func openSchema(t tb, schema string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// pgPool returns a pgx pool on schema, for River clients.
func pgPool(t tb, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// effects records each step's effect in the database, so that steps run
// by several processes can be counted: an IdentityProvider over a
// MemoryIdentity that records deletions of users it held, and a
// DataStore that records erasures (and can block, as a step that hangs
// when its process is killed).
type effects struct {
	db *sql.DB
}

func (e effects) record(ctx context.Context, step string) error {
	_, err := e.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO effects (step, pid) VALUES ($1, $2)`, step, os.Getpid())
	return err
}

func (e effects) count(t testing.TB, step string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM effects WHERE step = $1`, step).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type recordingIDP struct {
	*steward.MemoryIdentity
	fx  effects
	err func() error // when set and non-nil, DeleteUser fails with it
}

func (r *recordingIDP) DeleteUser(ctx context.Context, id string) error {
	if r.err != nil {
		if err := r.err(); err != nil {
			return err
		}
	}
	if _, err := r.GetUser(ctx, id); err == nil {
		if err := r.fx.record(ctx, "identity:"+id); err != nil {
			return err
		}
	}
	return r.MemoryIdentity.DeleteUser(ctx, id)
}

type recordingStore struct {
	fx    effects
	block bool // hang after recording, ignoring the context
}

func (recordingStore) Name() string { return "app" }

func (recordingStore) Export(context.Context, string) iter.Seq2[privacy.Record, error] {
	return func(func(privacy.Record, error) bool) {}
}

func (s recordingStore) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	if err := s.fx.record(ctx, "app:"+userID); err != nil {
		return privacy.Erased{}, err
	}
	if s.block {
		select {} // the process is about to be killed
	}
	return privacy.Erased{Count: 1}, nil
}

// users returns a MemoryIdentity holding the given users.
func users(ids ...string) *steward.MemoryIdentity {
	m := steward.NewMemoryIdentity()
	for _, id := range ids {
		m.Put(steward.User{ID: id, CreatedAt: time.Now()})
	}
	return m
}

// startClient starts a River client on pool that works Steward's jobs,
// stopped when t ends.
func startClient(t tb, pool *pgxpool.Pool, jobs *Jobs, tune func(*river.Config)) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		t.Fatal(err)
	}
	cfg := &river.Config{Workers: workers, Queues: jobs.Queues(), PeriodicJobs: jobs.PeriodicJobs(), TestOnly: true,
		FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond}
	if tune != nil {
		tune(cfg)
	}
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			_ = c.StopAndCancel(sctx)
			cancel()
		})
	})
	return c
}

// waitFor polls cond every 20ms until it holds or a minute passes.
func waitFor(t testing.TB, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, s := range state {
				b.WriteString("\n" + s())
			}
			t.Fatalf("timed out waiting for %s%s", what, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobRows returns the kind, state and args of every River job.
func jobRows(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT kind, state, args::text FROM river_job ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, state, args string
		if err := rows.Scan(&kind, &state, &args); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s", kind, state, args))
	}
	return out
}

// memBlobs is a privacy.BlobWriter into memory.
type memBlobs struct {
	mu    sync.Mutex
	names map[string]bool
}

type memBlob struct {
	b    *memBlobs
	name string
}

func (m memBlob) Write(p []byte) (int, error) { return len(p), nil }

// Delete implements privacy.BlobDeleter.
func (m *memBlobs) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.names, name)
	return nil
}

func (m memBlob) Close() error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	if m.b.names == nil {
		m.b.names = map[string]bool{}
	}
	m.b.names[m.name] = true
	return nil
}

func (m *memBlobs) Create(_ context.Context, name string) (io.WriteCloser, error) {
	return memBlob{b: m, name: name}, nil
}

func (m *memBlobs) has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.names[name]
}
