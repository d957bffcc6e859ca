// Package sqlite opens SQLite databases through modernc.org/sqlite (pure
// Go, no cgo) with the settings Steward's stores expect. Importing it
// links that driver and nothing of PostgreSQL's.
//
//	db, err := sqlite.Open("app.db")
//	store, err := sqlstore.New(db, sqlite.Dialect)
//
// # Errors
//
// Open fails for an empty path and wraps the driver's error for a DSN it
// refuses; it does no I/O, so a file that cannot be created is reported
// by the first query.
package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/stewardlabs/steward/sqldialect"
)

// Dialect is the dialect of the databases Open returns.
const Dialect = sqldialect.SQLite

// Params are the DSN parameters Open sets on a database file; see Open.
const Params = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// Open opens (creating if missing) the SQLite database file at path with
// modernc.org/sqlite and the settings Steward's stores expect. It is the
// same as sql.Open("sqlite", dsn) with
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
func Open(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: Open: path is empty")
	}
	if path == ":memory:" {
		db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("sqlite: Open: %w", err)
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
	db, err := sql.Open("sqlite", "file:"+esc+"?"+Params)
	if err != nil {
		return nil, fmt.Errorf("sqlite: Open: %w", err)
	}
	return db, nil
}
