package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"           // registers the "sqlite" driver
)

// ErrUnknownDialect is returned (wrapped) by [New] and [Dialect.Validate]
// for a dialect other than [Postgres] or [SQLite].
var ErrUnknownDialect = errors.New("sqlstore: unknown dialect")

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
// for d: "pgx" ([OpenPostgres]) for [Postgres], "sqlite" ([OpenSQLite]) for
// [SQLite]. New does no I/O; call [Store.Migrate] before first use.
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

// OpenSQLite opens (creating if missing) the SQLite database file at path with
// modernc.org/sqlite and the settings Steward's stores expect. It is the same
// as sql.Open("sqlite", dsn) with
//
//	file:<path>?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate
//
// which means:
//   - busy_timeout(10000): a writer waits up to 10 s for another connection's
//     write lock instead of failing at once with "database is locked".
//   - journal_mode(WAL): readers do not block the writer nor the writer readers.
//   - synchronous(NORMAL): the usual setting with WAL; durable across
//     application crashes, may lose the last commits on power loss.
//   - foreign_keys(1): SQLite leaves FOREIGN KEY constraints off unless asked.
//   - _txlock=immediate: read-write transactions start with BEGIN IMMEDIATE,
//     taking the write lock up front (waiting under busy_timeout). A deferred
//     transaction that reads and then writes can fail with SQLITE_BUSY at once,
//     without waiting, when another connection wrote in between.
//
// The pool is left with several connections, so readers run in parallel and
// writers queue on SQLite's lock; many goroutines writing at once succeed.
// If you open SQLite yourself, use the same parameters.
//
// The special path ":memory:" opens a private in-memory database; since each
// connection to ":memory:" would see its own empty database, the pool is then
// limited to one connection (a query issued while rows from another are still
// open on the same *sql.DB will then wait forever: close rows first).
//
// The caller closes the returned *sql.DB.
func OpenSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlstore: OpenSQLite: path is empty")
	}
	const params = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	if path == ":memory:" {
		db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("sqlstore: OpenSQLite: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		return db, nil
	}
	// SQLite URI file names treat ?, # and % specially; escape them so any
	// path works.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+esc+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: OpenSQLite: %w", err)
	}
	return db, nil
}

// OpenPostgres opens a PostgreSQL connection pool through pgx's database/sql
// driver. dsn is either a URL ("postgres://user@host:5432/db?sslmode=disable")
// or keyword/value pairs ("host=... user=... dbname=..."); see pgx.ParseConfig.
// Run-time parameters in the DSN, such as search_path, are sent on each new
// connection.
//
// OpenPostgres parses dsn but does not connect; the first query does. The
// caller closes the returned *sql.DB.
func OpenPostgres(dsn string) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("sqlstore: OpenPostgres: dsn is empty")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts any password from its parse errors.
		return nil, fmt.Errorf("sqlstore: OpenPostgres: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}
