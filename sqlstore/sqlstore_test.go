package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func migrateTestStore(t *testing.T, db *sql.DB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func migrateTestVersions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM steward_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("reading steward_schema_migrations: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrate(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := migrateTestStore(t, db, d)
		ctx := t.Context()
		if v, err := s.Version(ctx); err != nil || v != 0 {
			t.Fatalf("Version before Migrate = %d, %v; want 0, nil", v, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		first := migrateTestVersions(t, db)
		if len(first) == 0 || first[0] != 1 {
			t.Fatalf("applied versions after Migrate = %v, want 1 first", first)
		}
		// The base table exists and works, with placeholders rebound.
		if _, err := db.ExecContext(ctx, d.Rebind("INSERT INTO steward_meta (key, value) VALUES (?, ?)"), "k", "v"); err != nil {
			t.Fatalf("insert into steward_meta: %v", err)
		}

		t.Run("running Migrate twice is a no-op", func(t *testing.T) {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if diff := cmp.Diff(first, migrateTestVersions(t, db)); diff != "" {
				t.Errorf("applied versions changed (-first +second):\n%s", diff)
			}
			v, err := s.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v != first[len(first)-1] {
				t.Errorf("Version = %d, want %d", v, first[len(first)-1])
			}
		})
	})
}

func TestMigrateConcurrent(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				// Separate Stores over one pool, as separate processes would be.
				s, err := sqlstore.New(db, d)
				if err != nil {
					errs[i] = err
					return
				}
				errs[i] = s.Migrate(t.Context())
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate #%d: %v", i, err)
			}
		}
		vs := migrateTestVersions(t, db)
		seen := map[int]bool{}
		for _, v := range vs {
			if seen[v] {
				t.Errorf("version %d recorded twice: %v", v, vs)
			}
			seen[v] = true
		}
	})
}

func TestMigrateCancelledContext(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := migrateTestStore(t, db, d)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.Migrate(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Migrate with cancelled context = %v, want context.Canceled", err)
		}
		// Nothing was applied; a live context then succeeds.
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate after cancelled attempt: %v", err)
		}
	})
}

func TestNewBadInput(t *testing.T) {
	db := sqltest.Open(t, sqlstore.SQLite)
	tests := []struct {
		name string
		db   *sql.DB
		d    sqlstore.Dialect
		want error
	}{
		{"nil db", nil, sqlstore.SQLite, sqlstore.ErrNilDB},
		{"empty dialect", db, "", sqlstore.ErrUnknownDialect},
		{"unknown dialect", db, "mysql", sqlstore.ErrUnknownDialect},
		{"dialect in capitals", db, "SQLite", sqlstore.ErrUnknownDialect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlstore.New(tt.db, tt.d)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, %v; want error %v", s, err, tt.want)
			}
			if s != nil {
				t.Errorf("New returned a Store with an error")
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		s, err := sqlstore.New(db, sqlstore.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		if s.DB() != db || s.Dialect() != sqlstore.SQLite {
			t.Errorf("DB, Dialect = %p, %q; want %p, %q", s.DB(), s.Dialect(), db, sqlstore.SQLite)
		}
	})
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, postgres string
	}{
		{"no placeholders", "SELECT 1", "SELECT 1"},
		{"one", "SELECT * FROM t WHERE a = ?", "SELECT * FROM t WHERE a = $1"},
		{"several", "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)"},
		{"ten and more", "?,?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
		{"inside string literal", "SELECT '?' , ?", "SELECT '?' , $1"},
		{"escaped quote in literal", "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
		{"quoted identifier", `SELECT "a?b" FROM t WHERE x = ?`, `SELECT "a?b" FROM t WHERE x = $1`},
		{"line comment", "SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"block comment", "SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		{"unterminated literal", "SELECT ?, 'abc?", "SELECT $1, 'abc?"},
		{"unterminated comment", "SELECT ? /* ?", "SELECT $1 /* ?"},
		{"trailing line comment", "SELECT ? -- ?", "SELECT $1 -- ?"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.postgres, sqlstore.Postgres.Rebind(tt.in)); diff != "" {
				t.Errorf("Postgres.Rebind(%q) (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.in, sqlstore.SQLite.Rebind(tt.in)); diff != "" {
				t.Errorf("SQLite.Rebind(%q) changed the query (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
