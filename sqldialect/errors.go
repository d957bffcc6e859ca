package sqldialect

import "errors"

// SQLite's extended result codes for constraint failures
// (https://sqlite.org/rescode.html), as modernc.org/sqlite reports them.
const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintNotNull    = 1299
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// PostgreSQL's SQLSTATE codes for the same failures.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgNotNullViolation    = "23502"
)

// sqlState is what pgx's *pgconn.PgError (and other PostgreSQL drivers'
// errors) offer.
type sqlState interface{ SQLState() string }

// resultCode is what modernc.org/sqlite's *sqlite.Error offers.
type resultCode interface{ Code() int }

// classify finds the driver error in err's chain and reports its
// SQLSTATE (PostgreSQL) or extended result code (SQLite).
func classify(err error) (state string, code int, ok bool) {
	var pg sqlState
	if errors.As(err, &pg) {
		return pg.SQLState(), 0, true
	}
	var lite resultCode
	if errors.As(err, &lite) {
		return "", lite.Code(), true
	}
	return "", 0, false
}

// IsUniqueViolation reports whether err is, or wraps, a driver error for
// a violated unique or primary-key constraint: SQLSTATE 23505 on
// PostgreSQL, SQLITE_CONSTRAINT_UNIQUE or SQLITE_CONSTRAINT_PRIMARYKEY on
// SQLite. It recognises the drivers' errors by their methods
// (SQLState() string, Code() int), so it needs neither driver linked.
func IsUniqueViolation(err error) bool {
	state, code, ok := classify(err)
	return ok && (state == pgUniqueViolation || code == sqliteConstraintUnique || code == sqliteConstraintPrimaryKey)
}

// IsForeignKeyViolation reports whether err is, or wraps, a driver error
// for a violated foreign-key constraint: SQLSTATE 23503 on PostgreSQL,
// SQLITE_CONSTRAINT_FOREIGNKEY on SQLite.
func IsForeignKeyViolation(err error) bool {
	state, code, ok := classify(err)
	return ok && (state == pgForeignKeyViolation || code == sqliteConstraintForeignKey)
}

// IsNotNullViolation reports whether err is, or wraps, a driver error
// for a NULL written to a NOT NULL column: SQLSTATE 23502 on PostgreSQL,
// SQLITE_CONSTRAINT_NOTNULL on SQLite.
func IsNotNullViolation(err error) bool {
	state, code, ok := classify(err)
	return ok && (state == pgNotNullViolation || code == sqliteConstraintNotNull)
}
