package sqltarget_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect/sqlite"
)

// Purge activity older than 90 days from a table whose times were
// written as RFC 3339 text in the users' own offsets: they are compared
// as instants, not as text.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqltarget")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-retention.ActivityLogRetention)
	if _, err := db.ExecContext(ctx, `CREATE TABLE activity_log (id INTEGER PRIMARY KEY, user_id TEXT, action TEXT, created_at TEXT)`); err != nil {
		log.Fatal(err)
	}
	for _, row := range []struct {
		action string
		at     time.Time
	}{
		{"3 h past the cutoff, in Tokyo", cutoff.Add(-3 * time.Hour).In(time.FixedZone("JST", 9*3600))},
		{"3 h inside, in New York", cutoff.Add(3 * time.Hour).In(time.FixedZone("EST", -5*3600))},
		{"a day ago, in UTC", now.Add(-24 * time.Hour)},
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO activity_log (user_id, action, created_at) VALUES ('user_123', ?, ?)`,
			row.action, row.at.Format(time.RFC3339)); err != nil {
			log.Fatal(err)
		}
	}

	activity, err := sqltarget.New(ctx, db, sqlite.Dialect, sqltarget.Table{
		Name: "activity_log", TimeColumn: "created_at", SubjectColumn: "user_id"})
	if err != nil {
		log.Fatal(err)
	}
	engine, err := retention.NewEngine([]retention.Policy{
		{Name: "activity_logs", Target: activity, MaxAge: retention.ActivityLogRetention, Action: retention.Delete},
	}, retention.WithNow(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	report, err := engine.Run(ctx, retention.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("purged:", report.Policies[0].Purged)
	rows, err := db.QueryContext(ctx, `SELECT action FROM activity_log ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var action string
		if err := rows.Scan(&action); err != nil {
			log.Fatal(err)
		}
		fmt.Println("kept:", action)
	}
	// Output:
	// purged: 1
	// kept: 3 h inside, in New York
	// kept: a day ago, in UTC
}

// An integer column of unix times needs Table.Epoch; without it New says
// what is missing.
func ExampleTable_epoch() {
	ctx := context.Background()
	db, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id TEXT, started INTEGER)`); err != nil {
		log.Fatal(err)
	}
	_, err = sqltarget.New(ctx, db, sqlite.Dialect, sqltarget.Table{Name: "sessions", TimeColumn: "started"})
	fmt.Println(err)
	_, err = sqltarget.New(ctx, db, sqlite.Dialect, sqltarget.Table{Name: "sessions", TimeColumn: "started", Epoch: sqltarget.UnixSeconds})
	fmt.Println(err)
	// Output:
	// sqltarget: invalid table: unsupported time column: table "sessions": column "started" is "INTEGER": it holds integers: set Table.Epoch to say whether they count seconds or milliseconds (UnixSeconds, UnixMilliseconds, ...)
	// <nil>
}

// Keep, then delete: invoices are anonymised when their customer is
// erased, with the time stamped by sqldata.ErasedAt, kept seven years for
// the tax authority, then deleted by a policy over the stamp. Invoices of
// customers who were never erased have no stamp and stay.
func Example_keepThenDelete() {
	ctx := context.Background()
	db, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, total_cents INTEGER, anonymised_at TIMESTAMP)`,
		`CREATE INDEX invoices_anonymised_at ON invoices (anonymised_at)`,
		`INSERT INTO invoices (customer, total_cents) VALUES ('user_123', 4200), ('user_456', 990)`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			log.Fatal(err)
		}
	}
	now := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	billing, err := sqldata.New(ctx, db, sqlite.Dialect, []sqldata.Table{{Name: "invoices", UserColumn: "customer",
		Anonymise: []sqldata.Set{sqldata.Null("customer"), sqldata.ErasedAt("anonymised_at")}}},
		sqldata.WithNow(clock))
	if err != nil {
		log.Fatal(err)
	}
	kept, err := sqltarget.New(ctx, db, sqlite.Dialect, sqltarget.Table{Name: "invoices", TimeColumn: "anonymised_at"})
	if err != nil {
		log.Fatal(err)
	}
	engine, err := retention.NewEngine([]retention.Policy{{Name: "erased_invoices", Target: kept,
		MaxAge: 7 * 365 * 24 * time.Hour, Action: retention.Delete}}, retention.WithNow(clock))
	if err != nil {
		log.Fatal(err)
	}

	if _, err := billing.Erase(ctx, "user_123"); err != nil {
		log.Fatal(err)
	}
	for _, years := range []int{1, 8} {
		now = time.Date(2026+years, 1, 15, 9, 0, 0, 0, time.UTC)
		report, err := engine.Run(ctx, retention.RunOptions{})
		if err != nil {
			log.Fatal(err)
		}
		var left int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM invoices`).Scan(&left); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d years on: deleted %d, %d invoices left\n", years, report.Policies[0].Purged, left)
	}
	// Output:
	// 1 years on: deleted 0, 2 invoices left
	// 8 years on: deleted 1, 1 invoices left
}
