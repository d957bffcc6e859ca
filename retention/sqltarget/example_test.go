package sqltarget_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

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
