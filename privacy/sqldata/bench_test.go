package sqldata_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// benchRows is how many rows the benchmarked user owns across the five
// tables of the example schema.
const benchRows = 1_000_000

// benchPostgres returns a fresh PostgreSQL schema holding the example
// tables and another user's rows. It skips b without
// STEWARD_TEST_POSTGRES_DSN.
func benchPostgres(b *testing.B) *sql.DB {
	b.Helper()
	db := sqltest.Open(b, sqlstore.Postgres)
	if err := exampleschema.Create(context.Background(), db, sqlstore.Postgres); err != nil {
		b.Fatal(err)
	}
	// Another user's rows share the tables and must survive.
	benchSeed(b, db, "user_other", 10_000)
	return db
}

func benchSeed(b *testing.B, db *sql.DB, userID string, rows int) exampleschema.Counts {
	b.Helper()
	ctx := context.Background()
	c, err := exampleschema.Seed(ctx, db, sqlstore.Postgres, userID, rows, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	// Vacuum away the last run's dead rows and give the planner fresh
	// statistics, as autovacuum would on a live database.
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	// Write the seed out now rather than in a checkpoint during the timed
	// part; a role that may not checkpoint just measures with the noise.
	_, _ = db.ExecContext(ctx, "CHECKPOINT")
	return c
}

// singleStatements erases a user of the example schema the way the seed
// code does: one statement per table, each its own transaction.
var singleStatements = []string{
	`UPDATE order_items SET gift_message = NULL WHERE order_id IN (SELECT id FROM orders WHERE user_id = $1) AND gift_message IS NOT NULL`,
	`UPDATE orders SET user_id = NULL, email = NULL, shipping_address = NULL WHERE user_id = $1`,
	`DELETE FROM user_preferences WHERE user_id = $1`,
	`DELETE FROM activity_log WHERE user_id = $1`,
	`DELETE FROM user_profiles WHERE clerk_id = $1`,
}

// BenchmarkErase erases one user owning a million rows across five
// tables, batched by Store.Erase and, in the same run, with a single
// statement per table; it reports rows per second and the longest single
// transaction of each. Run it with -benchtime=1x: every iteration seeds
// two million rows.
func BenchmarkErase(b *testing.B) {
	db := benchPostgres(b)
	ctx := context.Background()
	var batchedTook, finalTook, singleTook, singleMax time.Duration
	var batchedRows, singleRows int
	var batches []time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		user := fmt.Sprintf("user_bench_%d", i)
		c := benchSeed(b, db, user, benchRows)
		s, err := sqldata.New(ctx, db, sqlstore.Postgres, exampleschema.Tables(),
			sqldata.WithBatchObserver(func(bt sqldata.Batch) { batches = append(batches, bt.Duration) }))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		er, err := s.Erase(ctx, user)
		batchedTook += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if er.Count != c.Total() {
			b.Fatalf("batched Erase changed %d rows, want %d", er.Count, c.Total())
		}
		batchedRows += er.Count
		// privacy's final pass: the same Erase again, after the identity
		// step, finding what was written meanwhile (here: nothing).
		b.StartTimer()
		start = time.Now()
		again, err := s.Erase(ctx, user)
		finalTook += time.Since(start)
		b.StopTimer()
		if err != nil || again.Count != 0 {
			b.Fatalf("final pass = %d rows, %v; want 0", again.Count, err)
		}

		user = fmt.Sprintf("user_bench_single_%d", i)
		c = benchSeed(b, db, user, benchRows)
		n := 0
		for _, q := range singleStatements {
			start := time.Now()
			res, err := db.ExecContext(ctx, q, user)
			took := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			affected, _ := res.RowsAffected()
			n += int(affected)
			singleTook += took
			singleMax = max(singleMax, took)
		}
		if n != c.Total() {
			b.Fatalf("single statements changed %d rows, want %d", n, c.Total())
		}
		singleRows += n
	}
	batchedRate := float64(batchedRows) / batchedTook.Seconds()
	singleRate := float64(singleRows) / singleTook.Seconds()
	b.ReportMetric(batchedRate, "batched-rows/s")
	b.ReportMetric(singleRate, "single-rows/s")
	b.ReportMetric(batchedRate/singleRate, "batched/single-speed")
	b.ReportMetric(100*finalTook.Seconds()/batchedTook.Seconds(), "final-pass-extra-%")
	slices.Sort(batches)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(batches[len(batches)-1]), "batched-max-tx-ms")
	b.ReportMetric(ms(batches[len(batches)*99/100]), "batched-p99-tx-ms")
	b.ReportMetric(ms(singleMax), "single-max-tx-ms")
}

// BenchmarkEraseFinalPass measures privacy's final pass (a second Erase
// of a user just erased) against the first Erase, in the same loop, for
// a user owning rows rows across the example schema, on PostgreSQL and
// SQLite, and reports the extra time in percent.
func BenchmarkEraseFinalPass(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		for _, rows := range []int{100, 10_000} {
			b.Run(fmt.Sprintf("%s/rows=%d", d, rows), func(b *testing.B) {
				ctx := context.Background()
				db := sqltest.Open(b, d)
				if err := exampleschema.Create(ctx, db, d); err != nil {
					b.Fatal(err)
				}
				if _, err := exampleschema.Seed(ctx, db, d, "user_other", 1000, time.Now()); err != nil {
					b.Fatal(err)
				}
				s, err := sqldata.New(ctx, db, d, exampleschema.Tables())
				if err != nil {
					b.Fatal(err)
				}
				var first, final time.Duration
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					user := fmt.Sprintf("user_fp_%d", i)
					if _, err := exampleschema.Seed(ctx, db, d, user, rows, time.Now()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					if _, err := s.Erase(ctx, user); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if er, err := s.Erase(ctx, user); err != nil || er.Count != 0 {
						b.Fatalf("final pass = %d rows, %v", er.Count, err)
					}
					first += mid.Sub(start)
					final += time.Since(mid)
				}
				b.ReportMetric(float64(first.Microseconds())/float64(b.N)/1000, "first-pass-ms")
				b.ReportMetric(float64(final.Microseconds())/float64(b.N)/1000, "final-pass-ms")
				b.ReportMetric(100*final.Seconds()/first.Seconds(), "final-pass-extra-%")
			})
		}
	}
}

// BenchmarkExport exports one user owning a million rows and reports
// records per second and the peak heap while exporting, next to the heap
// before it started. Run it with -benchtime=1x.
func BenchmarkExport(b *testing.B) {
	db := benchPostgres(b)
	ctx := context.Background()
	c := benchSeed(b, db, "user_bench", benchRows)
	s, err := sqldata.New(ctx, db, sqlstore.Postgres, exampleschema.Tables())
	if err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	peak := before
	records := 0
	b.ResetTimer()
	for range b.N {
		for _, err := range s.Export(ctx, "user_bench") {
			if err != nil {
				b.Fatal(err)
			}
			if records++; records%20_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	}
	b.StopTimer()
	if records != b.N*c.Total() {
		b.Fatalf("exported %d records, want %d", records, b.N*c.Total())
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(before)/(1<<20), "start-heap-MB")
}
