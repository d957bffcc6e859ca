package sqldata_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestNewRefusesWhatWouldFailLater: New reads the schema's foreign keys,
// unique indexes, NOT NULL columns and types, and refuses a declaration
// that would fail, or leave data out, only when users are erased.
func TestNewRefusesWhatWouldFailLater(t *testing.T) {
	withTable := func(name string, f func(*sqldata.Table)) func([]sqldata.Table) []sqldata.Table {
		return func(ts []sqldata.Table) []sqldata.Table {
			for i := range ts {
				if ts[i].Name == name {
					f(&ts[i])
				}
			}
			return ts
		}
	}
	plus := func(more ...sqldata.Table) func([]sqldata.Table) []sqldata.Table {
		return func(ts []sqldata.Table) []sqldata.Table { return append(ts, more...) }
	}
	tests := []struct {
		name   string
		ddl    []string // besides the example schema
		tables func([]sqldata.Table) []sqldata.Table
		opts   []sqldata.Option
		want   error // nil: New succeeds
		says   []string
		after  []string // run after seeding users a and b, before erasing them
	}{
		{
			name: "an undeclared table with a foreign key to a declared one is named",
			ddl:  []string{`CREATE TABLE order_notes (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), note TEXT)`},
			want: sqldata.ErrUndeclaredTable, says: []string{`"order_notes"`, `"orders"`, "order_id", "Via"},
		},
		{
			name: "every such table is named",
			ddl: []string{
				`CREATE TABLE order_notes (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), note TEXT)`,
				`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id))`,
			},
			want: sqldata.ErrUndeclaredTable, says: []string{`"order_notes"`, `"profile_badges"`, `"user_profiles"`},
		},
		{
			name: "WithUndeclared accepts a table whose key cannot stop an erasure",
			ddl:  []string{`CREATE TABLE order_notes (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), note TEXT)`},
			opts: []sqldata.Option{sqldata.WithUndeclared("order_notes")},
		},
		{
			name: "WithUndeclared does not accept a key that would stop the erasure of deleted rows",
			ddl:  []string{`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id))`},
			opts: []sqldata.Option{sqldata.WithUndeclared("profile_badges")},
			want: sqldata.ErrUndeclaredTable, says: []string{`"profile_badges"`, "ON DELETE NO ACTION", "CASCADE"},
		},
		{
			name: "a table hanging off a declared one through an undeclared one is named too",
			ddl: []string{
				`CREATE TABLE order_notes (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), note TEXT)`,
				`CREATE TABLE note_replies (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES order_notes (id), reply TEXT)`,
			},
			want: sqldata.ErrUndeclaredTable, says: []string{`"note_replies"`, "note_id", `"order_notes"`, `"orders"`},
		},
		{
			name: "WithUndeclared does not accept a key that would stop the cascade of an erasure",
			ddl: []string{
				`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE)`,
				`CREATE TABLE badge_awards (id INTEGER PRIMARY KEY, badge_id INTEGER NOT NULL REFERENCES profile_badges (id))`,
			},
			opts: []sqldata.Option{sqldata.WithUndeclared("profile_badges", "badge_awards")},
			want: sqldata.ErrUndeclaredTable, says: []string{`"badge_awards"`, `"profile_badges"`, `"user_profiles"`, "ON DELETE NO ACTION"},
		},
		{
			name: "an undeclared table under one named in WithUndeclared must be named too",
			ddl: []string{
				`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE)`,
				`CREATE TABLE badge_awards (id INTEGER PRIMARY KEY, badge_id INTEGER NOT NULL REFERENCES profile_badges (id) ON DELETE CASCADE)`,
			},
			opts: []sqldata.Option{sqldata.WithUndeclared("profile_badges")},
			want: sqldata.ErrUndeclaredTable, says: []string{`"badge_awards"`, `"profile_badges"`},
		},
		{
			name: "WithUndeclared accepts cascades all the way down",
			ddl: []string{
				`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE)`,
				`CREATE TABLE badge_awards (id INTEGER PRIMARY KEY, badge_id INTEGER NOT NULL REFERENCES profile_badges (id) ON DELETE CASCADE)`,
			},
			opts: []sqldata.Option{sqldata.WithUndeclared("profile_badges", "badge_awards")},
			after: []string{
				`INSERT INTO profile_badges (profile_id) SELECT id FROM user_profiles`,
				`INSERT INTO badge_awards (badge_id) SELECT id FROM profile_badges`,
			},
		},
		{
			name:  "WithUndeclared accepts ON DELETE CASCADE",
			ddl:   []string{`CREATE TABLE profile_badges (id INTEGER PRIMARY KEY, profile_id INTEGER NOT NULL REFERENCES user_profiles (id) ON DELETE CASCADE)`},
			opts:  []sqldata.Option{sqldata.WithUndeclared("profile_badges")},
			after: []string{`INSERT INTO profile_badges (profile_id) SELECT id FROM user_profiles`},
		},
		{
			name: "a declared table that keeps rows pointing at deleted ones is refused",
			ddl:  []string{`CREATE TABLE reviews (id INTEGER PRIMARY KEY, user_id TEXT, profile_id INTEGER REFERENCES user_profiles (id), body TEXT)`},
			tables: plus(sqldata.Table{Name: "reviews", UserColumn: "user_id",
				Anonymise: []sqldata.Set{sqldata.Null("user_id")}}),
			want: sqldata.ErrInvalidDeclaration, says: []string{`"reviews"`, "profile_id", `"user_profiles"`, `Null("profile_id")`},
		},
		{
			name: "a declared table keeping rows that cut the key is accepted, whatever its place",
			ddl:  []string{`CREATE TABLE reviews (id INTEGER PRIMARY KEY, user_id TEXT, profile_id INTEGER REFERENCES user_profiles (id), body TEXT)`},
			tables: plus(sqldata.Table{Name: "reviews", UserColumn: "user_id",
				Anonymise: []sqldata.Set{sqldata.Null("user_id"), sqldata.Null("profile_id")}}),
			after: []string{`INSERT INTO reviews (user_id, profile_id, body) SELECT clerk_id, id, 'great' FROM user_profiles`},
		},
		{
			name:   "a deleted table whose key points at its own rows is refused",
			ddl:    []string{`CREATE TABLE comments (id INTEGER PRIMARY KEY, user_id TEXT, parent_id BIGINT REFERENCES comments (id), body TEXT)`},
			tables: plus(sqldata.Table{Name: "comments", UserColumn: "user_id"}),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"comments"`, "(parent_id)", "same table", "ON DELETE NO ACTION", "SET NULL", "Anonymise"},
		},
		{
			name:   "a table whose key to its own rows lets deletes through is accepted, replies of other users and all",
			ddl:    []string{`CREATE TABLE comments (id INTEGER PRIMARY KEY, user_id TEXT, parent_id BIGINT REFERENCES comments (id) ON DELETE SET NULL, body TEXT)`},
			tables: plus(sqldata.Table{Name: "comments", UserColumn: "user_id", BatchSize: 1}),
			after:  []string{`INSERT INTO comments (id, user_id, parent_id, body) VALUES (1, 'user_a', NULL, 'q'), (2, 'user_b', 1, 're'), (3, 'user_a', 2, 're re'), (4, 'user_a', 3, 're re re')`},
		},
		{
			name: "a table keeping its rows with a key to its own rows is accepted",
			ddl:  []string{`CREATE TABLE comments (id INTEGER PRIMARY KEY, user_id TEXT, parent_id BIGINT REFERENCES comments (id), body TEXT)`},
			tables: plus(sqldata.Table{Name: "comments", UserColumn: "user_id", BatchSize: 1,
				Anonymise: []sqldata.Set{sqldata.Null("user_id"), sqldata.Null("body")}}),
			after: []string{`INSERT INTO comments (id, user_id, parent_id, body) VALUES (1, 'user_a', NULL, 'q'), (2, 'user_b', 1, 're'), (3, 'user_a', 2, 're re')`},
		},
		{
			name: "a table whose rows point at other users' rows is declared once more Via them",
			ddl:  []string{`CREATE TABLE kudos (id INTEGER PRIMARY KEY, user_id TEXT, order_id BIGINT REFERENCES orders (id))`},
			tables: plus(sqldata.Table{Name: "kudos", Role: "giver", UserColumn: "user_id"},
				sqldata.Table{Name: "kudos", Role: "onMyOrders", Via: &sqldata.Via{Parent: "orders", Column: "order_id"}}),
			after: []string{`INSERT INTO kudos (user_id, order_id) SELECT CASE WHEN user_id = 'user_a' THEN 'user_b' ELSE 'user_a' END, id FROM orders`},
		},
		{
			name:   "a Fixed value in a unique index is refused",
			tables: withTable("user_profiles", func(t *sqldata.Table) { t.Anonymise = []sqldata.Set{sqldata.Fixed("clerk_id", "erased")} }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"user_profiles"`, "Anonymise[0]", `"clerk_id"`, "unique", "Derived"},
		},
		{
			name: "a Fixed value in a unique index of several columns is refused",
			tables: withTable("user_preferences", func(t *sqldata.Table) {
				t.Anonymise = []sqldata.Set{sqldata.Fixed("user_id", "erased")}
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{`"user_preferences"`, `"user_id"`, "user_id, name"},
		},
		{
			name: "a Derived value in a unique index is accepted",
			ddl:  []string{`CREATE TABLE handles (id INTEGER PRIMARY KEY, owner TEXT UNIQUE, site TEXT)`},
			tables: plus(sqldata.Table{Name: "handles", UserColumn: "owner",
				Anonymise: []sqldata.Set{sqldata.Derived("owner", pseudonym), sqldata.Fixed("site", "gone")}}),
		},
		{
			name: "a kept row whose foreign key gets a pseudonym still points at a deleted row",
			tables: withTable("user_preferences", func(t *sqldata.Table) {
				t.Anonymise = []sqldata.Set{sqldata.Derived("user_id", pseudonym)}
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{`"user_preferences"`, "(user_id)", `"user_profiles"`, "ON DELETE NO ACTION"},
		},
		{
			name: "a Fixed value beside a Derived one in the same unique index is accepted",
			ddl:  []string{`CREATE TABLE handles (id INTEGER PRIMARY KEY, owner TEXT, site TEXT, label TEXT, UNIQUE (owner, site, label))`},
			tables: plus(sqldata.Table{Name: "handles", UserColumn: "owner",
				Anonymise: []sqldata.Set{sqldata.Derived("owner", pseudonym), sqldata.Fixed("label", "gone")}}),
			after: []string{`INSERT INTO handles (owner, site, label) VALUES ('user_a', 'x', 'ada'), ('user_a', 'y', 'ada'), ('user_b', 'x', 'bo')`},
		},
		{
			name: "a pseudonym over a whole unique index would merge one user's rows",
			ddl:  []string{`CREATE TABLE handles (id INTEGER PRIMARY KEY, owner TEXT, site TEXT, UNIQUE (owner, site))`},
			tables: plus(sqldata.Table{Name: "handles", UserColumn: "owner",
				Anonymise: []sqldata.Set{sqldata.Derived("owner", pseudonym), sqldata.Derived("site", pseudonym)}}),
			want: sqldata.ErrInvalidDeclaration, says: []string{`"handles"`, "owner, site", "two rows"},
		},
		{
			name:   "Null on a NOT NULL column is refused",
			tables: withTable("user_preferences", func(t *sqldata.Table) { t.Anonymise = []sqldata.Set{sqldata.Null("user_id")} }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[0]", `"user_id"`, "NOT NULL"},
		},
		{
			name: "ErasedAt on a column of integers is refused",
			tables: withTable("orders", func(t *sqldata.Table) {
				t.Anonymise = append(t.Anonymise, sqldata.ErasedAt("total_cents"))
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[3]", `"total_cents"`, "times"},
		},
		{
			name: "ErasedAt alone is refused",
			tables: withTable("order_items", func(t *sqldata.Table) {
				t.Anonymise = []sqldata.Set{sqldata.ErasedAt("gift_message")}
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{"ErasedAt only"},
		},
		{
			name: "ErasedAt cannot stand for overwriting the user column",
			tables: withTable("orders", func(t *sqldata.Table) {
				t.Anonymise = []sqldata.Set{sqldata.ErasedAt("user_id"), sqldata.Null("email")}
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{`"user_id"`},
		},
		{
			name:   "a table declared twice needs a Role in each declaration",
			tables: plus(sqldata.Table{Name: "orders", UserColumn: "email"}),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"orders"`, "declared twice", "Role"},
		},
		{
			name: "the Roles of a table differ",
			tables: func(ts []sqldata.Table) []sqldata.Table {
				ts = withTable("orders", func(t *sqldata.Table) { t.Role = "buyer" })(ts)
				return append(ts, sqldata.Table{Name: "orders", Role: "buyer", UserColumn: "email"})
			},
			want: sqldata.ErrInvalidDeclaration, says: []string{"same Role"},
		},
		{
			name: "Via to a table of several roles names one",
			tables: func(ts []sqldata.Table) []sqldata.Table {
				ts = withTable("orders", func(t *sqldata.Table) { t.Role = "buyer" })(ts)
				return append(ts, sqldata.Table{Name: "orders", Role: "contact", UserColumn: "email", Category: "contact"})
			},
			want: sqldata.ErrInvalidDeclaration, says: []string{`"order_items"`, "Via.Role", "several roles"},
		},
		{
			name: "Via.Role names a declared role",
			tables: func(ts []sqldata.Table) []sqldata.Table {
				return withTable("order_items", func(t *sqldata.Table) { t.Via.Role = "seller" })(ts)
			},
			want: sqldata.ErrInvalidDeclaration, says: []string{"Via.Role", `"seller"`},
		},
		{
			name: "a table of several roles with Via naming one is accepted",
			tables: func(ts []sqldata.Table) []sqldata.Table {
				ts = withTable("orders", func(t *sqldata.Table) { t.Role = "buyer" })(ts)
				ts = withTable("order_items", func(t *sqldata.Table) { t.Via.Role = "buyer" })(ts)
				return append(ts, sqldata.Table{Name: "orders", Role: "contact", UserColumn: "email", Category: "contact",
					Anonymise: []sqldata.Set{sqldata.Null("email")}})
			},
		},
	}
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := sqltest.Open(t, d)
				if err := exampleschema.Create(ctx, db, d); err != nil {
					t.Fatal(err)
				}
				for _, s := range tt.ddl {
					if d == sqldialect.Postgres {
						s = strings.ReplaceAll(s, "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
					}
					exec(t, db, s)
				}
				tables := exampleschema.Tables()
				if tt.tables != nil {
					tables = tt.tables(tables)
				}
				s, err := sqldata.New(ctx, db, d, tables, tt.opts...)
				if tt.want == nil {
					if err != nil {
						t.Fatalf("New = %v, want it to accept the declaration", err)
					}
					seed(t, db, d, "user_a", 30)
					seed(t, db, d, "user_b", 30)
					exec(t, db, tt.after...)
					if _, err := s.Erase(ctx, "user_a"); err != nil {
						t.Errorf("Erase(user_a) = %v", err)
					}
					if _, err := s.Erase(ctx, "user_b"); err != nil {
						t.Errorf("Erase(user_b), the second user = %v", err)
					}
					return
				}
				if !errors.Is(err, tt.want) || s != nil {
					t.Fatalf("New = %v, %v; want %v", s, err, tt.want)
				}
				for _, w := range tt.says {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %s", err, w)
					}
				}
			})
		}
	})
}

// TestOneToOneTableKeyedByTheUser: a table whose primary key is the user
// ID keeps its row under a pseudonym, on both dialects, for one user
// after another.
func TestOneToOneTableKeyedByTheUser(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		exec(t, db,
			`CREATE TABLE user_settings (user_id TEXT PRIMARY KEY, theme TEXT NOT NULL, email TEXT)`,
			`INSERT INTO user_settings VALUES ('user_a', 'dark', 'a@example.com'), ('user_b', 'light', 'b@example.com'), ('user_c', 'dark', NULL)`)
		table := sqldata.Table{Name: "user_settings", UserColumn: "user_id", Category: "settings",
			Anonymise: []sqldata.Set{sqldata.Derived("user_id", pseudonym), sqldata.Null("email")}}
		s, err := sqldata.New(ctx, db, d, []sqldata.Table{table})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"user_a", "user_b", "user_a"} {
			if _, err := s.Erase(ctx, id); err != nil {
				t.Fatalf("Erase(%s) = %v", id, err)
			}
		}
		type row struct{ Key, Theme string }
		var got []row
		rows, err := db.Query(`SELECT user_id, theme FROM user_settings WHERE email IS NULL ORDER BY theme, user_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.Key, &r.Theme); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		pa, _ := pseudonym("user_a")
		pb, _ := pseudonym("user_b")
		want := []row{{pa.(string), "dark"}, {"user_c", "dark"}, {pb.(string), "light"}}
		if pa.(string) > "user_c" {
			want[0], want[1] = want[1], want[0]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if got := exportAll(t, s, "user_a"); len(got) != 0 {
			t.Errorf("user_a's export after erasure: %v", got)
		}

		// Null cannot stand in for the key; the error says what can.
		table.Anonymise[0] = sqldata.Null("user_id")
		_, err = sqldata.New(ctx, db, d, []sqldata.Table{table})
		if !errors.Is(err, sqldata.ErrInvalidDeclaration) || !strings.Contains(err.Error(), "Derived") || !strings.Contains(err.Error(), "key") {
			t.Errorf("New with Null on the key = %v; want ErrInvalidDeclaration pointing to Derived", err)
		}
	})
}

// TestErasedAtStampsTheAnonymisation: ErasedAt writes the Store clock's
// time with the anonymisation, and erasing again later leaves it.
func TestErasedAtStampsTheAnonymisation(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		typ := "TIMESTAMP"
		if d == sqldialect.Postgres {
			typ = "TIMESTAMPTZ"
		}
		exec(t, db,
			`CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, total INTEGER NOT NULL, anonymised_at `+typ+`)`,
			`INSERT INTO invoices (id, customer, total) VALUES (1, 'user_a', 100), (2, 'user_b', 200), (3, 'user_a', 300)`)
		now := time.Date(2026, 6, 1, 10, 30, 0, 123456789, time.UTC)
		s, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "invoices", UserColumn: "customer",
			Anonymise: []sqldata.Set{sqldata.Null("customer"), sqldata.ErasedAt("anonymised_at")}}},
			sqldata.WithNow(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		if er, err := s.Erase(ctx, "user_a"); err != nil || er.Count != 2 {
			t.Fatalf("Erase = %+v, %v; want 2", er, err)
		}
		first := now
		now = now.AddDate(1, 0, 0)
		if er, err := s.Erase(ctx, "user_a"); err != nil || er.Count != 0 {
			t.Fatalf("Erase again = %+v, %v; want 0", er, err)
		}
		got := map[int]string{}
		rows, err := db.Query(`SELECT id, anonymised_at FROM invoices ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			var at any
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			switch v := at.(type) {
			case time.Time:
				got[id] = v.UTC().Format(time.RFC3339Nano)
			case string:
				got[id] = v
			case nil:
				got[id] = "NULL"
			}
		}
		stamp := first.Format(sqldata.ErasedAtLayout)
		if d == sqldialect.Postgres {
			stamp = first.Truncate(time.Microsecond).Format(time.RFC3339Nano) // timestamptz keeps microseconds
		} else {
			stamp = first.Format(time.RFC3339Nano) // modernc reads the TIMESTAMP column back as a time
		}
		if diff := cmp.Diff(map[int]string{1: stamp, 2: "NULL", 3: stamp}, got); diff != "" {
			t.Errorf("anonymised_at (-want +got):\n%s", diff)
		}
	})
}
