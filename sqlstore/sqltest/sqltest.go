// Package sqltest opens fresh, empty databases for tests of code built on
// package sqlstore, one per supported dialect.
//
//	func TestThing(t *testing.T) {
//		sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
//			store, err := sqlstore.New(db, d)
//			...
//			if err := store.Migrate(t.Context()); err != nil { t.Fatal(err) }
//		})
//	}
//
// SQLite always runs, on a file in t.TempDir() opened with
// [sqlstore.OpenSQLite]. PostgreSQL runs when the environment variable
// STEWARD_TEST_POSTGRES_DSN holds a connection string (URL or keyword/value
// form), for example
//
//	STEWARD_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...
//
// and is skipped otherwise. Each PostgreSQL test gets its own schema named
// steward_test_<random hex>, created for it, set as the search_path of every
// connection of the returned *sql.DB and dropped (CASCADE) when the test
// ends, so tests can run in parallel against one database. The role in the
// DSN needs the right to create schemas in that database.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward/sqlstore"
)

// PostgresDSNEnv is the environment variable that enables PostgreSQL tests.
const PostgresDSNEnv = "STEWARD_TEST_POSTGRES_DSN"

// Each runs f as one subtest per dialect, named "sqlite" and "postgres",
// each with a fresh, empty (unmigrated) database that is closed and removed
// when the subtest ends. The PostgreSQL subtest is skipped, with a message
// naming the variable, when STEWARD_TEST_POSTGRES_DSN is unset.
func Each(t *testing.T, f func(t *testing.T, db *sql.DB, d sqlstore.Dialect)) {
	t.Helper()
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			f(t, Open(t, d), d)
		})
	}
}

// Open returns a fresh, empty database of dialect d, closed and removed when
// t ends. For [sqlstore.Postgres] it skips t when STEWARD_TEST_POSTGRES_DSN
// is unset. It fails t on any error, and on an unknown dialect.
func Open(t testing.TB, d sqlstore.Dialect) *sql.DB {
	t.Helper()
	switch d {
	case sqlstore.SQLite:
		return openSQLite(t)
	case sqlstore.Postgres:
		return openPostgres(t)
	}
	t.Fatalf("sqltest.Open: %v", d.Validate())
	return nil
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "steward.db"))
	if err != nil {
		t.Fatalf("sqltest: opening SQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a connection string (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them", PostgresDSNEnv)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("sqltest: parsing %s: %v", PostgresDSNEnv, err)
	}
	schema := "steward_test_" + randomHex(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := stdlib.OpenDB(*cfg)
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("sqltest: creating schema %s (is PostgreSQL at %s reachable?): %v", schema, PostgresDSNEnv, err)
	}

	// Every connection of the test's pool uses the new schema, whatever
	// form the DSN took: the run-time parameter is sent at connect time.
	scfg := cfg.Copy()
	scfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*scfg)
	t.Cleanup(func() {
		_ = db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin := stdlib.OpenDB(*cfg)
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("sqltest: dropping schema %s: %v", schema, err)
		}
	})
	return db
}

func randomHex(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("sqltest: %v", err)
	}
	return hex.EncodeToString(b[:])
}
