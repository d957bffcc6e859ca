package sqldialect_test

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestClassifiers provokes each constraint failure on a real database of
// each dialect and checks that exactly the matching classifier says yes,
// also through fmt.Errorf's %w.
func TestClassifiers(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		for _, s := range []string{
			`CREATE TABLE parent (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)`,
			`CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id))`,
			`INSERT INTO parent (id, email) VALUES (1, 'a@example.com')`,
		} {
			if _, err := db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		type verdict struct{ Unique, ForeignKey, NotNull bool }
		classify := func(err error) verdict {
			return verdict{sqldialect.IsUniqueViolation(err), sqldialect.IsForeignKeyViolation(err), sqldialect.IsNotNullViolation(err)}
		}
		tests := []struct {
			name string
			stmt string
			want verdict
		}{
			{"a duplicate unique value", `INSERT INTO parent (id, email) VALUES (2, 'a@example.com')`, verdict{Unique: true}},
			{"a duplicate primary key", `INSERT INTO parent (id, email) VALUES (1, 'b@example.com')`, verdict{Unique: true}},
			{"a dangling foreign key", `INSERT INTO child (id, parent_id) VALUES (1, 99)`, verdict{ForeignKey: true}},
			{"a NULL in a NOT NULL column", `INSERT INTO parent (id, email) VALUES (3, NULL)`, verdict{NotNull: true}},
			{"a syntax error", `INSERT INTO nowhere VALUES (1)`, verdict{}},
		}
		for _, tt := range tests {
			_, err := db.Exec(tt.stmt)
			if err == nil {
				t.Fatalf("%s: %s succeeded", tt.name, tt.stmt)
			}
			if diff := cmp.Diff(tt.want, classify(err)); diff != "" {
				t.Errorf("%s (%v) (-want +got):\n%s", tt.name, err, diff)
			}
			if diff := cmp.Diff(tt.want, classify(fmt.Errorf("wrapped: %w", err))); diff != "" {
				t.Errorf("%s, wrapped (-want +got):\n%s", tt.name, diff)
			}
		}
	})
	if got := (sqldialect.IsUniqueViolation(nil) || sqldialect.IsForeignKeyViolation(errors.New("UNIQUE constraint failed"))); got {
		t.Error("a nil error or a plain text error is classified as a constraint violation")
	}
}
