package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
)

// migrationFiles holds migrations/<dialect>/NNNN_name.sql.
//
//go:embed migrations
var migrationFiles embed.FS

// migrationsTable records which migrations have run.
const migrationsTable = "steward_schema_migrations"

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// migration is one embedded migration file.
type migration struct {
	version int
	name    string // file name, e.g. "0001_base.sql"
	file    string // path in the embedded FS, e.g. "migrations/sqlite/0001_base.sql"
	sql     string
}

// MigrationError reports a migration that failed to apply. Everything that
// migration did has been rolled back; migrations before it stay applied.
type MigrationError struct {
	Version int    // the migration's number, e.g. 2
	File    string // its path, e.g. "migrations/sqlite/0002_audit.sql"
	Err     error  // what went wrong
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("sqlstore: migration %s: %v", e.File, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// loadMigrations reads the migrations for dialect d from fsys (laid out as
// migrations/<dialect>/NNNN_name.sql), checks their names and returns them
// in version order. A badly named file or two files with one number is an
// error; gaps in the numbering are allowed here (see checkMigrationSequence).
func loadMigrations(fsys fs.FS, d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading %s: %w", dir, err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		file := path.Join(dir, e.Name())
		if e.IsDir() {
			return nil, fmt.Errorf("sqlstore: %s: unexpected directory among migrations", file)
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: %s: migration file name must match %s", file, migrationName)
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("sqlstore: %s: migration numbers start at 0001", file)
		}
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("sqlstore: %s and %s: two migrations numbered %04d", prev, file, v)
		}
		seen[v] = file
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: reading %s: %w", file, err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), file: file, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// checkMigrationSequence reports an error unless ms (sorted) is numbered
// 1, 2, 3, ... without gaps.
func checkMigrationSequence(ms []migration) error {
	for i, m := range ms {
		if m.version != i+1 {
			return fmt.Errorf("sqlstore: %s: expected migration number %04d (no gaps)", m.file, i+1)
		}
	}
	return nil
}

// Migrate brings the database schema up to date: it applies, in number
// order, each embedded migration for the Store's dialect that has not run
// yet. Each migration runs in its own transaction together with its row in
// steward_schema_migrations, so a failing migration leaves nothing behind and
// the ones before it stay applied. Running Migrate again is a no-op.
//
// Several processes may call Migrate on one database at once: PostgreSQL
// runs each migration under a transaction-scoped advisory lock keyed on the
// current schema, SQLite under BEGIN IMMEDIATE; whoever comes second finds
// the work done.
//
// Versions recorded in the database that this build does not know (written
// by a newer build) are left alone, so an older build keeps running during a
// rolling deploy; [Store.Version] reports the highest recorded version.
//
// A failing migration is returned as a *[MigrationError] naming the file; a
// version recorded under a different file name than the embedded one is an
// error too (two builds disagree on what that number means).
func (s *Store) Migrate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: Migrate: %w", err)
	}
	return s.migrateFS(ctx, migrationFiles)
}

// migrateFS is Migrate with the migrations read from fsys.
func (s *Store) migrateFS(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys, s.dialect)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// Version returns the highest migration version recorded in the database,
// or 0 when none has run. It only reads.
func (s *Store) Version(ctx context.Context) (int, error) {
	var exists bool
	var err error
	switch s.dialect {
	case Postgres:
		err = s.db.QueryRowContext(ctx, "SELECT to_regclass('"+migrationsTable+"') IS NOT NULL").Scan(&exists)
	default:
		err = s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '"+migrationsTable+"')").Scan(&exists)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: Version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+migrationsTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlstore: Version: %w", err)
	}
	return v, nil
}

// applyMigration runs m unless already recorded, in one locked transaction.
func (s *Store) applyMigration(ctx context.Context, m migration) error {
	err := s.migrationTx(ctx, func(ctx context.Context, q migrationQuerier) error {
		var name string
		err := q.QueryRowContext(ctx, s.dialect.Rebind("SELECT name FROM "+migrationsTable+" WHERE version = ?"), m.version).Scan(&name)
		switch {
		case err == nil:
			if name != m.name {
				return fmt.Errorf("database records version %04d as %q, this build has %q", m.version, name, m.name)
			}
			return nil // already applied
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("reading %s: %w", migrationsTable, err)
		}
		if _, err := q.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, s.dialect.Rebind("INSERT INTO "+migrationsTable+" (version, name) VALUES (?, ?)"), m.version, m.name); err != nil {
			return fmt.Errorf("recording in %s: %w", migrationsTable, err)
		}
		return nil
	})
	if err != nil {
		return &MigrationError{Version: m.version, File: m.file, Err: err}
	}
	return nil
}

// migrationQuerier is what migration steps need from a transaction or conn.
type migrationQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// migrationTx runs f in a transaction that holds the migration lock and in
// which steward_schema_migrations exists, and commits if f returns nil.
func (s *Store) migrationTx(ctx context.Context, f func(context.Context, migrationQuerier) error) error {
	switch s.dialect {
	case Postgres:
		return s.postgresMigrationTx(ctx, f)
	case SQLite:
		return s.sqliteMigrationTx(ctx, f)
	}
	return s.dialect.Validate()
}

func (s *Store) postgresMigrationTx(ctx context.Context, f func(context.Context, migrationQuerier) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The lock is per schema, so separate schemas in one database (such as
	// parallel tests) migrate independently. It is released at commit or
	// rollback.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(COALESCE(current_schema(), '') || '.`+migrationsTable+`'))`); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("creating %s: %w", migrationsTable, err)
	}
	if err := f(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) sqliteMigrationTx(ctx context.Context, f func(context.Context, migrationQuerier) error) (err error) {
	// BEGIN IMMEDIATE takes the write lock up front (waiting under the
	// connection's busy_timeout), whatever _txlock the DSN asked for, so two
	// migrators cannot both read "not applied" and then race to write. It is
	// issued by hand on one dedicated connection, as database/sql's BeginTx
	// cannot ask for it.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		// Roll back even when ctx is done; if even that fails, the
		// connection is in an unknown state: drop it from the pool.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+migrationsTable+` (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`); err != nil {
		return fmt.Errorf("creating %s: %w", migrationsTable, err)
	}
	if err := f(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
