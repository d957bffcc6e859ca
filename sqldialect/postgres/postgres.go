// Package postgres opens PostgreSQL connection pools through pgx's
// database/sql driver (github.com/jackc/pgx/v5/stdlib). Only programs
// that import it, directly or through a package that does, link pgx.
//
//	db, err := postgres.Open("postgres://app@127.0.0.1:5432/app?sslmode=disable")
//	store, err := sqlstore.New(db, postgres.Dialect)
//
// # Errors
//
// Open fails for an empty DSN and wraps pgx's parse error for a malformed
// one (pgx removes any password from it); it does not connect, so an
// unreachable server is reported by the first query.
package postgres

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" database/sql driver

	"github.com/stewardlabs/steward/sqldialect"
)

// Dialect is the dialect of the databases Open returns.
const Dialect = sqldialect.Postgres

// Open opens a PostgreSQL connection pool through pgx's database/sql
// driver. dsn is either a URL ("postgres://user@host:5432/db?sslmode=disable")
// or keyword/value pairs ("host=... user=... dbname=..."); see pgx.ParseConfig.
// Run-time parameters in the DSN, such as search_path, are sent on each new
// connection.
//
// Open parses dsn but does not connect; the first query does. The caller
// closes the returned *sql.DB.
func Open(dsn string) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("postgres: Open: dsn is empty")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts any password from its parse errors.
		return nil, fmt.Errorf("postgres: Open: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}
