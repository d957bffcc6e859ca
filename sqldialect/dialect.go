package sqldialect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnknownDialect is returned (wrapped) by [Dialect.Validate] for a
// dialect other than [Postgres] or [SQLite].
var ErrUnknownDialect = errors.New("unknown SQL dialect")

// Dialect names the SQL dialect a database speaks. It decides how
// placeholders and identifiers are written and which driver opens the
// database.
type Dialect string

// The supported dialects.
const (
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib
	// (driver name "pgx", opened by package sqldialect/postgres).
	// Placeholders are $1, $2, ...
	Postgres Dialect = "postgres"
	// SQLite is SQLite through modernc.org/sqlite (driver name
	// "sqlite", opened by package sqldialect/sqlite), pure Go, no cgo.
	// Placeholders are ?.
	SQLite Dialect = "sqlite"
)

// String returns the dialect's name, "postgres" or "sqlite".
func (d Dialect) String() string { return string(d) }

// Validate reports whether d is one of the supported dialects. The error
// wraps [ErrUnknownDialect].
func (d Dialect) Validate() error {
	switch d {
	case Postgres, SQLite:
		return nil
	}
	return fmt.Errorf("%w: %q (want %q or %q)", ErrUnknownDialect, string(d), Postgres, SQLite)
}

// DriverName returns the database/sql driver name the dialect's driver
// registers: "pgx" for [Postgres], "sqlite" for [SQLite], "" otherwise.
func (d Dialect) DriverName() string {
	switch d {
	case Postgres:
		return "pgx"
	case SQLite:
		return "sqlite"
	}
	return ""
}

// Quote returns name quoted as an SQL identifier: wrapped in double
// quotes, with every double quote inside doubled. Quoted this way a name
// is inert whatever it contains; whether it exists is for the catalog to
// say. PostgreSQL and SQLite quote alike.
func (d Dialect) Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Placeholder returns the n-th (from 1) bind parameter as the dialect
// writes it: "$n" for [Postgres], "?" for [SQLite].
func (d Dialect) Placeholder(n int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// Rebind rewrites the ? placeholders in q for the dialect. For [Postgres]
// each ? becomes $1, $2, ... in order; for [SQLite] (and any other dialect)
// q is returned unchanged.
//
// A ? inside a single-quoted string literal, a double-quoted identifier, a
// -- line comment or a /* */ block comment is left alone. Dollar-quoted
// strings and PostgreSQL's ?-named jsonb operators are not recognised: write
// queries that need them with $n placeholders directly and do not Rebind them.
func (d Dialect) Rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			// Copy through the closing quote; a doubled quote ('') is an
			// escaped quote and simply closes and reopens the literal.
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+4])
			i += j + 3
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
