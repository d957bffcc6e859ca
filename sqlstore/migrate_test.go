package sqlstore_test

import (
	"database/sql"
	"errors"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestEmbeddedMigrations checks the files under migrations/: well named,
// numbered 0001, 0002, ... without gaps or duplicates, and the same numbers
// and names for every dialect.
func TestEmbeddedMigrations(t *testing.T) {
	names := map[sqlstore.Dialect][]string{}
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite} {
		ms, err := sqlstore.LoadMigrations(sqlstore.MigrationFiles, d)
		if err != nil {
			t.Fatalf("%s migrations: %v", d, err)
		}
		if err := sqlstore.CheckMigrationSequence(sqlstore.MigrationFiles, d); err != nil {
			t.Errorf("%s migrations: %v", d, err)
		}
		for _, m := range ms {
			names[d] = append(names[d], path.Base(m.File))
		}
	}
	if diff := cmp.Diff(names[sqlstore.Postgres], names[sqlstore.SQLite]); diff != "" {
		t.Errorf("every migration must exist for both dialects under the same name (-postgres +sqlite):\n%s", diff)
	}
}

func TestLoadMigrationsRejects(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		wantErr string // substring; "" means no error
		gapErr  bool   // CheckMigrationSequence must fail
	}{
		{"good", fstest.MapFS{
			"migrations/sqlite/0001_base.sql":  file("SELECT 1"),
			"migrations/sqlite/0002_audit.sql": file("SELECT 1"),
		}, "", false},
		{"gap", fstest.MapFS{
			"migrations/sqlite/0001_base.sql":    file("SELECT 1"),
			"migrations/sqlite/0003_consent.sql": file("SELECT 1"),
		}, "", true},
		{"not starting at 0001", fstest.MapFS{
			"migrations/sqlite/0002_audit.sql": file("SELECT 1"),
		}, "", true},
		{"duplicate number", fstest.MapFS{
			"migrations/sqlite/0001_base.sql":  file("SELECT 1"),
			"migrations/sqlite/0002_audit.sql": file("SELECT 1"),
			"migrations/sqlite/0002_other.sql": file("SELECT 1"),
		}, "two migrations numbered 0002", false},
		{"three digits", fstest.MapFS{"migrations/sqlite/001_base.sql": file("")}, "001_base.sql: migration file name must match", false},
		{"capital letters", fstest.MapFS{"migrations/sqlite/0001_Base.sql": file("")}, "0001_Base.sql: migration file name must match", false},
		{"dash", fstest.MapFS{"migrations/sqlite/0001_base-x.sql": file("")}, "migration file name must match", false},
		{"no name", fstest.MapFS{"migrations/sqlite/0001.sql": file("")}, "migration file name must match", false},
		{"other extension", fstest.MapFS{"migrations/sqlite/0001_base.txt": file("")}, "migration file name must match", false},
		{"number zero", fstest.MapFS{"migrations/sqlite/0000_base.sql": file("")}, "start at 0001", false},
		{"directory", fstest.MapFS{"migrations/sqlite/0001_base.sql/x": file("")}, "unexpected directory", false},
		{"no directory for dialect", fstest.MapFS{"migrations/postgres/0001_base.sql": file("")}, "migrations/sqlite", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlstore.LoadMigrations(tt.files, sqlstore.SQLite)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LoadMigrations: unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("LoadMigrations error = %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr != "":
				return
			}
			err = sqlstore.CheckMigrationSequence(tt.files, sqlstore.SQLite)
			if (err != nil) != tt.gapErr {
				t.Errorf("CheckMigrationSequence = %v, want error: %v", err, tt.gapErr)
			}
		})
	}
}

