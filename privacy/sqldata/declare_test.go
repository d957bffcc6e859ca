package sqldata_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// edit returns the example tables with f applied to the one named name.
func edit(name string, f func(*sqldata.Table)) []sqldata.Table {
	ts := exampleschema.Tables()
	for i := range ts {
		if ts[i].Name == name {
			f(&ts[i])
		}
	}
	return ts
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name   string
		tables []sqldata.Table
		opts   []sqldata.Option
		want   error
		says   []string // the error names these
	}{
		{
			name:   "a missing table fails at New with its name",
			tables: edit("activity_log", func(t *sqldata.Table) { t.Name = "activity_logs" }),
			want:   sqldata.ErrUnknownTable, says: []string{`"activity_logs"`},
		},
		{
			name:   "a missing user column fails with its name",
			tables: edit("activity_log", func(t *sqldata.Table) { t.UserColumn = "userid" }),
			want:   sqldata.ErrUnknownColumn, says: []string{`"activity_log"`, "UserColumn", `"userid"`},
		},
		{
			name:   "a missing exported column fails with its name",
			tables: edit("orders", func(t *sqldata.Table) { t.Columns[1].Name = "emial" }),
			want:   sqldata.ErrUnknownColumn, says: []string{`"orders"`, "Columns[1].Name", `"emial"`},
		},
		{
			name:   "a missing anonymised column fails with its name",
			tables: edit("orders", func(t *sqldata.Table) { t.Anonymise[2] = sqldata.Null("address") }),
			want:   sqldata.ErrUnknownColumn, says: []string{"Anonymise[2]", `"address"`},
		},
		{
			name:   "a missing Via column fails with its name",
			tables: edit("order_items", func(t *sqldata.Table) { t.Via.Column = "orderid" }),
			want:   sqldata.ErrUnknownColumn, says: []string{`"order_items"`, "Via.Column", `"orderid"`},
		},
		{
			name:   "a missing parent column fails with its name",
			tables: edit("order_items", func(t *sqldata.Table) { t.Via.ParentColumn = "order_no" }),
			want:   sqldata.ErrUnknownColumn, says: []string{"Via.ParentColumn", `"order_no"`},
		},
		{
			name:   "a missing key column fails with its name",
			tables: edit("activity_log", func(t *sqldata.Table) { t.Key = "seq" }),
			want:   sqldata.ErrUnknownColumn, says: []string{"Key", `"seq"`},
		},
		{
			name:   "a table name carrying SQL is just a missing table",
			tables: edit("activity_log", func(t *sqldata.Table) { t.Name = "activity_log; DROP TABLE user_profiles; --" }),
			want:   sqldata.ErrUnknownTable,
		},
		{
			name:   "a column name carrying SQL is just a missing column",
			tables: edit("orders", func(t *sqldata.Table) { t.UserColumn = `user_id" = user_id OR "1` }),
			want:   sqldata.ErrInvalidDeclaration, // it no longer names the anonymised user column
		},
		{
			name:   "a column name carrying SQL is just a missing column (export)",
			tables: edit("orders", func(t *sqldata.Table) { t.Columns[0].Name = `id", (SELECT 1) AS "x` }),
			want:   sqldata.ErrUnknownColumn,
		},
		{
			name:   "a name with a control character is rejected",
			tables: edit("orders", func(t *sqldata.Table) { t.Columns[0].Name = "id\n" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Columns[0].Name"},
		},
		{
			name:   "an empty table name is rejected",
			tables: edit("orders", func(t *sqldata.Table) { t.Name = "" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Name"},
		},
		{
			name:   "a table declared twice is rejected",
			tables: append(exampleschema.Tables(), exampleschema.Tables()[4]),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"activity_log"`, "declared twice"},
		},
		{
			name:   "a table needs UserColumn or Via",
			tables: edit("activity_log", func(t *sqldata.Table) { t.UserColumn = "" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"activity_log"`, "UserColumn"},
		},
		{
			name:   "a table cannot have both UserColumn and Via",
			tables: edit("order_items", func(t *sqldata.Table) { t.UserColumn = "order_id" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"only one"},
		},
		{
			name:   "Via names a declared table",
			tables: edit("order_items", func(t *sqldata.Table) { t.Via.Parent = "purchases" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Via.Parent", `"purchases"`, "not declared"},
		},
		{
			name:   "References name declared tables",
			tables: edit("activity_log", func(t *sqldata.Table) { t.References = []string{"users"} }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"References[0]", `"users"`},
		},
		{
			name: "a cycle is rejected, naming its tables",
			tables: edit("orders", func(t *sqldata.Table) {
				t.References = []string{"order_items"}
			}),
			want: sqldata.ErrInvalidDeclaration, says: []string{"cycle", `"orders" → "order_items" → "orders"`},
		},
		{
			name:   "anonymising must overwrite the user column",
			tables: edit("orders", func(t *sqldata.Table) { t.Anonymise = t.Anonymise[1:] }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{`"orders"`, "Anonymise", `"user_id"`},
		},
		{
			name:   "anonymising cannot overwrite the key",
			tables: edit("order_items", func(t *sqldata.Table) { t.Anonymise = append(t.Anonymise, sqldata.Null("id")) }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[1]", "key"},
		},
		{
			name:   "a column is anonymised once",
			tables: edit("orders", func(t *sqldata.Table) { t.Anonymise = append(t.Anonymise, sqldata.Fixed("email", "x")) }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[3]", "twice"},
		},
		{
			name:   "a zero Set is rejected",
			tables: edit("orders", func(t *sqldata.Table) { t.Anonymise = append(t.Anonymise, sqldata.Set{}) }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[3]", "Null, Fixed, Derived or ErasedAt"},
		},
		{
			name:   "Derived needs a function",
			tables: edit("orders", func(t *sqldata.Table) { t.Anonymise[0] = sqldata.Derived("user_id", nil) }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Anonymise[0]"},
		},
		{
			name:   "export names are unique",
			tables: edit("orders", func(t *sqldata.Table) { t.Columns[1].As = "id" }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"Columns[1].As", `"id"`},
		},
		{
			name:   "a negative batch size is rejected",
			tables: edit("orders", func(t *sqldata.Table) { t.BatchSize = -1 }),
			want:   sqldata.ErrInvalidDeclaration, says: []string{"BatchSize"},
		},
		{
			name: "WithBatchSize must be positive",
			opts: []sqldata.Option{sqldata.WithBatchSize(0)},
			want: sqldata.ErrInvalidDeclaration, says: []string{"WithBatchSize"},
		},
		{
			name: "WithName must not be empty",
			opts: []sqldata.Option{sqldata.WithName(" ")},
			want: sqldata.ErrInvalidDeclaration, says: []string{"WithName"},
		},
		{
			name:   "no tables is rejected",
			tables: []sqldata.Table{},
			want:   sqldata.ErrInvalidDeclaration,
		},
	}
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		if err := exampleschema.Create(ctx, db, d); err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tables := tt.tables
				if tables == nil {
					tables = exampleschema.Tables()
				}
				s, err := sqldata.New(ctx, db, d, tables, tt.opts...)
				if !errors.Is(err, tt.want) {
					t.Fatalf("New error = %v, want %v", err, tt.want)
				}
				if s != nil {
					t.Errorf("New returned a store with its error")
				}
				for _, w := range tt.says {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %s", err, w)
					}
				}
			})
		}
		// Nothing was harmed by the names above.
		for _, table := range []string{"user_profiles", "orders", "order_items", "user_preferences", "activity_log"} {
			if err := sqldata.ValidateIdentifiers(ctx, db, d, table); err != nil {
				t.Errorf("table %s after the attempts: %v", table, err)
			}
		}
	})
}

func TestDeclarationErrorFields(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		if err := exampleschema.Create(ctx, db, d); err != nil {
			t.Fatal(err)
		}
		_, err := sqldata.New(ctx, db, d, edit("orders", func(t *sqldata.Table) { t.Columns[1].Name = "emial" }))
		var de *sqldata.DeclarationError
		if !errors.As(err, &de) {
			t.Fatalf("error %v is not a *DeclarationError", err)
		}
		if de.Table != "orders" || de.Field != "Columns[1].Name" {
			t.Errorf("DeclarationError{Table: %q, Field: %q}, want orders, Columns[1].Name", de.Table, de.Field)
		}
	})
}

// TestQuotedNames declares a table and columns whose names hold quotes,
// semicolons and spaces: quoted, they are plain names.
func TestQuotedNames(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		table := `odd"; DROP TABLE x; --`
		col := `user "id"; --`
		q := func(s string) string { return sqldata.QuoteIdent(d, s) }
		for _, s := range []string{
			`CREATE TABLE x (id INTEGER PRIMARY KEY)`,
			`CREATE TABLE ` + q(table) + ` (id INTEGER PRIMARY KEY, ` + q(col) + ` TEXT NOT NULL, note TEXT)`,
			`INSERT INTO ` + q(table) + ` (id, ` + q(col) + `, note) VALUES (1, 'user_a', 'a'), (2, 'user_b', 'b'), (3, 'user_a', 'c')`,
		} {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if err := sqldata.ValidateIdentifiers(ctx, db, d, table, col, "note"); err != nil {
			t.Fatalf("ValidateIdentifiers: %v", err)
		}
		if key, err := sqldata.RowKey(ctx, db, d, table); err != nil || key != "id" {
			t.Errorf("RowKey = %q, %v; want id", key, err)
		}
		s, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: table, UserColumn: col, Columns: []sqldata.Column{{Name: "note"}}}})
		if err != nil {
			t.Fatal(err)
		}
		var notes []any
		for rec, err := range s.Export(ctx, "user_a") {
			if err != nil {
				t.Fatal(err)
			}
			notes = append(notes, rec.Data["note"])
		}
		if diff := cmpDiff([]any{"a", "c"}, notes); diff != "" {
			t.Errorf("exported notes (-want +got):\n%s", diff)
		}
		er, err := s.Erase(ctx, "user_a")
		if err != nil || er.Count != 2 {
			t.Errorf("Erase = %+v, %v; want 2 rows", er, err)
		}
		if n := rowCount(t, db, q(table)); n != 1 {
			t.Errorf("%d rows left, want user_b's 1", n)
		}
		if n := rowCount(t, db, "x"); n != 0 {
			t.Errorf("table x: %d rows", n)
		}
	})
}

