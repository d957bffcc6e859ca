package sqltarget_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

var benchRows = flag.Int("retention.rows", 10_000_000, "rows in the activity table of BenchmarkPurge (half expired)")

// seedActivity fills a fresh activity_log with n rows of 5,000 users over
// 180 days, so half are older than 90 days.
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
	// Start each run from a checkpoint, so one run's dirty pages do not
	// slow the next.
	if _, err := db.Exec(`CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
}

// previousPurge is the statement sqltarget ran before it compared in the
// column's own storage, batches in transactions and holds in one array:
// one autocommitted DELETE per batch, picking rows by ctid and continuing
// from the newest time the last batch deleted. It is the same-run
// baseline for the batched purge.
func previousPurge(ctx context.Context, db *sql.DB, cutoff time.Time, limit int) (int, error) {
	total := 0
	var from time.Time
	for {
		q, args := `DELETE FROM activity_log WHERE ctid = ANY(ARRAY(SELECT ctid FROM activity_log WHERE created_at < $1 ORDER BY created_at LIMIT `+fmt.Sprint(limit)+`)) RETURNING created_at`, []any{cutoff}
		if !from.IsZero() {
			q, args = `DELETE FROM activity_log WHERE ctid = ANY(ARRAY(SELECT ctid FROM activity_log WHERE created_at < $1 AND created_at >= $2 ORDER BY created_at LIMIT `+fmt.Sprint(limit)+`)) RETURNING created_at`, []any{cutoff, from}
		}
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return total, err
		}
		n := 0
		var newest time.Time
		for rows.Next() {
			var at time.Time
			if err := rows.Scan(&at); err != nil {
				rows.Close()
				return total, err
			}
			n++
			if at.After(newest) {
				newest = at
			}
		}
		if err := rows.Close(); err != nil {
			return total, err
		}
		total += n
		switch {
		case n == limit:
			from = newest
		case n == 0 && !from.IsZero():
			from = time.Time{}
		case n == 0:
			return total, nil
		default:
			from = time.Time{}
		}
	}
}

// holdsOf returns 100,000 held user IDs, five of them owners of rows.
func holdsOf() *retention.MemoryHolds {
	h := &retention.MemoryHolds{}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100_000 {
		id := fmt.Sprintf("user_held_%06d", i)
		if i%20_000 == 0 {
			id = fmt.Sprintf("user_%d", i/20_000*1000) // user_0, user_1000, ... user_4000
		}
		if err := h.Place(context.Background(), retention.Hold{UserID: id, Reason: "litigation", PlacedBy: "user_counsel", PlacedAt: at}); err != nil {
			panic(err)
		}
	}
	return h
}

// BenchmarkPurge purges the 90-day-old half of a 10,000,000-row activity
// table (timestamptz, the cutoff compared as a timestamptz) four ways in
// the same run, each on a freshly seeded table: with the previous
// sqltarget statement (the baseline), through the retention Engine and
// sqltarget in batches of 2,000, the same with 100,000 users under legal
// hold, and with one DELETE. It reports rows/s of each, the batched
// purge's ratio to the baseline, the time per row with holds over the
// time per row without, the single DELETE's transaction time and the
// batches' longest, 99th-percentile and median times and how many took
// 100 ms or more. Batches of 50 ms or more are logged with the time they
// ended, to set beside the server's checkpoint log.
//
//	STEWARD_TEST_POSTGRES_DSN=... go test -run '^$' -bench Purge -benchtime 1x -timeout 30m ./retention/sqltarget/
func BenchmarkPurge(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds millions of rows")
	}
	db := sqltest.Open(b, sqldialect.Postgres)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cutoff := now.Add(-retention.ActivityLogRetention)
	n := *benchRows
	held := holdsOf()
	engineRun := func(holds retention.HoldStore, batches *[]time.Duration) (int, time.Duration) {
		tg, err := sqltarget.New(ctx, db, sqldialect.Postgres, sqltarget.Table{Name: "activity_log", TimeColumn: "created_at", SubjectColumn: "user_id"})
		if err != nil {
			b.Fatal(err)
		}
		opts := []retention.Option{retention.WithNow(func() time.Time { return now })}
		if holds != nil {
			opts = append(opts, retention.WithHolds(holds))
		}
		engine, err := retention.NewEngine([]retention.Policy{{Name: "activity_logs", Target: tg, MaxAge: retention.ActivityLogRetention, Action: retention.Delete, BatchSize: 2000}}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		mark := time.Now()
		start := mark
		rep, err := engine.Run(ctx, retention.RunOptions{Progress: func(retention.Progress) {
			d := time.Since(mark)
			if batches != nil {
				*batches = append(*batches, d)
				if d > 50*time.Millisecond { // to set beside the server's checkpoint log
					b.Logf("batch #%d took %v, ended %s UTC", len(*batches), d, time.Now().UTC().Format("15:04:05.000"))
				}
			}
			mark = time.Now()
		}})
		if err != nil {
			b.Fatal(err)
		}
		return rep.Policies[0].Purged, time.Since(start)
	}
	for b.Loop() {
		seedActivity(b, db, n, now)
		start := time.Now()
		prevRows, err := previousPurge(ctx, db, cutoff, 2000)
		if err != nil {
			b.Fatal(err)
		}
		previous := time.Since(start)

		seedActivity(b, db, n, now)
		var batches []time.Duration
		purged, batched := engineRun(nil, &batches)

		seedActivity(b, db, n, now)
		heldPurged, withHolds := engineRun(held, nil)
		var heldLeft int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM activity_log WHERE created_at < $1`, cutoff).Scan(&heldLeft); err != nil {
			b.Fatal(err)
		}

		seedActivity(b, db, n, now)
		start = time.Now()
		res, err := db.ExecContext(ctx, `DELETE FROM activity_log WHERE created_at < $1`, cutoff)
		if err != nil {
			b.Fatal(err)
		}
		single := time.Since(start)
		deleted, _ := res.RowsAffected()
		if int64(purged) != deleted || int64(prevRows) != deleted || int64(heldPurged+heldLeft) != deleted || heldLeft == 0 {
			b.Fatalf("purged %d rows, the previous statement %d, with holds %d (+%d held), the single DELETE %d", purged, prevRows, heldPurged, heldLeft, deleted)
		}
		perRow := func(d time.Duration, rows int) float64 { return d.Seconds() / float64(rows) }
		b.ReportMetric(float64(purged)/batched.Seconds(), "batched-rows/s")
		b.ReportMetric(float64(prevRows)/previous.Seconds(), "previous-rows/s")
		b.ReportMetric(perRow(previous, prevRows)/perRow(batched, purged), "x-previous")
		b.ReportMetric(float64(heldPurged)/withHolds.Seconds(), "holds-rows/s")
		b.ReportMetric(perRow(withHolds, heldPurged)/perRow(batched, purged), "holds-time-x")
		b.ReportMetric(float64(heldLeft), "held-rows-kept")
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
