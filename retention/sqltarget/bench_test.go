package sqltarget_test

import (
	"context"
	"database/sql"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

var benchRows = flag.Int("retention.rows", 10_000_000, "rows in the activity table of BenchmarkPurge (half expired)")

// seedActivity fills a fresh activity_log with n rows over 180 days, so
// half are older than 90 days.
func seedActivity(b *testing.B, db *sql.DB, n int, now time.Time) {
	b.Helper()
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS activity_log`,
		`CREATE TABLE activity_log (id BIGSERIAL PRIMARY KEY, user_id TEXT, action TEXT, created_at TIMESTAMPTZ NOT NULL)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO activity_log (user_id, action, created_at)
		SELECT 'user_' || (g % 5000), 'page_view', $1::timestamptz - (g::float8 / $2 * interval '180 days')
		FROM generate_series(1, $2) AS g`, now, n); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE INDEX activity_log_created_at ON activity_log (created_at); ANALYZE activity_log`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPurge purges the 90-day-old half of an activity table through
// the retention Engine in batches, and with one DELETE, in the same run,
// reporting rows/s of each, the single DELETE's transaction time and the
// batches' longest, 99th-percentile and median times and how many took
// 100 ms or more. Batches of 50 ms or more are logged with the time they
// ended, to set beside the server's checkpoint log.
//
//	STEWARD_TEST_POSTGRES_DSN=... go test -run '^$' -bench Purge -benchtime 1x ./retention/sqltarget/
func BenchmarkPurge(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds millions of rows")
	}
	db := sqltest.Open(b, sqlstore.Postgres)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	n := *benchRows
	for b.Loop() {
		seedActivity(b, db, n, now)
		tg, err := sqltarget.New(ctx, db, sqlstore.Postgres, sqltarget.Table{Name: "activity_log", TimeColumn: "created_at", SubjectColumn: "user_id"})
		if err != nil {
			b.Fatal(err)
		}
		var batches []time.Duration
		mark := time.Now()
		engine, err := retention.NewEngine([]retention.Policy{{Name: "activity_logs", Target: tg, MaxAge: retention.ActivityLogRetention, Action: retention.Delete, BatchSize: 2000}},
			retention.WithNow(func() time.Time { return now }))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := engine.Run(ctx, retention.RunOptions{Progress: func(retention.Progress) {
			d := time.Since(mark)
			batches = append(batches, d)
			if d > 50*time.Millisecond { // to set beside the server's checkpoint log
				b.Logf("batch #%d took %v, ended %s UTC", len(batches), d, time.Now().UTC().Format("15:04:05.000"))
			}
			mark = time.Now()
		}})
		if err != nil {
			b.Fatal(err)
		}
		batched := time.Since(start)
		purged := rep.Policies[0].Purged

		seedActivity(b, db, n, now)
		start = time.Now()
		res, err := db.ExecContext(ctx, `DELETE FROM activity_log WHERE created_at < $1`, now.Add(-retention.ActivityLogRetention))
		if err != nil {
			b.Fatal(err)
		}
		single := time.Since(start)
		deleted, _ := res.RowsAffected()
		if int64(purged) != deleted {
			b.Fatalf("batched purged %d rows, the single DELETE %d", purged, deleted)
		}
		b.ReportMetric(float64(purged)/batched.Seconds(), "batched-rows/s")
		b.ReportMetric(float64(deleted)/single.Seconds(), "single-rows/s")
		slices.Sort(batches)
		under, _ := slices.BinarySearch(batches, 100*time.Millisecond)
		over := len(batches) - under
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(batches[len(batches)-1]), "batched-longest-ms")
		b.ReportMetric(ms(batches[len(batches)*99/100]), "batched-p99-ms")
		b.ReportMetric(ms(batches[len(batches)/2]), "batched-p50-ms")
		b.ReportMetric(float64(over), "batches-over-100ms")
		b.ReportMetric(float64(single.Milliseconds()), "single-tx-ms")
		b.ReportMetric(float64(purged), "rows-purged")
	}
}
