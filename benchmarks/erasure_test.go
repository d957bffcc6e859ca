package benchmarks

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	clerk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/riverjobs"
	"github.com/stewardlabs/steward/sqlstore"
)

// The bulk-erasure benchmark re-executes this test binary as worker
// processes; these variables tell a process it is one.
const (
	workerSchemaEnv = "STEWARD_BENCH_WORKER_SCHEMA"
	workerClerkEnv  = "STEWARD_BENCH_WORKER_CLERK"
	workerShareEnv  = "STEWARD_BENCH_WORKER_RATE"
)

// openSchema opens PostgreSQL at STEWARD_TEST_POSTGRES_DSN on schema.
func openSchema(schema string) (*sql.DB, *pgxpool.Pool, error) {
	dsn := os.Getenv("STEWARD_TEST_POSTGRES_DSN")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	return db, pool, err
}

// countingStore records every Erase call in bench_effects, so that
// duplicate executions across processes can be counted.
type countingStore struct {
	privacy.DataStore
	db *sql.DB
}

func (c countingStore) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return c.DataStore.Export(ctx, id)
}

func (c countingStore) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	er, err := c.DataStore.Erase(ctx, id)
	if err == nil {
		_, err = c.db.ExecContext(ctx, `INSERT INTO bench_effects (user_id) VALUES ($1)`, id)
	}
	return er, err
}

// service returns the Service of one process: the example application's
// tables (sqldata), the identity provider, the SQL audit log and request
// store.
func service(ctx context.Context, db *sql.DB, idp steward.IdentityProvider, requests privacy.RequestStore) (*privacy.Service, *audit.Logger, error) {
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		return nil, nil, err
	}
	app, err := sqldata.New(ctx, db, sqlstore.Postgres, exampleschema.Tables())
	if err != nil {
		return nil, nil, err
	}
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey("bench", bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		return nil, nil, err
	}
	svc, err := privacy.NewService(idp, privacy.WithStores(countingStore{app, db}), privacy.WithAudit(log),
		privacy.WithRequestStore(requests), privacy.WithResumeAfter(0))
	return svc, log, err
}

// erasureWorker is one worker process: a River client working Steward's
// jobs until SIGTERM, its Clerk calls kept to its share of the limit.
func erasureWorker(schema string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, pool, err := openSchema(schema)
	if err != nil {
		return err
	}
	store, _ := sqlstore.New(db, sqlstore.Postgres)
	cfg := &clerk.ClientConfig{}
	cfg.Key, cfg.URL = clerk.String(clerktest.DefaultSecretKey), clerk.String(os.Getenv(workerClerkEnv))
	share, _ := strconv.Atoi(os.Getenv(workerShareEnv))
	idp := clerkadapter.New(cfg, clerkadapter.WithRateLimit(share, clerktest.RateLimitWindow))
	svc, log, err := service(ctx, db, idp, store.Requests().OnCreate(riverjobs.EnqueueTx))
	if err != nil {
		return err
	}
	runner, err := background.New(background.WithPrivacy(svc))
	if err != nil {
		return err
	}
	jobs, err := riverjobs.New(runner, db, riverjobs.WithMaxWorkers(25))
	if err != nil {
		return err
	}
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Queues: jobs.Queues(),
		PeriodicJobs: jobs.PeriodicJobs(), FetchCooldown: 10 * time.Millisecond})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = client.Stop(sctx)
	return log.Close(sctx)
}

// benchSchema creates a schema with Steward's, River's and the example
// application's tables, dropped when b ends.
func benchSchema(b *testing.B) (string, *sql.DB, *pgxpool.Pool) {
	b.Helper()
	if os.Getenv("STEWARD_TEST_POSTGRES_DSN") == "" {
		b.Skip("STEWARD_TEST_POSTGRES_DSN is not set")
	}
	schema := fmt.Sprintf("steward_bench_%d", time.Now().UnixNano())
	admin, _, err := openSchema("public")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	db, pool, err := openSchema(schema)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close(); db.Close() })
	ctx := context.Background()
	store, _ := sqlstore.New(db, sqlstore.Postgres)
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := riverjobs.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	if err := exampleschema.Create(ctx, db, sqlstore.Postgres); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE bench_effects (user_id TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return schema, db, pool
}

