package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqldialect/sqlite"
)

// ErrUnknownDialect is returned (wrapped) by [New] and [Dialect.Validate]
// for a dialect other than [Postgres] or [SQLite]. It is
// [sqldialect.ErrUnknownDialect].
var ErrUnknownDialect = sqldialect.ErrUnknownDialect

// ErrNilDB is returned by [New] when the *sql.DB is nil.
var ErrNilDB = errors.New("sqlstore: db is nil")

// Store is a database handle that knows its dialect. It runs the embedded
// migrations ([Store.Migrate]) and hands out the domain stores built on the
// same database.
//
// A Store is safe for concurrent use; it holds no state besides the *sql.DB,
// which the caller owns and closes.
type Store struct {
	db      *sql.DB
	dialect Dialect
}

// New returns a Store over db, which must have been opened with the driver
// for d: "pgx" (package sqldialect/postgres) for [Postgres], "sqlite"
// ([OpenSQLite], package sqldialect/sqlite) for [SQLite]. New does no I/O; call [Store.Migrate] before first use.
//
// It fails with [ErrNilDB] for a nil db and with an error wrapping
// [ErrUnknownDialect] for any other dialect.
func New(db *sql.DB, d Dialect) (*Store, error) {
	if db == nil {
		return nil, ErrNilDB
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &Store{db: db, dialect: d}, nil
}

// DB returns the underlying database handle.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the dialect the Store was created with.
func (s *Store) Dialect() Dialect { return s.dialect }

// OpenSQLite opens (creating if missing) the SQLite database file at path
// with modernc.org/sqlite and the settings Steward's stores expect; it is
// [sqlite.Open], which documents the settings. The special path ":memory:"
// opens a private in-memory database on a pool of one connection.
//
// The caller closes the returned *sql.DB.
func OpenSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlstore: OpenSQLite: path is empty")
	}
	db, err := sqlite.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: OpenSQLite: %w", err)
	}
	return db, nil
}

// OpenPostgres opens a PostgreSQL connection pool through pgx's database/sql
// driver, by its driver name "pgx". sqlstore does not link pgx itself, so
// that applications on SQLite alone do not carry it: the program must
// import package github.com/stewardlabs/steward/sqldialect/postgres (whose
// Open is the better way in: it parses dsn at once) or
// github.com/jackc/pgx/v5/stdlib, or OpenPostgres fails saying so.
//
// dsn is either a URL ("postgres://user@host:5432/db?sslmode=disable") or
// keyword/value pairs ("host=... user=... dbname=..."). OpenPostgres does
// not connect; the first query does, and reports a malformed dsn (pgx
// removes any password from its errors). The caller closes the returned
// *sql.DB.
func OpenPostgres(dsn string) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("sqlstore: OpenPostgres: dsn is empty")
	}
	name := Postgres.DriverName()
	if !slices.Contains(sql.Drivers(), name) {
		return nil, fmt.Errorf("sqlstore: OpenPostgres: the %q driver is not linked into this program; import github.com/stewardlabs/steward/sqldialect/postgres and open with postgres.Open", name)
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: OpenPostgres: %w", err)
	}
	return db, nil
}
