package sqlite_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqldialect/sqlite"
)

func TestOpenSettings(t *testing.T) {
	for _, name := range []string{"plain.db", "with space.db", "what?.db", "hash#.db", "per%20cent.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			db, err := sqlite.Open(path)
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
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database file not at %q: %v", path, err)
			}
		})
	}
}

func TestOpenMemoryAndEmptyPath(t *testing.T) {
	db, err := sqlite.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Errorf("the in-memory table is not seen by the next query: %v", err)
	}
	if got := db.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", got)
	}
	if _, err := sqlite.Open(""); err == nil || !strings.Contains(err.Error(), "path is empty") {
		t.Errorf("Open(\"\") = %v, want an error saying the path is empty", err)
	}
}
