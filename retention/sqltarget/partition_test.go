package sqltarget_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestPartitionedTable: on a PostgreSQL table partitioned by month every
// partition numbers its ctids from (0,1); a batch deletes exactly the
// rows it picked, never the rows at the same ctids of other partitions.
func TestPartitionedTable(t *testing.T) {
	db := sqltest.Open(t, sqldialect.Postgres)
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE plog (id BIGSERIAL, user_id TEXT, created_at TIMESTAMPTZ NOT NULL) PARTITION BY RANGE (created_at)`,
		`CREATE TABLE plog_jan PARTITION OF plog FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')`,
		`CREATE TABLE plog_feb PARTITION OF plog FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')`,
		`CREATE TABLE plog_jun PARTITION OF plog FOR VALUES FROM ('2026-06-01') TO ('2026-07-01')`,
		`CREATE INDEX ON plog (created_at)`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, month := range []time.Month{1, 2, 6} {
		for i := range 5 {
			user := "user_a"
			if month == 2 && i%2 == 0 {
				user = "user_held"
			}
			at := time.Date(2026, month, 10, i, 0, 0, 0, time.UTC)
			if _, err := db.ExecContext(ctx, `INSERT INTO plog (user_id, created_at) VALUES ($1, $2)`, user, at); err != nil {
				t.Fatal(err)
			}
			if month == 6 || user == "user_held" {
				want = append(want, fmt.Sprintf("%s %s", user, at.Format(time.DateTime)))
			}
		}
	}
	tg, err := sqltarget.New(ctx, db, sqldialect.Postgres, sqltarget.Table{Name: "plog", TimeColumn: "created_at", SubjectColumn: "user_id"})
	if err != nil {
		t.Fatal(err)
	}
	cutoff := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	purge := func(exclude []string) []int {
		var batches []int
		for {
			n, err := tg.Purge(ctx, cutoff, 3, exclude)
			if err != nil {
				t.Fatal(err)
			}
			batches = append(batches, n)
			if n == 0 {
				return batches
			}
		}
	}
	if diff := cmp.Diff([]int{3, 3, 1, 0}, purge([]string{"user_held"})); diff != "" {
		t.Errorf("batches with a hold (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, left(t, db)); diff != "" {
		t.Errorf("rows left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{3, 0}, purge(nil)); diff != "" {
		t.Errorf("batches once the hold is gone (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[3:], left(t, db)); diff != "" {
		t.Errorf("rows left (-want +got):\n%s", diff)
	}
}

func left(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT user_id, created_at FROM plog ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var u string
		var at time.Time
		if err := rows.Scan(&u, &at); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s", u, at.UTC().Format(time.DateTime)))
	}
	return got
}
