package sqldata

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors, returned wrapped; check them with errors.Is.
var (
	// ErrInvalidDeclaration reports a Table declaration or option that
	// cannot work whatever the database holds: an empty or unsafe name, a
	// table with both or neither of UserColumn and Via, a reference to an
	// undeclared table, a cycle between tables, an anonymisation that
	// keeps the user ID.
	ErrInvalidDeclaration = errors.New("sqldata: invalid declaration")
	// ErrUnknownTable reports a declared table the database's catalog does
	// not have (PostgreSQL: in current_schema()).
	ErrUnknownTable = errors.New("sqldata: no such table")
	// ErrUnknownColumn reports a declared column its table does not have.
	ErrUnknownColumn = errors.New("sqldata: no such column")
)

// DeclarationError says which declared table and which of its fields New
// (or ValidateIdentifiers) rejected. Err wraps ErrInvalidDeclaration,
// ErrUnknownTable or ErrUnknownColumn. Names in it are the declared
// identifiers, never data.
type DeclarationError struct {
	// Table is the table's name as declared; empty for store-wide problems.
	Table string
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
	if e.Field != "" {
		s += ": " + e.Field
	}
	// The cause usually starts with this package's own prefix; say it once.
	return s + ": " + strings.TrimPrefix(e.Err.Error(), "sqldata: ")
}

// Unwrap returns Err.
func (e *DeclarationError) Unwrap() error { return e.Err }
