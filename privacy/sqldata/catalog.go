package sqldata

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

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
	notNull    []bool   // each column's NOT NULL
	primaryKey []string // in key order
	hasRowid   bool     // SQLite: an ordinary rowid table
	// uniques are the table's unique indexes over plain columns, the
	// primary key among them (filled by lookupUniques).
	uniques []uniqueIndex
}

// uniqueIndex is a unique index or constraint and its key columns.
type uniqueIndex struct {
	name    string
	columns []string
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
		colQuery = `SELECT name, pk, type, "notnull" FROM pragma_table_info(?) ORDER BY cid`
	case sqldialect.Postgres:
		colQuery = `SELECT a.attname, COALESCE((SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, ord) WHERE k.att = a.attnum), 0),
	CASE WHEN ty.typtype = 'd' THEN (SELECT b.typname FROM pg_catalog.pg_type b WHERE b.oid = ty.typbasetype) ELSE ty.typname END,
	a.attnotnull
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
		var notNull bool
		if err := rows.Scan(&name, &pos, &typ, &notNull); err != nil {
			return info, fmt.Errorf("sqldata: reading the catalog for table %q: %w", table, err)
		}
		info.columns = append(info.columns, name)
		info.types = append(info.types, typ)
		info.notNull = append(info.notNull, notNull)
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

// lookupUniques fills info.uniques: the primary key and every unique
// index whose key is plain columns (an index over expressions is left
// out, as which columns it covers cannot be told).
func lookupUniques(ctx context.Context, db *sql.DB, d sqldialect.Dialect, table string, info *tableInfo) error {
	if len(info.primaryKey) > 0 {
		info.uniques = append(info.uniques, uniqueIndex{name: "primary key", columns: info.primaryKey})
	}
	q := `SELECT il.name, ii.name FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii
WHERE il."unique" = 1 AND il.origin <> 'pk' ORDER BY il.name, ii.seqno`
	if d == sqldialect.Postgres {
		q = `SELECT ic.relname, a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, ord)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.att AND k.att > 0
WHERE n.nspname = current_schema() AND t.relname = $1 AND i.indisunique AND NOT i.indisprimary AND k.ord <= i.indnkeyatts
ORDER BY ic.relname, k.ord`
	}
	rows, err := db.QueryContext(ctx, q, table)
	if err != nil {
		return fmt.Errorf("sqldata: reading the indexes of table %q: %w", table, err)
	}
	defer rows.Close()
	var cur uniqueIndex
	exprs := false
	flush := func() {
		if cur.name != "" && !exprs {
			info.uniques = append(info.uniques, cur)
		}
	}
	for rows.Next() {
		var name string
		var col sql.NullString
		if err := rows.Scan(&name, &col); err != nil {
			return fmt.Errorf("sqldata: reading the indexes of table %q: %w", table, err)
		}
		if name != cur.name {
			flush()
			cur, exprs = uniqueIndex{name: name}, false
		}
		if !col.Valid {
			exprs = true
			continue
		}
		cur.columns = append(cur.columns, col.String)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqldata: reading the indexes of table %q: %w", table, err)
	}
	flush()
	return nil
}

// foreignKey is one foreign key of some table of the database that
// points at a table of current_schema() (PostgreSQL) or main (SQLite).
type foreignKey struct {
	child     string // the referring table, schema-qualified when outside current_schema()
	local     bool   // child is in current_schema() (PostgreSQL) or main (SQLite)
	parent    string
	from, to  []string // to is empty when it means the parent's primary key
	onDelete  string   // NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT
	onUpdate  string
	constrain string // PostgreSQL: the constraint's name
}

// lets reports whether the key lets a parent row be deleted (onDelete)
// or its referenced columns be overwritten without failing, whatever
// rows refer to it.
func lets(action string) bool {
	return action == "CASCADE" || action == "SET NULL" || action == "SET DEFAULT"
}

// lookupForeignKeys returns every foreign key that points at a table of
// the schema Steward reads.
func lookupForeignKeys(ctx context.Context, db *sql.DB, d sqldialect.Dialect) ([]foreignKey, error) {
	q := `SELECT m.name, 1, f."table", f."from", COALESCE(f."to", ''), f.on_delete, f.on_update, CAST(f.id AS TEXT)
FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f
WHERE m.type = 'table'
ORDER BY m.name, f.id, f.seq`
	if d == sqldialect.Postgres {
		q = `SELECT CASE WHEN cn.nspname = current_schema() THEN c.relname ELSE cn.nspname || '.' || c.relname END,
	CASE WHEN cn.nspname = current_schema() THEN 1 ELSE 0 END, p.relname, fa.attname, pa.attname,
	CASE con.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END,
	CASE con.confupdtype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END,
	con.conname
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = con.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(fatt, patt, ord)
JOIN pg_catalog.pg_attribute fa ON fa.attrelid = con.conrelid AND fa.attnum = k.fatt
JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.patt
WHERE con.contype = 'f' AND pn.nspname = current_schema()
ORDER BY 1, con.conname, k.ord`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqldata: reading the catalog's foreign keys: %w", err)
	}
	defer rows.Close()
	var fks []foreignKey
	for rows.Next() {
		var k foreignKey
		var local int
		var from, to string
		if err := rows.Scan(&k.child, &local, &k.parent, &from, &to, &k.onDelete, &k.onUpdate, &k.constrain); err != nil {
			return nil, fmt.Errorf("sqldata: reading the catalog's foreign keys: %w", err)
		}
		k.local = local == 1
		k.onDelete, k.onUpdate = strings.ToUpper(k.onDelete), strings.ToUpper(k.onUpdate)
		if n := len(fks); n > 0 && fks[n-1].child == k.child && fks[n-1].constrain == k.constrain {
			fks[n-1].from = append(fks[n-1].from, from)
			if to != "" {
				fks[n-1].to = append(fks[n-1].to, to)
			}
			continue
		}
		k.from = []string{from}
		if to != "" {
			k.to = []string{to}
		}
		fks = append(fks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldata: reading the catalog's foreign keys: %w", err)
	}
	return fks, nil
}
