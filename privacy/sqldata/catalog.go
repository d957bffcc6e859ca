package sqldata

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/stewardlabs/steward/sqldialect"
)

// QuoteIdent returns name quoted as an SQL identifier: wrapped in double
// quotes, with every double quote inside doubled. Quoted this way a name is
// inert whatever it contains; it still has to exist, which New and
// ValidateIdentifiers check against the catalog. PostgreSQL and SQLite
// quote alike; d is taken so callers need not change if a dialect that
// quotes differently is added.
func QuoteIdent(d sqldialect.Dialect, name string) string { return d.Quote(name) }

// ValidateIdentifiers checks that table exists in the database (PostgreSQL:
// in current_schema()) and has every one of columns. On SQLite names match
// case-insensitively, as SQLite itself matches them; on PostgreSQL they
// match exactly as stored (unquoted names are stored in lower case).
//
// The error is a *DeclarationError wrapping ErrUnknownTable or
// ErrUnknownColumn and naming what is missing, ErrInvalidDeclaration for
// a name no database could hold (empty, or with control characters), or
// the database's own error.
func ValidateIdentifiers(ctx context.Context, db *sql.DB, d sqldialect.Dialect, table string, columns ...string) error {
	if err := checkDialect(d); err != nil {
		return err
	}
	if err := checkName(table); err != nil {
		return &DeclarationError{Table: table, Err: err}
	}
	for _, c := range columns {
		if err := checkName(c); err != nil {
			return &DeclarationError{Table: table, Err: fmt.Errorf("column: %w", err)}
		}
	}
	info, err := lookupTable(ctx, db, d, table)
	if err != nil {
		return err
	}
	for _, c := range columns {
		if !info.has(c) {
			return &DeclarationError{Table: table, Err: unknownColumn(c)}
		}
	}
	return nil
}

// RowKey returns the column that identifies table's rows, for statements
// that work in batches ("... WHERE key IN (SELECT key ... LIMIT n)"): its
// single-column primary key, or on SQLite "rowid" for a table without one.
// It fails like ValidateIdentifiers for a missing table, and with
// ErrInvalidDeclaration when the table has no such column (a composite
// primary key, or no primary key on PostgreSQL).
func RowKey(ctx context.Context, db *sql.DB, d sqldialect.Dialect, table string) (string, error) {
	if err := checkDialect(d); err != nil {
		return "", err
	}
	if err := checkName(table); err != nil {
		return "", &DeclarationError{Table: table, Err: err}
	}
	info, err := lookupTable(ctx, db, d, table)
	if err != nil {
		return "", err
	}
	key, ok := info.rowKey()
	if !ok {
		return "", &DeclarationError{Table: table, Err: errNoRowKey}
	}
	return key, nil
}

// ColumnType returns the declared type of table's column as the catalog
// holds it: on SQLite the type text of the column's declaration as
// written (such as "TIMESTAMP", "varchar(64)", or "" for a column
// declared without one); on PostgreSQL the name of the column's base type
// in pg_type, domains resolved to the type they are over (such as
// "timestamptz", "timestamp", "int8", "text"). It fails like
// ValidateIdentifiers for a missing table or column.
func ColumnType(ctx context.Context, db *sql.DB, d sqldialect.Dialect, table, column string) (string, error) {
	if err := checkDialect(d); err != nil {
		return "", err
	}
	if err := checkName(table); err != nil {
		return "", &DeclarationError{Table: table, Err: err}
	}
	if err := checkName(column); err != nil {
		return "", &DeclarationError{Table: table, Err: fmt.Errorf("column: %w", err)}
	}
	info, err := lookupTable(ctx, db, d, table)
	if err != nil {
		return "", err
	}
	i := info.index(column)
	if i < 0 {
		return "", &DeclarationError{Table: table, Err: unknownColumn(column)}
	}
	return info.types[i], nil
}

var errNoRowKey = fmt.Errorf("%w: no single-column primary key; declare Key", ErrInvalidDeclaration)