func TestValidateIdentifiers(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		if err := exampleschema.Create(ctx, db, d); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			table   string
			columns []string
			want    error
		}{
			{"activity_log", []string{"user_id", "created_at"}, nil},
			{"activity_logs", nil, sqldata.ErrUnknownTable},
			{"activity_log", []string{"created_at", "timestamp"}, sqldata.ErrUnknownColumn},
			{"activity_log; --", nil, sqldata.ErrUnknownTable},
			{"", nil, sqldata.ErrInvalidDeclaration},
			{"activity_log", []string{""}, sqldata.ErrInvalidDeclaration},
		}
		for _, tt := range tests {
			err := sqldata.ValidateIdentifiers(ctx, db, d, tt.table, tt.columns...)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("ValidateIdentifiers(%q, %q) = %v, want %v", tt.table, tt.columns, err, tt.want)
			}
		}
		if key, err := sqldata.RowKey(ctx, db, d, "activity_log"); err != nil || key != "id" {
			t.Errorf("RowKey(activity_log) = %q, %v; want id", key, err)
		}
	})
}

// TestKeys checks how a table's Key is settled when not declared.
func TestKeys(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db,
			`CREATE TABLE bare (owner TEXT NOT NULL, note TEXT)`,
			`CREATE TABLE pair (owner TEXT NOT NULL, name TEXT NOT NULL, note TEXT, PRIMARY KEY (owner, name))`,
			`INSERT INTO bare VALUES ('user_a', 'x'), ('user_b', 'y'), ('user_a', 'z')`,
			`INSERT INTO pair VALUES ('user_a', 'k1', 'x'), ('user_a', 'k2', 'y')`)

		// A table without a primary key: SQLite has its rowid, PostgreSQL
		// needs a declared Key.
		key, err := sqldata.RowKey(ctx, db, d, "bare")
		switch d {
		case sqlstore.SQLite:
			if err != nil || key != "rowid" {
				t.Errorf("RowKey(bare) = %q, %v; want rowid", key, err)
			}
			s, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "bare", UserColumn: "owner"}}, sqldata.WithBatchSize(1))
			if err != nil {
				t.Fatal(err)
			}
			if er, err := s.Erase(ctx, "user_a"); err != nil || er.Count != 2 {
				t.Errorf("Erase over rowid = %+v, %v; want 2 rows", er, err)
			}
		case sqlstore.Postgres:
			if !errors.Is(err, sqldata.ErrInvalidDeclaration) {
				t.Errorf("RowKey(bare) = %q, %v; want ErrInvalidDeclaration", key, err)
			}
			_, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "bare", UserColumn: "owner"}})
			if !errors.Is(err, sqldata.ErrInvalidDeclaration) || !strings.Contains(err.Error(), "Key") {
				t.Errorf("New over a table without a key: %v; want ErrInvalidDeclaration naming Key", err)
			}
		}

		// A composite primary key needs a declared Key; a declared Key that
		// is not unique still erases only the user's rows.
		if _, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "pair", UserColumn: "owner"}}); d == sqlstore.Postgres && !errors.Is(err, sqldata.ErrInvalidDeclaration) {
			t.Errorf("New over a composite key: %v; want ErrInvalidDeclaration", err)
		}
		s, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "pair", UserColumn: "owner", Key: "name"}})
		if err != nil {
			t.Fatal(err)
		}
		if er, err := s.Erase(ctx, "user_a"); err != nil || er.Count != 2 {
			t.Errorf("Erase over a declared Key = %+v, %v; want 2 rows", er, err)
		}
	})
}
