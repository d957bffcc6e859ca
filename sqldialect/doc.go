// Package sqldialect is what Steward's SQL code needs to know about the
// two databases it supports, and nothing more: the Dialect names
// (Postgres, SQLite), how each writes placeholders (Rebind, Placeholder)
// and identifiers (Quote), and how each driver reports a violated
// constraint (IsUniqueViolation, IsForeignKeyViolation,
// IsNotNullViolation).
//
// It imports no database driver. Each driver comes with its own small
// package that opens a *sql.DB with the settings Steward expects:
//
//	import "github.com/stewardlabs/steward/sqldialect/sqlite"   // modernc.org/sqlite
//	db, err := sqlite.Open("app.db")
//
//	import "github.com/stewardlabs/steward/sqldialect/postgres" // pgx
//	db, err := postgres.Open(dsn)
//
// so an application that only uses SQLite links no PostgreSQL code, and
// one that only uses PostgreSQL links no SQLite. Packages sqlstore,
// privacy/sqldata and retention/sqltarget take a Dialect;
// sqlstore.Dialect, sqlstore.SQLite and sqlstore.Postgres are the same
// type and values under their older names.
//
// The error classifiers find the driver's error in the chain by its
// methods (SQLState() string for PostgreSQL drivers such as pgx's
// *pgconn.PgError, Code() int for modernc.org/sqlite's *sqlite.Error),
// so they work without importing either driver.
//
// # Errors
//
// Dialect.Validate returns an error wrapping ErrUnknownDialect for a
// dialect other than Postgres and SQLite. The classifiers return false
// for nil and for errors from other drivers.
package sqldialect
