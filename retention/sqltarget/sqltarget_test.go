package sqltarget_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/retentiontest"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func createEvents(t testing.TB, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	ddl := `CREATE TABLE events (id INTEGER PRIMARY KEY, user_id TEXT, ip TEXT, created_at TIMESTAMP NOT NULL)`
	if d == sqlstore.Postgres {
		ddl = `CREATE TABLE events (id BIGSERIAL PRIMARY KEY, user_id TEXT, ip TEXT, created_at TIMESTAMPTZ NOT NULL)`
	}
	if _, err := db.Exec(ddl); err != nil {
		t.Fatal(err)
	}
}

type harness struct {
	db *sql.DB
	d  sqlstore.Dialect
	tg *sqltarget.Target
}

func (h harness) Target() retention.Target { return h.tg }
func (h harness) Add(ctx context.Context, subject string, at time.Time) error {
	var s any
	if subject != "" {
		s = subject
	}
	_, err := h.db.ExecContext(ctx, h.d.Rebind(`INSERT INTO events (user_id, ip, created_at) VALUES (?, '203.0.113.7', ?)`), s, at.UTC())
	return err
}

func TestConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		retentiontest.RunTargetConformance(t, func(t *testing.T) retentiontest.TargetHarness {
			db := sqltest.Open(t, d)
			createEvents(t, db, d)
			tg, err := sqltarget.New(context.Background(), db, d, sqltarget.Table{
				Name: "events", TimeColumn: "created_at", SubjectColumn: "user_id", Anonymise: []string{"ip"}})
			if err != nil {
				t.Fatal(err)
			}
			return harness{db, d, tg}
		})
	})
}

func TestNewRejectsBadDeclarations(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		createEvents(t, db, d)
		ctx := context.Background()
		tests := []struct {
			name string
			tb   sqltarget.Table
			want error
		}{
			{"missing table", sqltarget.Table{Name: "evnts", TimeColumn: "created_at"}, sqldata.ErrUnknownTable},
			{"missing column", sqltarget.Table{Name: "events", TimeColumn: "made_at"}, sqldata.ErrUnknownColumn},
			{"injection in a table name", sqltarget.Table{Name: `events; DROP TABLE events; --`, TimeColumn: "created_at"}, sqldata.ErrUnknownTable},
			{"injection in a column name", sqltarget.Table{Name: "events", TimeColumn: `created_at" < now() OR "1`}, sqldata.ErrUnknownColumn},
			{"no time column", sqltarget.Table{Name: "events"}, sqltarget.ErrInvalidTable},
			{"anonymise without a subject", sqltarget.Table{Name: "events", TimeColumn: "created_at", Anonymise: []string{"ip"}}, sqltarget.ErrInvalidTable},
		}
		for _, tt := range tests {
			if _, err := sqltarget.New(ctx, db, d, tt.tb); !errors.Is(err, tt.want) {
				t.Errorf("%s: New = %v, want %v", tt.name, err, tt.want)
			}
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
			t.Errorf("the events table is gone: %v", err)
		}
	})
}

func TestExcludedIDsAreBindParameters(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		createEvents(t, db, d)
		ctx := context.Background()
		tg, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: "events", TimeColumn: "created_at", SubjectColumn: "user_id"})
		if err != nil {
			t.Fatal(err)
		}
		h := harness{db, d, tg}
		old := time.Now().Add(-time.Hour)
		_ = h.Add(ctx, "user_a", old)
		_ = h.Add(ctx, "x') OR ('1'='1", old)
		n, err := tg.Purge(ctx, time.Now(), 10, []string{"x') OR ('1'='1"})
		if err != nil || n != 1 {
			t.Errorf("Purge = %d, %v; want 1 (the odd ID is held, as a value)", n, err)
		}
	})
}

// TestRowsBehindTheCursorAreNotMissed: batches continue from where the
// last one ended, but a row inserted behind that point is still purged
// before Purge reports that nothing is left.
func TestRowsBehindTheCursorAreNotMissed(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		createEvents(t, db, d)
		ctx := context.Background()
		tg, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: "events", TimeColumn: "created_at", SubjectColumn: "user_id"})
		if err != nil {
			t.Fatal(err)
		}
		h := harness{db, d, tg}
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 6; i++ {
			_ = h.Add(ctx, "user_a", now.Add(-time.Duration(10-i)*time.Hour))
		}
		if n, err := tg.Purge(ctx, now, 2, nil); err != nil || n != 2 {
			t.Fatalf("first batch = %d, %v", n, err)
		}
		_ = h.Add(ctx, "user_b", now.Add(-100*time.Hour)) // a late backfill, older than everything
		total := 2
		for {
			n, err := tg.Purge(ctx, now, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			total += n
		}
		if total != 7 {
			t.Errorf("purged %d rows, want 7", total)
		}
		if n, _ := tg.Count(ctx, now, nil); n != 0 {
			t.Errorf("%d expired rows left", n)
		}
	})
}
