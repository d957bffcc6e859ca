package sqldata

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestUserIDsAreBound goes under the user ID check that Export and Erase
// make first and hands SQL-shaped user IDs straight to the statements:
// bound as parameters, they only ever match a row holding exactly that
// text.
func TestUserIDsAreBound(t *testing.T) {
	hostile := []string{
		"x' OR '1'='1",
		"'; DROP TABLE notes; --",
		`x" OR "1"="1`,
		"x') OR 1=1 --",
		"x\\' OR 1=1 --",
	}
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		q := func(s string) string {
			if d == sqlstore.Postgres {
				return "$" + s
			}
			return "?"
		}
		for _, s := range []string{
			`CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT)`,
			`CREATE TABLE note_tags (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL, tag TEXT)`,
		} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		for i, owner := range append([]string{"user_a", "user_b"}, hostile...) {
			if _, err := db.ExecContext(ctx, `INSERT INTO notes (id, owner, body) VALUES (`+q("1")+`, `+q("2")+`, 'n')`, i+1, owner); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO note_tags (id, note_id, tag) VALUES (`+q("1")+`, `+q("2")+`, 't')`, i+1, i+1); err != nil {
				t.Fatal(err)
			}
		}
		s, err := New(ctx, db, d, []Table{
			{Name: "notes", UserColumn: "owner"},
			{Name: "note_tags", Via: &Via{Parent: "notes", Column: "note_id"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		total := 2 + len(hostile)
		for i, id := range hostile {
			n := 0
			for _, tb := range s.tables {
				if !s.exportTable(ctx, tb, id, func(_ privacy.Record, err error) bool {
					if err != nil {
						t.Fatalf("export %q: %v", id, err)
					}
					n++
					return true
				}) {
					t.Fatalf("export %q stopped", id)
				}
			}
			if n != 2 {
				t.Errorf("export of %q found %d records, want its own note and tag", id, n)
			}
			erased := 0
			for _, tb := range s.eraseOrder {
				c, err := s.eraseTable(ctx, tb, id, time.Now())
				if err != nil {
					t.Fatalf("erase %q: %v", id, err)
				}
				erased += c
			}
			if erased != 2 {
				t.Errorf("erase of %q changed %d rows, want its own 2", id, erased)
			}
			var left int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if want := total - i - 1; left != want {
				t.Errorf("after erasing %q, %d notes left, want %d", id, left, want)
			}
		}
	})
}
