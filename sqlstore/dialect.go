package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect names the SQL dialect a [Store] speaks. It decides which embedded
// migrations run and how placeholders are written.
type Dialect string

// The supported dialects.
const (
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib
	// (driver name "pgx"). Placeholders are $1, $2, ...
	Postgres Dialect = "postgres"
	// SQLite is SQLite through modernc.org/sqlite (driver name "sqlite"),
	// pure Go, no cgo. Placeholders are ?.
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
