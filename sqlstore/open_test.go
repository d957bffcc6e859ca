package sqlstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqlstore"
)

func TestOpenSQLiteSettings(t *testing.T) {
	for _, name := range []string{"plain.db", "with space.db", "what?.db", "hash#.db", "per%20cent.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			db, err := sqlstore.OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got := map[string]string{}
			for _, p := range []string{"journal_mode", "foreign_keys", "busy_timeout", "synchronous"} {
				var v string
				if err := db.QueryRowContext(t.Context(), "PRAGMA "+p).Scan(&v); err != nil {
					t.Fatalf("PRAGMA %s: %v", p, err)
				}
				got[p] = v
			}
			want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "synchronous": "1"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pragmas (-want +got):\n%s", diff)
			}
			// The file is at exactly the path given.
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database file not at %q: %v", path, err)
			}
		})
	}
}

func TestOpenSQLiteMemory(t *testing.T) {
	db, err := sqlstore.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := migrateTestStore(t, db, sqlstore.SQLite)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate in memory: %v", err)
	}
	if v, err := s.Version(t.Context()); err != nil || v < 1 {
		t.Errorf("Version = %d, %v; want at least 1", v, err)
	}
}

func TestOpenBadInput(t *testing.T) {
	if _, err := sqlstore.OpenSQLite(""); err == nil || !strings.Contains(err.Error(), "path is empty") {
		t.Errorf("OpenSQLite(\"\") = %v, want an error saying the path is empty", err)
	}
	if _, err := sqlstore.OpenPostgres(""); err == nil || !strings.Contains(err.Error(), "dsn is empty") {
		t.Errorf("OpenPostgres(\"\") = %v, want an error saying the dsn is empty", err)
	}
	// OpenPostgres opens by driver name (the test binary links pgx through
	// sqltest), so a malformed DSN is reported by the first use.
	db, err := sqlstore.OpenPostgres("postgres://user:s3cret@host:notaport/db")
	if err == nil {
		defer db.Close()
		err = db.PingContext(t.Context())
	}
	if err == nil {
		t.Fatal("OpenPostgres with a malformed DSN succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("OpenPostgres error reveals the password: %v", err)
	}
}