// addUsers adds n users to srv with rows in the application's tables.
func addUsers(b *testing.B, db *sql.DB, srv *clerktest.Server, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = srv.AddUser(steward.User{FirstName: "Bulk"}).ID
	}
	parallel(b, ids, func(id string) error {
		_, err := exampleschema.Seed(context.Background(), db, sqlstore.Postgres, id, 1, time.Now())
		return err
	})
	return ids
}

// parallel runs f for every id on 8 goroutines.
func parallel(b *testing.B, ids []string, f func(id string) error) {
	b.Helper()
	ch := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 8 {
		wg.Go(func() {
			for id := range ch {
				if err := f(id); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// waitCompleted waits until n erasure requests are completed.
func waitCompleted(b *testing.B, db *sql.DB, n int, limit time.Duration) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for {
		var done int
		if err := db.QueryRow(`SELECT count(*) FROM steward_privacy_requests WHERE status = 'completed'`).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d erasures completed after %v", done, n, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchUsers() int {
	if n, err := strconv.Atoi(os.Getenv("STEWARD_BENCH_USERS")); err == nil && n > 0 {
		return n
	}
	return 300
}

// BenchmarkBulkErasure erases STEWARD_BENCH_USERS users (default 300;
// the recorded run uses 10,000), each with rows in the example
// application's tables, through River with three worker processes,
// against clerktest limited to Clerk's production Backend API limit
// (1000 requests per 10 s). It reports the fraction of that limit the
// run used, failed erasures and duplicate step executions. Then, in the
// same run and in this process, it erases min(users, 1000) more users
// one at a time with the embedded engine (Runner's Requests pass) and
// with one River worker, against an unlimited clerktest, and reports the
// per-erasure overhead of River (enqueueing in the request's
// transaction, fetching, completing) over the embedded engine.
func BenchmarkBulkErasure(b *testing.B) {
	n := benchUsers()
	schema, db, pool := benchSchema(b)
	ctx := context.Background()
	for range b.N {
		// Phase 1: three worker processes, Clerk's rate limit.
		srv := clerktest.NewServer(clerktest.WithRateLimit(clerktest.ProductionRateLimit, clerktest.RateLimitWindow))
		ids := addUsers(b, db, srv, n)
		store, _ := sqlstore.New(db, sqlstore.Postgres)
		queue, _, err := service(ctx, db, clerkadapter.New(srv.ClientConfig()), store.Requests().OnCreate(riverjobs.EnqueueTx))
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, ids, func(id string) error { _, err := queue.QueueErasure(ctx, id); return err })
		srv.ResetRequests()
		start := time.Now()
		var procs []*exec.Cmd
		for range 3 {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), workerSchemaEnv+"="+schema, workerClerkEnv+"="+srv.URL+"/v1",
				workerShareEnv+"="+strconv.Itoa(clerktest.ProductionRateLimit/3))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			procs = append(procs, cmd)
		}
		waitCompleted(b, db, n, time.Duration(n)*50*time.Millisecond+time.Minute)
		elapsed := time.Since(start)
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
		var first, last time.Time
		deletes, throttled := map[string]int{}, 0
		for _, r := range srv.Requests() {
			switch {
			case r.Method == http.MethodDelete && r.Status == http.StatusOK:
				deletes[r.Path]++
				if first.IsZero() || r.Time.Before(first) {
					first = r.Time
				}
				if r.Time.After(last) {
					last = r.Time
				}
			case r.Status == http.StatusTooManyRequests:
				throttled++
			}
		}
		srv.Close()
		dup := 0
		for _, c := range deletes {
			dup += c - 1
		}
		var storeDup, failed, completions int
		q := func(dst *int, query string) {
			if err := db.QueryRow(query).Scan(dst); err != nil {
				b.Fatal(err)
			}
		}
		q(&storeDup, `SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) AS c FROM bench_effects GROUP BY user_id) AS x`)
		q(&failed, `SELECT count(*) FROM steward_privacy_requests WHERE status <> 'completed'`)
		q(&completions, `SELECT count(*) FROM steward_audit_events WHERE event_type = 'data_deletion' AND details LIKE '%"status":"completed"%'`)
		if len(deletes) != n || completions != n {
			b.Errorf("%d users deleted at Clerk and %d completion events, want %d", len(deletes), completions, n)
		}
		window := last.Sub(first)
		allowed := float64(clerktest.ProductionRateLimit) * window.Seconds() / clerktest.RateLimitWindow.Seconds()
		if allowed < float64(clerktest.ProductionRateLimit) {
			allowed = float64(clerktest.ProductionRateLimit) // a run shorter than one window may use one window's worth
		}
		b.ReportMetric(float64(n)/allowed, "rate-limit-used")
		b.ReportMetric(float64(failed), "failures")
		b.ReportMetric(float64(dup+storeDup), "duplicate-steps")
		b.ReportMetric(float64(throttled), "429s")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "erasures/s")

		// Phase 2: per-erasure overhead, one at a time, no rate limit.
		m := min(n, 1000)
		free := clerktest.NewServer()
		idp := clerkadapter.New(free.ClientConfig())
		plainSvc, plainLog, err := service(ctx, db, idp, store.Requests())
		if err != nil {
			b.Fatal(err)
		}
		runner, err := background.New(background.WithPrivacy(plainSvc))
		if err != nil {
			b.Fatal(err)
		}
		inproc := addUsers(b, db, free, m)
		t0 := time.Now()
		for _, id := range inproc {
			if _, err := plainSvc.QueueErasure(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		for _, t := range runner.Tasks() {
			if t.Duty == background.Requests {
				if done := runner.Pass(ctx, t); done != m {
					b.Fatalf("the embedded engine's pass erased %d of %d", done, m)
				}
			}
		}
		inprocDur := time.Since(t0)

		riverSvc, riverLog, err := service(ctx, db, idp, store.Requests().OnCreate(riverjobs.EnqueueTx))
		if err != nil {
			b.Fatal(err)
		}
		riverRunner, _ := background.New(background.WithPrivacy(riverSvc))
		jobs, err := riverjobs.New(riverRunner, db, riverjobs.WithMaxWorkers(1))
		if err != nil {
			b.Fatal(err)
		}
		workers := river.NewWorkers()
		if err := jobs.AddWorkers(workers); err != nil {
			b.Fatal(err)
		}
		client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, Queues: jobs.Queues(), FetchCooldown: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		viaRiver := addUsers(b, db, free, m)
		t1 := time.Now()
		for _, id := range viaRiver {
			if _, err := riverSvc.QueueErasure(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		if err := client.Start(ctx); err != nil {
			b.Fatal(err)
		}
		waitCompleted(b, db, n+2*m, 10*time.Minute)
		riverDur := time.Since(t1)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = errors.Join(client.Stop(sctx), plainLog.Close(sctx), riverLog.Close(sctx))
		cancel()
		free.Close()
		if err != nil {
			b.Fatal(err)
		}
		perIn := inprocDur.Seconds() * 1000 / float64(m)
		perRiver := riverDur.Seconds() * 1000 / float64(m)
		b.ReportMetric(perIn, "ms/erasure-inprocess")
		b.ReportMetric(perRiver, "ms/erasure-river")
		b.ReportMetric(perRiver-perIn, "ms-overhead/erasure")
	}
}
