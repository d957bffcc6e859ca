package sqldata

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors, returned wrapped; check them with errors.Is.
var (
	// ErrInvalidDeclaration reports a Table declaration or option that
	// cannot work whatever the database holds: an empty or unsafe name, a
	// table with both or neither of UserColumn and Via, a reference to an
	// undeclared table, a cycle between tables, an anonymisation that
	// keeps the user ID; or one the database's schema would make fail at
	// erasure time: a Null on a NOT NULL column, a Fixed value in a
	// unique index, a key of a table to its own rows that stops their
	// deletion, an undeclared table referring to a declared one
	// (ErrUndeclaredTable).
	ErrInvalidDeclaration = errors.New("sqldata: invalid declaration")
	// ErrUnknownTable reports a declared table the database's catalog does
	// not have (PostgreSQL: in current_schema()).
	ErrUnknownTable = errors.New("sqldata: no such table")
	// ErrUnknownColumn reports a declared column its table does not have.
	ErrUnknownColumn = errors.New("sqldata: no such column")
	// ErrUndeclaredTable reports a table of the database that is not
	// declared but whose foreign key points at a declared one: its rows
	// hang off users' rows, so they would be left out of exports, and
	// the key can make erasures fail half-way. It wraps
	// ErrInvalidDeclaration.
	ErrUndeclaredTable = fmt.Errorf("%w: an undeclared table refers to a declared one", ErrInvalidDeclaration)
)

// DeclarationError says which declared table and which of its fields New
// (or ValidateIdentifiers) rejected. Err wraps ErrInvalidDeclaration,
// ErrUnknownTable or ErrUnknownColumn. Names in it are the declared
// identifiers, never data.
type DeclarationError struct {
	// Table is the table's name as declared; empty for store-wide problems.
	Table string
	// Role is the declaration's Role, for a table declared under several.
	Role string
	// Field names the offending field, such as "Columns[2].Name" or
	// "Via.Parent"; empty when the whole table is at fault.
	Field string
	// Err is the cause.
	Err error
}

func (e *DeclarationError) Error() string {
	s := "sqldata"
	if e.Table != "" {
		s += ": table " + strconv.Quote(e.Table)
	}
	if e.Role != "" {
		s += " (role " + strconv.Quote(e.Role) + ")"
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	// The cause usually starts with this package's own prefix; say it once.
	return s + ": " + strings.TrimPrefix(e.Err.Error(), "sqldata: ")
}

// Unwrap returns Err.
func (e *DeclarationError) Unwrap() error { return e.Err }
