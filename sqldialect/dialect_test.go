package sqldialect_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqldialect"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		d    sqldialect.Dialect
		want error
	}{
		{sqldialect.Postgres, nil},
		{sqldialect.SQLite, nil},
		{"", sqldialect.ErrUnknownDialect},
		{"mysql", sqldialect.ErrUnknownDialect},
		{"SQLite", sqldialect.ErrUnknownDialect},
	}
	for _, tt := range tests {
		if err := tt.d.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Dialect(%q).Validate() = %v, want %v", tt.d, err, tt.want)
		}
	}
}

func TestNamesAndPlaceholders(t *testing.T) {
	type row struct{ Driver, Placeholder, Quoted, String string }
	got := map[sqldialect.Dialect]row{}
	for _, d := range []sqldialect.Dialect{sqldialect.Postgres, sqldialect.SQLite, "mysql"} {
		got[d] = row{d.DriverName(), d.Placeholder(3), d.Quote(`we"ird name`), d.String()}
	}
	want := map[sqldialect.Dialect]row{
		sqldialect.Postgres: {"pgx", "$3", `"we""ird name"`, "postgres"},
		sqldialect.SQLite:   {"sqlite", "?", `"we""ird name"`, "sqlite"},
		"mysql":             {"", "?", `"we""ird name"`, "mysql"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, postgres string
	}{
		{"no placeholders", "SELECT 1", "SELECT 1"},
		{"one", "SELECT * FROM t WHERE a = ?", "SELECT * FROM t WHERE a = $1"},
		{"ten and more", "?,?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
		{"inside string literal", "SELECT '?' , ?", "SELECT '?' , $1"},
		{"escaped quote in literal", "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
		{"quoted identifier", `SELECT "a?b" FROM t WHERE x = ?`, `SELECT "a?b" FROM t WHERE x = $1`},
		{"line comment", "SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"block comment", "SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		{"unterminated literal", "SELECT ?, 'abc?", "SELECT $1, 'abc?"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.postgres, sqldialect.Postgres.Rebind(tt.in)); diff != "" {
				t.Errorf("Postgres.Rebind(%q) (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.in, sqldialect.SQLite.Rebind(tt.in)); diff != "" {
				t.Errorf("SQLite.Rebind(%q) changed the query (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
