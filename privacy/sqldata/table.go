package sqldata

// Table declares one table that holds users' data: how to find a user's
// rows, what to export from them and how to erase them.
//
// A table finds its rows either by a column holding the user ID
// (UserColumn) or, when it holds no user ID itself, through a declared
// parent table (Via), to any depth: order_items → orders.user_id.
//
// Erasing deletes the user's rows unless Anonymise is set, in which case
// the rows stay (for bookkeeping, say) and the listed columns are
// overwritten. Children are erased before their parents: a table is erased
// before the table it reaches through Via, before every table it lists
// in References, and before every declared table its foreign keys point
// to.
//
// A row that belongs to several people (a note its author shared with
// another user, a message with a sender and a recipient) is declared once
// per column that can hold a user ID, each declaration with its own Role:
// each is exported to its user and erased for its user as it says, and
// the other declarations' user columns are left out of its default
// export (see the package doc's note-sharing example).
type Table struct {
	// Name is the table's name exactly as the catalog holds it, unqualified
	// (PostgreSQL: a table of current_schema()).
	Name string
	// Role tells apart the declarations of a table declared more than
	// once, one per user column: "author" and "recipient", say. It is
	// required then, and must differ between them; a table declared once
	// may leave it empty.
	Role string
	// UserColumn is the column holding the user ID. Exactly one of
	// UserColumn and Via is set.
	UserColumn string
	// Via reaches the user through a parent table, for a table that holds
	// no user ID itself.
	Via *Via
	// Key is a unique, non-null column that identifies a row; exports are
	// ordered by it and erase batches pick rows by it. Empty means the
	// table's single-column primary key, or on SQLite the rowid of a table
	// without one.
	Key string
	// Category groups this table's records in an export. Empty means Name,
	// or Name + "." + Role for a declaration with a Role.
	Category string
	// Columns are the columns exported, in this order. Empty means every
	// column of the table, in catalog order, under its own name, except
	// the UserColumns of the table's other declarations (another user's
	// ID is theirs to see, not this user's); list such a column here to
	// export it anyway.
	Columns []Column
	// Anonymise, when not empty, keeps the user's rows on erase and
	// overwrites these columns instead of deleting the rows. When the
	// table has a UserColumn it must be one of them, or the kept rows would
	// still point at the user.
	//
	// The key column may be overwritten (with Derived) in a table with a
	// UserColumn, so a one-to-one table keyed by the user ID can keep its
	// row under a pseudonym. New refuses what would fail at erasure time:
	// Null on a NOT NULL or key column, Fixed on a column of a unique
	// index (or primary key) whose other columns could repeat between two
	// erased users, and overwrites covering a whole unique index with one
	// value per user.
	Anonymise []Set
	// References lists other declared tables whose rows this table's rows
	// point to (foreign keys); this table is erased before them.
	References []string
	// BatchSize caps how many rows one erase transaction touches. Zero
	// means the store's batch size (WithBatchSize, default 1000).
	BatchSize int
}

// Via says how a table's rows reach their user through a parent table:
// a row belongs to the user when its Column equals the ParentColumn of one
// of the user's rows in Parent.
type Via struct {
	// Parent is the name of another declared table.
	Parent string
	// Column is the column of this table that refers to the parent.
	Column string
	// ParentColumn is the parent's column that Column refers to. Empty
	// means the parent's Key.
	ParentColumn string
	// Role picks the declaration of Parent whose user the rows belong to,
	// when Parent is declared under several roles; it is required then.
	Role string
}

// Column is one exported column.
type Column struct {
	// Name is the column's name in the table.
	Name string
	// As is the key the value gets in Record.Data. Empty means Name.
	As string
}

// Set is one column overwritten when a row is anonymised. Build it with
// Null, Fixed, Derived or ErasedAt. Values always travel as bind
// parameters, never as SQL text.
type Set struct {
	column string
	kind   setKind
	value  any
	derive func(userID string) (any, error)
}

type setKind int

const (
	setNull setKind = iota + 1
	setFixed
	setDerived
	setErasedAt
	// setErasedDay is ErasedAt on a PostgreSQL date column, which is
	// stamped with the first day that begins (at midnight UTC) at or
	// after the erasure, so that a kept period counted from the stamp is
	// never shorter than declared.
	setErasedDay
)

// Null sets column to NULL.
func Null(column string) Set { return Set{column: column, kind: setNull} }

// Fixed sets column to v, which must be a value the database driver
// accepts (string, int64, float64, bool, []byte, time.Time, or a
// driver.Valuer). A nil v is the same as Null.
func Fixed(column string, v any) Set {
	if v == nil {
		return Null(column)
	}
	return Set{column: column, kind: setFixed, value: v}
}

// Derived sets column to f(userID), computed once per Erase call: a
// pseudonym such as a keyed hash of the user ID keeps a former user's rows
// linked to each other without naming the user. f must return the same
// value every time for the same user ID so that erasing again finds the
// rows already done; an error from f stops Erase.
func Derived(column string, f func(userID string) (any, error)) Set {
	return Set{column: column, kind: setDerived, derive: f}
}

// ErasedAt sets column to the time of the erasure, from the Store's
// clock (WithNow), so that the kept row can be deleted a fixed time
// later: keep-then-delete, such as invoices kept for seven years after
// the customer's erasure and then deleted, by a retention policy over a
// retention/sqltarget Target whose TimeColumn is this column (rows never
// anonymised have NULL there and never expire).
//
// The column must hold times: on PostgreSQL timestamptz, timestamp
// (written as UTC) or date (which gets the first day beginning, at
// midnight UTC, at or after the erasure, so that a period counted from
// the stamp is never cut short by the day's rounding); on SQLite a column declared TEXT, DATE,
// DATETIME or TIMESTAMP, which gets RFC 3339 text in UTC with
// nanoseconds ("2006-01-02T15:04:05.000000000Z", fixed width, so it
// sorts as text too). The stamp is written only with the anonymisation
// itself: erasing again later leaves rows already anonymised, and so
// their stamp, alone. It cannot be a table's only Set.
func ErasedAt(column string) Set { return Set{column: column, kind: setErasedAt} }
