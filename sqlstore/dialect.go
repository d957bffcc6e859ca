package sqlstore

import "github.com/stewardlabs/steward/sqldialect"

// Dialect names the SQL dialect a [Store] speaks. It decides which embedded
// migrations run and how placeholders are written. It is
// [sqldialect.Dialect]: values of either name are interchangeable.
type Dialect = sqldialect.Dialect

// The supported dialects, the same values as [sqldialect.Postgres] and
// [sqldialect.SQLite].
const (
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib
	// (driver name "pgx", opened by package sqldialect/postgres).
	// Placeholders are $1, $2, ...
	Postgres = sqldialect.Postgres
	// SQLite is SQLite through modernc.org/sqlite (driver name "sqlite"),
	// pure Go, no cgo. Placeholders are ?.
	SQLite = sqldialect.SQLite
)
