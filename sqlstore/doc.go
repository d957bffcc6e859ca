// Package sqlstore keeps Steward's records in PostgreSQL or SQLite through
// database/sql: one [Store] per database, embedded versioned migrations, and
// the SQL implementations of the audit, privacy-request, consent and
// retention-hold stores built on it.
//
//	db, err := sqlstore.OpenSQLite("steward.db") // or postgres.Open(dsn), package sqldialect/postgres
//	store, err := sqlstore.New(db, sqlstore.SQLite) // or sqlstore.Postgres
//	err = store.Migrate(ctx)
//
// # Drivers
//
// sqlstore imports no PostgreSQL code: the dialect (placeholders,
// quoting, the drivers' constraint errors) lives in package sqldialect,
// and each driver comes with its own opening package,
// sqldialect/sqlite (modernc.org/sqlite, pure Go, driver name "sqlite")
// and sqldialect/postgres (github.com/jackc/pgx/v5/stdlib, driver name
// "pgx"). An application on SQLite alone therefore links no pgx.
// [OpenSQLite] is sqlite.Open; [OpenPostgres] opens by the driver name
// "pgx" and needs the program to import sqldialect/postgres (use its
// Open) or pgx's stdlib. Any *sql.DB opened with the matching driver
// works with [New]. For SQLite use WAL, a busy timeout and BEGIN
// IMMEDIATE for read-write transactions, as sqlite.Open documents, or
// concurrent writers fail with "database is locked".
//
// # Migrations
//
// The schema lives in embedded files migrations/<dialect>/NNNN_name.sql
// (dialect is "postgres" or "sqlite"). [Store.Migrate] applies those not yet
// recorded in the table steward_schema_migrations, in number order, each in
// its own transaction together with its record, under a lock so that
// several processes may migrate one database at once. Running it again does
// nothing. Every table Steward creates is named steward_*.
//
// # Placeholders
//
// Queries in this package are written with ? placeholders and passed
// through [Dialect.Rebind], which turns them into $1, $2, ... for
// PostgreSQL.
//
// # Errors
//
// [New] returns [ErrNilDB] for a nil *sql.DB and an error wrapping
// [ErrUnknownDialect] for a dialect other than [Postgres] and [SQLite].
// [OpenPostgres] fails, naming the package to import, when no "pgx"
// driver is linked.
// [Store.Migrate] returns a *[MigrationError] (use errors.As) naming the
// migration file that failed; it wraps the driver's error, and a cancelled
// or expired context is reported as context.Canceled or
// context.DeadlineExceeded (use errors.Is). A failed migration leaves
// nothing of itself behind.
package sqlstore
