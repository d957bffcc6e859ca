package sqltarget_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// sevenYears is how long invoices are kept after their customer's
// erasure (tax law), to the day.
const sevenYears = 7 * 365 * 24 * time.Hour

// TestKeepThenDelete: invoices are anonymised at erasure with the time
// stamped (sqldata.ErasedAt), kept for seven years, then deleted by a
// retention policy over the stamp; invoices of customers who were never
// erased are kept whatever their age. All on one fake clock.
func TestKeepThenDelete(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		typ, key := "TIMESTAMP", "INTEGER PRIMARY KEY"
		if d == sqldialect.Postgres {
			typ, key = "TIMESTAMPTZ", "BIGSERIAL PRIMARY KEY"
		}
		for _, s := range []string{
			`CREATE TABLE invoices (id ` + key + `, customer TEXT, billing_address TEXT, total_cents INTEGER NOT NULL, issued_at ` + typ + ` NOT NULL, anonymised_at ` + typ + `)`,
			`CREATE INDEX invoices_anonymised_at ON invoices (anonymised_at)`,
		} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		for i, c := range []string{"user_a", "user_a", "user_b", "user_c"} {
			if _, err := db.ExecContext(ctx, d.Rebind(`INSERT INTO invoices (customer, billing_address, total_cents, issued_at) VALUES (?, '1 Main St', ?, ?)`),
				c, 1000*(i+1), now.AddDate(-10, 0, 0)); err != nil {
				t.Fatal(err)
			}
		}
		billing, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "invoices", UserColumn: "customer", Category: "invoices",
			Anonymise: []sqldata.Set{sqldata.Null("customer"), sqldata.Null("billing_address"), sqldata.ErasedAt("anonymised_at")}}},
			sqldata.WithNow(clock))
		if err != nil {
			t.Fatal(err)
		}
		keep, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: "invoices", TimeColumn: "anonymised_at"})
		if err != nil {
			t.Fatal(err)
		}
		engine, err := retention.NewEngine([]retention.Policy{{Name: "anonymised_invoices", Target: keep, MaxAge: sevenYears, Action: retention.Delete}},
			retention.WithNow(clock))
		if err != nil {
			t.Fatal(err)
		}
		sweep := func() int {
			t.Helper()
			rep, err := engine.Run(ctx, retention.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return rep.Policies[0].Purged
		}
		left := func() map[int]bool { // total → anonymised
			t.Helper()
			rows, err := db.QueryContext(ctx, `SELECT total_cents, customer IS NULL FROM invoices`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[int]bool{}
			for rows.Next() {
				var total int
				var anon bool
				if err := rows.Scan(&total, &anon); err != nil {
					t.Fatal(err)
				}
				got[total] = anon
			}
			return got
		}

		if _, err := billing.Erase(ctx, "user_a"); err != nil { // at 2026-01-15
			t.Fatal(err)
		}
		now = now.AddDate(2, 0, 0)
		if _, err := billing.Erase(ctx, "user_b"); err != nil { // at 2028-01-15
			t.Fatal(err)
		}
		if n := sweep(); n != 0 {
			t.Errorf("a sweep two years on purged %d", n)
		}
		now = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC).Add(sevenYears - time.Second)
		if n := sweep(); n != 0 {
			t.Errorf("a sweep a second before user_a's seven years purged %d", n)
		}
		now = now.Add(2 * time.Second)
		if n := sweep(); n != 2 {
			t.Errorf("a sweep a second after user_a's seven years purged %d, want their 2 invoices", n)
		}
		if diff := cmp.Diff(map[int]bool{3000: true, 4000: false}, left()); diff != "" {
			t.Errorf("invoices left (-want +got):\n%s", diff)
		}
		now = now.AddDate(30, 0, 0)
		if n := sweep(); n != 1 {
			t.Errorf("a sweep decades on purged %d, want user_b's invoice", n)
		}
		if diff := cmp.Diff(map[int]bool{4000: false}, left()); diff != "" {
			t.Errorf("invoices left (-want +got):\n%s: user_c was never erased", diff)
		}
	})
}

// TestKeptRowsAreNeverDeletedEarly: whatever type holds the ErasedAt
// stamp, a row anonymised at an erasure is kept for the whole period
// after it (in its last second, nothing is purged) and
// deleted once the period, and the stamp's rounding, have passed. A
// PostgreSQL date holds no time of day, so its stamp is the day after
// the erasure: the row goes up to a day late, never early.
func TestKeptRowsAreNeverDeletedEarly(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		types := []string{"TEXT", "DATETIME", "TIMESTAMP", "DATE", "VARCHAR(40)"}
		if d == sqldialect.Postgres {
			types = []string{"TIMESTAMPTZ", "TIMESTAMP", "DATE", "TIMESTAMP(3)", "TIMESTAMPTZ(0)"}
		}
		erasedAt := time.Date(2026, 1, 15, 9, 30, 15, 123456789, time.UTC)
		for i, typ := range types {
			t.Run(typ, func(t *testing.T) {
				table := fmt.Sprintf("kept_%d", i)
				for _, s := range []string{
					`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, customer TEXT, gone_at ` + typ + `)`,
					`INSERT INTO ` + table + ` (id, customer) VALUES (1, 'user_a'), (2, 'user_b')`,
				} {
					if _, err := db.ExecContext(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
				store, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: table, UserColumn: "customer",
					Anonymise: []sqldata.Set{sqldata.Null("customer"), sqldata.ErasedAt("gone_at")}}},
					sqldata.WithNow(func() time.Time { return erasedAt }))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := store.Erase(ctx, "user_a"); err != nil {
					t.Fatal(err)
				}
				keep, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: table, TimeColumn: "gone_at"})
				if err != nil {
					t.Fatal(err)
				}
				var got []int
				for _, at := range []time.Time{
					erasedAt.Add(sevenYears - time.Second),      // the period's last second (timestamp(0) rounds to one)
					erasedAt.Add(sevenYears + 24*time.Hour + 1), // past it, and past a day's rounding
				} {
					engine, err := retention.NewEngine([]retention.Policy{{Name: "kept", Target: keep, MaxAge: sevenYears, Action: retention.Delete}},
						retention.WithNow(func() time.Time { return at }))
					if err != nil {
						t.Fatal(err)
					}
					report, err := engine.Run(ctx, retention.RunOptions{})
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, report.Policies[0].Purged)
				}
				if diff := cmp.Diff([]int{0, 1}, got); diff != "" {
					t.Errorf("rows purged at the end of the period and after it (-want +got):\n%s", diff)
				}
			})
		}
	})
}