func migrateTestTableExists(t *testing.T, db *sql.DB, d sqlstore.Dialect, name string) bool {
	t.Helper()
	var q string
	if d == sqlstore.Postgres {
		q = "SELECT to_regclass($1) IS NOT NULL"
	} else {
		q = "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)"
	}
	var ok bool
	if err := db.QueryRowContext(t.Context(), q, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMigrateBadMigrationRollsBack(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := migrateTestStore(t, db, d)
		dir := "migrations/" + string(d) + "/"
		fsys := fstest.MapFS{
			dir + "0001_good.sql": {Data: []byte("CREATE TABLE steward_good (id INTEGER PRIMARY KEY);\nINSERT INTO steward_good (id) VALUES (1);")},
			// The first statement succeeds, the second fails: the
			// whole file must be undone.
			dir + "0002_bad.sql":   {Data: []byte("CREATE TABLE steward_half (id INTEGER PRIMARY KEY);\nCREATE TABLE steward_half (id INTEGER PRIMARY KEY);")},
			dir + "0003_later.sql": {Data: []byte("CREATE TABLE steward_later (id INTEGER PRIMARY KEY);")},
		}
		err := sqlstore.MigrateFS(t.Context(), s, fsys)
		var me *sqlstore.MigrationError
		if !errors.As(err, &me) {
			t.Fatalf("MigrateFS = %v, want a *MigrationError", err)
		}
		if diff := cmp.Diff(dir+"0002_bad.sql", me.File); diff != "" {
			t.Errorf("MigrationError.File (-want +got):\n%s", diff)
		}
		if me.Version != 2 || !strings.Contains(err.Error(), dir+"0002_bad.sql") {
			t.Errorf("error = %q (version %d), want it to name version 2 and the file", err, me.Version)
		}
		if diff := cmp.Diff([]int{1}, migrateTestVersions(t, db)); diff != "" {
			t.Errorf("applied versions (-want +got):\n%s", diff)
		}
		for table, want := range map[string]bool{"steward_good": true, "steward_half": false, "steward_later": false} {
			if got := migrateTestTableExists(t, db, d, table); got != want {
				t.Errorf("table %s exists = %v, want %v", table, got, want)
			}
		}
		// Fixing the file lets Migrate carry on from where it stopped.
		fsys[dir+"0002_bad.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE steward_half (id INTEGER PRIMARY KEY);")}
		if err := sqlstore.MigrateFS(t.Context(), s, fsys); err != nil {
			t.Fatalf("MigrateFS after fix: %v", err)
		}
		if diff := cmp.Diff([]int{1, 2, 3}, migrateTestVersions(t, db)); diff != "" {
			t.Errorf("applied versions after fix (-want +got):\n%s", diff)
		}
	})
}

func TestMigrateNewerDatabase(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := migrateTestStore(t, db, d)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		// A newer build recorded a migration this one does not have.
		if _, err := db.ExecContext(t.Context(), d.Rebind("INSERT INTO steward_schema_migrations (version, name) VALUES (?, ?)"), 9999, "9999_future.sql"); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Errorf("Migrate on a database migrated by a newer build = %v, want nil", err)
		}
		if v, err := s.Version(t.Context()); err != nil || v != 9999 {
			t.Errorf("Version = %d, %v; want 9999, nil", v, err)
		}
	})
}

func TestMigrateNameMismatch(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := migrateTestStore(t, db, d)
		dir := "migrations/" + string(d) + "/"
		if err := sqlstore.MigrateFS(t.Context(), s, fstest.MapFS{dir + "0001_one.sql": {Data: []byte("SELECT 1")}}); err != nil {
			t.Fatal(err)
		}
		err := sqlstore.MigrateFS(t.Context(), s, fstest.MapFS{dir + "0001_other.sql": {Data: []byte("SELECT 1")}})
		var me *sqlstore.MigrationError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), `"0001_one.sql"`) {
			t.Errorf("MigrateFS with a renamed 0001 = %v, want a *MigrationError naming both files", err)
		}
	})
}

// TestSQLiteConcurrentWriters shows that a database from OpenSQLite takes
// many concurrent writers, in transactions and without, with no "database
// is locked" error.
func TestSQLiteConcurrentWriters(t *testing.T) {
	db := sqltest.Open(t, sqlstore.SQLite)
	s := migrateTestStore(t, db, sqlstore.SQLite)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := string(rune('a'+w)) + strings.Repeat("x", i)
				if i%2 == 0 {
					_, err := db.ExecContext(ctx, "INSERT INTO steward_meta (key, value) VALUES (?, ?)", key, "v")
					errs <- err
					continue
				}
				// Read, then write, in one transaction: the pattern that
				// fails at once under deferred transactions.
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					continue
				}
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM steward_meta").Scan(&n); err != nil {
					_ = tx.Rollback()
					errs <- err
					continue
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO steward_meta (key, value) VALUES (?, ?)", key, "v"); err != nil {
					_ = tx.Rollback()
					errs <- err
					continue
				}
				errs <- tx.Commit()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM steward_meta").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != writers*each {
		t.Errorf("rows = %d, want %d", n, writers*each)
	}
}
