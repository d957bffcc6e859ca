package sqltarget_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestHundredThousandHolds: 100,000 users under legal hold (20 of whom
// own rows) travel as one array, not one parameter each; Count, Purge
// and Anonymise through the Engine leave exactly the held users' rows.
func TestHundredThousandHolds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 holds and 20,000 rows")
	}
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		const users, perUser = 200, 100 // half of each user's rows expired
		createEvents(t, db, d)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := tx.PrepareContext(ctx, d.Rebind(`INSERT INTO events (user_id, ip, created_at) VALUES (?, '198.51.100.1', ?)`))
		if err != nil {
			t.Fatal(err)
		}
		for u := range users {
			for i := range perUser {
				if _, err := ins.ExecContext(ctx, fmt.Sprintf("user_%03d", u), now.Add(-time.Duration(i*2)*24*time.Hour-time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		holds := &retention.MemoryHolds{}
		for i := range 100_000 {
			id := fmt.Sprintf("user_nobody_%06d", i)
			if i%5000 == 0 {
				id = fmt.Sprintf("user_%03d", i/5000*10) // user_000, user_010, ... user_190
			}
			if err := holds.Place(ctx, retention.Hold{UserID: id, Reason: "litigation", PlacedBy: "user_counsel", PlacedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		tg, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: "events", TimeColumn: "created_at", SubjectColumn: "user_id", Anonymise: []string{"ip"}})
		if err != nil {
			t.Fatal(err)
		}
		// Each user has 55 rows older than 90 days (days 90..198, every other day).
		const expiredPerUser = 55
		run := func(action retention.Action, dry bool) retention.PolicyReport {
			t.Helper()
			e, err := retention.NewEngine([]retention.Policy{{Name: "events", Target: tg, MaxAge: 90 * 24 * time.Hour, Action: action, BatchSize: 500}},
				retention.WithHolds(holds), retention.WithNow(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Run(ctx, retention.RunOptions{DryRun: dry})
			if err != nil {
				t.Fatal(err)
			}
			return rep.Policies[0]
		}
		want := (users - 20) * expiredPerUser
		if got := run(retention.Anonymise, true); got.Purged != want {
			t.Errorf("dry-run anonymise counts %d, want %d", got.Purged, want)
		}
		if got := run(retention.Anonymise, false); got.Purged != want {
			t.Errorf("anonymised %d, want %d", got.Purged, want)
		}
		if got := run(retention.Delete, true); got.Purged != want {
			t.Errorf("dry-run delete counts %d, want %d (the anonymised rows)", got.Purged, want)
		}
		if got := run(retention.Delete, false); got.Purged != want {
			t.Errorf("deleted %d, want %d", got.Purged, want)
		}
		// What is left: every row of the 20 held users, and the other
		// users' recent rows, none of them anonymised.
		type left struct{ Held, Others, Anonymised int }
		var got left
		q := `SELECT
	count(CASE WHEN user_id IN ('user_000', 'user_010', 'user_020', 'user_030', 'user_040', 'user_050', 'user_060', 'user_070', 'user_080', 'user_090',
		'user_100', 'user_110', 'user_120', 'user_130', 'user_140', 'user_150', 'user_160', 'user_170', 'user_180', 'user_190') THEN 1 END),
	count(CASE WHEN user_id NOT LIKE 'user_%0' THEN 1 END),
	count(CASE WHEN user_id IS NULL OR ip IS NULL THEN 1 END)
FROM events`
		if err := db.QueryRowContext(ctx, q).Scan(&got.Held, &got.Others, &got.Anonymised); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(left{Held: 20 * perUser, Others: (users - 20) * (perUser - expiredPerUser)}, got); diff != "" {
			t.Errorf("rows left (-want +got):\n%s", diff)
		}
	})
}