// tableInfo is what the catalog says about one table.
type tableInfo struct {
	dialect    sqldialect.Dialect
	columns    []string // in catalog order, as the catalog spells them
	types      []string // each column's declared type (see ColumnType)
	primaryKey []string // in key order
	hasRowid   bool     // SQLite: an ordinary rowid table
}

func (t tableInfo) has(column string) bool { return t.index(column) >= 0 }

// index returns column's position in t.columns, or -1.
func (t tableInfo) index(column string) int {
	for i, c := range t.columns {
		if sameName(t.dialect, c, column) {
			return i
		}
	}
	return -1
}

// rowKey returns the column that identifies a row, if there is one.
func (t tableInfo) rowKey() (string, bool) {
	switch {
	case len(t.primaryKey) == 1:
		return t.primaryKey[0], true
	case t.hasRowid:
		return "rowid", true
	}
	return "", false
}

// isRowKey reports whether column is known to identify rows uniquely.
func (t tableInfo) isRowKey(column string) bool {
	k, ok := t.rowKey()
	if !ok {
		return false
	}
	return sameName(t.dialect, k, column)
}

// lookupTable reads table's columns and primary key from the catalog.
func lookupTable(ctx context.Context, db *sql.DB, d sqldialect.Dialect, table string) (tableInfo, error) {
	info := tableInfo{dialect: d}
	var colQuery string
	switch d {
	case sqldialect.SQLite:
		colQuery = `SELECT name, pk, type FROM pragma_table_info(?) ORDER BY cid`
	case sqldialect.Postgres:
		colQuery = `SELECT a.attname, COALESCE((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, ord) WHERE k.att = a.attnum), 0),
	CASE WHEN ty.typtype = 'd' THEN (SELECT b.typname FROM pg_catalog.pg_type b WHERE b.oid = ty.typbasetype) ELSE ty.typname END
FROM pg_catalog.pg_class t
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = t.oid AND i.indisprimary
WHERE n.nspname = current_schema() AND t.relname = $1 AND t.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum`
	}
	rows, err := db.QueryContext(ctx, colQuery, table)
	if err != nil {
		return info, fmt.Errorf("sqldata: reading the catalog for table %q: %w", table, err)
	}
	defer rows.Close()
	pk := map[int]string{}
	for rows.Next() {
		var name, typ string
		var pos int
		if err := rows.Scan(&name, &pos, &typ); err != nil {
			return info, fmt.Errorf("sqldata: reading the catalog for table %q: %w", table, err)
		}
		info.columns = append(info.columns, name)
		info.types = append(info.types, typ)
		if pos > 0 {
			pk[pos] = name
		}
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("sqldata: reading the catalog for table %q: %w", table, err)
	}
	if len(info.columns) == 0 {
		return info, &DeclarationError{Table: table, Err: ErrUnknownTable}
	}
	for i := 1; i <= len(pk); i++ {
		info.primaryKey = append(info.primaryKey, pk[i])
	}
	if d == sqldialect.SQLite {
		// A table without rowid always has a primary key; views have none.
		var typ string
		var withoutRowid bool
		err := db.QueryRowContext(ctx, `SELECT type, wr FROM pragma_table_list(?) WHERE schema = 'main' OR schema = 'temp' LIMIT 1`, table).Scan(&typ, &withoutRowid)
		if err != nil && err != sql.ErrNoRows {
			return info, fmt.Errorf("sqldata: reading the catalog for table %q: %w", table, err)
		}
		info.hasRowid = err == nil && typ == "table" && !withoutRowid
	}
	return info, nil
}

func unknownColumn(name string) error {
	return fmt.Errorf("%w %s", ErrUnknownColumn, strconv.Quote(name))
}

// checkName rejects names no catalog holds; everything else is left to
// the catalog and to quoting.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidDeclaration)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: name %s has a control character", ErrInvalidDeclaration, strconv.Quote(name))
		}
	}
	return nil
}

func checkDialect(d sqldialect.Dialect) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("sqldata: %w", err)
	}
	return nil
}
