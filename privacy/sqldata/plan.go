package sqldata

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stewardlabs/steward/sqldialect"
)

// checkDeclarations checks what can be checked without a database.
func checkDeclarations(d sqldialect.Dialect, decls []Table) error {
	index := map[string]int{}
	key := func(name string) string { return nameKey(d, name) }
	for i, t := range decls {
		if err := checkName(t.Name); err != nil {
			return &DeclarationError{Table: t.Name, Field: "Name", Err: err}
		}
		if j, dup := index[key(t.Name)]; dup {
			return &DeclarationError{Table: t.Name, Field: "Name", Err: fmt.Errorf("%w: declared twice (tables %d and %d)", ErrInvalidDeclaration, j, i)}
		}
		index[key(t.Name)] = i
	}
	declared := func(name string) bool { _, ok := index[key(name)]; return ok }
	invalid := func(t Table, field, format string, a ...any) error {
		return &DeclarationError{Table: t.Name, Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidDeclaration}, a...)...)}
	}
	names := func(t Table, field, name string) error {
		if err := checkName(name); err != nil {
			return &DeclarationError{Table: t.Name, Field: field, Err: err}
		}
		return nil
	}
	for _, t := range decls {
		switch {
		case t.UserColumn != "" && t.Via != nil:
			return invalid(t, "UserColumn", "set only one of UserColumn and Via")
		case t.UserColumn == "" && t.Via == nil:
			return invalid(t, "UserColumn", "set one of UserColumn and Via, so rows can be matched to a user")
		case t.UserColumn != "":
			if err := names(t, "UserColumn", t.UserColumn); err != nil {
				return err
			}
		default:
			if err := names(t, "Via.Parent", t.Via.Parent); err != nil {
				return err
			}
			if !declared(t.Via.Parent) {
				return invalid(t, "Via.Parent", "table %s is not declared", strconv.Quote(t.Via.Parent))
			}
			if key(t.Via.Parent) == key(t.Name) {
				return invalid(t, "Via.Parent", "a table cannot be its own parent")
			}
			if err := names(t, "Via.Column", t.Via.Column); err != nil {
				return err
			}
			if t.Via.ParentColumn != "" {
				if err := names(t, "Via.ParentColumn", t.Via.ParentColumn); err != nil {
					return err
				}
			}
		}
		if t.Key != "" {
			if err := names(t, "Key", t.Key); err != nil {
				return err
			}
		}
		as := map[string]bool{}
		for i, c := range t.Columns {
			field := "Columns[" + strconv.Itoa(i) + "]"
			if err := names(t, field+".Name", c.Name); err != nil {
				return err
			}
			name := c.As
			if name == "" {
				name = c.Name
			}
			if as[name] {
				return invalid(t, field+".As", "export name %s used twice", strconv.Quote(name))
			}
			as[name] = true
		}
		set := map[string]bool{}
		keepsUser := t.UserColumn != ""
		for i, s := range t.Anonymise {
			field := "Anonymise[" + strconv.Itoa(i) + "]"
			switch {
			case s.kind == 0:
				return invalid(t, field, "build each Set with Null, Fixed or Derived")
			case s.kind == setDerived && s.derive == nil:
				return invalid(t, field, "Derived with a nil function")
			}
			if err := names(t, field, s.column); err != nil {
				return err
			}
			if set[key(s.column)] {
				return invalid(t, field, "column %s set twice", strconv.Quote(s.column))
			}
			set[key(s.column)] = true
			if keepsUser && key(s.column) == key(t.UserColumn) {
				keepsUser = false
			}
		}
		if len(t.Anonymise) > 0 && keepsUser {
			return invalid(t, "Anonymise", "must overwrite UserColumn %s, or the kept rows still point at the user", strconv.Quote(t.UserColumn))
		}
		for i, r := range t.References {
			field := "References[" + strconv.Itoa(i) + "]"
			if err := names(t, field, r); err != nil {
				return err
			}
			if !declared(r) {
				return invalid(t, field, "table %s is not declared", strconv.Quote(r))
			}
			if key(r) == key(t.Name) {
				return invalid(t, field, "a table cannot reference itself")
			}
		}
		if t.BatchSize < 0 {
			return invalid(t, "BatchSize", "%d is negative", t.BatchSize)
		}
	}
	return nil
}

// nameKey returns the form of an identifier under which d compares it:
// SQLite's names are case-insensitive (for ASCII), PostgreSQL's quoted
// names are not.
func nameKey(d sqldialect.Dialect, name string) string {
	if d == sqldialect.SQLite {
		return strings.ToLower(name)
	}
	return name
}

// sameName reports whether a and b name the same thing under d.
func sameName(d sqldialect.Dialect, a, b string) bool { return nameKey(d, a) == nameKey(d, b) }

// eraseOrder returns the indexes of decls in the order to erase them: a
// table after every table that refers to it (through Via or References),
// otherwise in declaration order. A cycle is an error naming its tables.
func eraseOrder(d sqldialect.Dialect, decls []Table) ([]int, error) {
	n := len(decls)
	index := map[string]int{}
	for i, t := range decls {
		index[nameKey(d, t.Name)] = i
	}
	// parents[i] are the tables decls[i] refers to.
	parents := make([][]int, n)
	for i, t := range decls {
		if t.Via != nil {
			parents[i] = append(parents[i], index[nameKey(d, t.Via.Parent)])
		}
		for _, r := range t.References {
			parents[i] = append(parents[i], index[nameKey(d, r)])
		}
	}
	waiting := make([]int, n) // children not yet erased
	for i := range decls {
		for _, p := range parents[i] {
			waiting[p]++
		}
	}
	done := make([]bool, n)
	order := make([]int, 0, n)
	for len(order) < n {
		next := -1
		for i := range decls {
			if !done[i] && waiting[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			return nil, cycleError(decls, parents, done)
		}
		done[next] = true
		order = append(order, next)
		for _, p := range parents[next] {
			waiting[p]--
		}
	}
	return order, nil
}

// cycleError walks from a table left over by eraseOrder, which always
// refers to another left-over table, until it comes back round.
func cycleError(decls []Table, parents [][]int, done []bool) error {
	start := -1
	for i := range decls {
		if !done[i] {
			start = i
			break
		}
	}
	// Every left-over table has a left-over child; walk child links
	// backwards via parents: find, for each left-over table, a left-over
	// table that refers to it.
	child := make([]int, len(decls))
	for i := range child {
		child[i] = -1
	}
	for i := range decls {
		if done[i] {
			continue
		}
		for _, p := range parents[i] {
			if !done[p] && child[p] < 0 {
				child[p] = i
			}
		}
	}
	seen := map[int]int{}
	var path []int
	for at := start; ; at = child[at] {
		if pos, ok := seen[at]; ok {
			path = append(path[pos:], at)
			break
		}
		seen[at] = len(path)
		path = append(path, at)
	}
	// path runs parent → child; print it in "refers to" order.
	names := make([]string, len(path))
	for i, at := range path {
		names[len(path)-1-i] = strconv.Quote(decls[at].Name)
	}
	return &DeclarationError{
		Table: decls[path[len(path)-1]].Name,
		Err:   fmt.Errorf("%w: tables refer to each other in a cycle (%s), so none can be erased first", ErrInvalidDeclaration, strings.Join(names, " → ")),
	}
}

// builder turns checked declarations into statements.
type builder struct {
	d     sqldialect.Dialect
	decls []Table
	infos map[string]tableInfo // by declared name
	keys  map[string]string    // resolved Key by declared name
}

func (b *builder) decl(name string) Table {
	for _, t := range b.decls {
		if sameName(b.d, t.Name, name) {
			return t
		}
	}
	panic("sqldata: undeclared table " + strconv.Quote(name)) // checked before
}

// resolve checks every column against the catalog and settles each Key.
func (b *builder) resolve() error {
	for _, t := range b.decls {
		info := b.infos[t.Name]
		col := func(field, name string) error {
			if !info.has(name) {
				return &DeclarationError{Table: t.Name, Field: field, Err: unknownColumn(name)}
			}
			return nil
		}
		if t.Key != "" {
			if err := col("Key", t.Key); err != nil && !(b.d == sqldialect.SQLite && sameName(b.d, t.Key, "rowid") && info.hasRowid) {
				return err
			}
			b.keys[t.Name] = t.Key
		} else {
			k, ok := info.rowKey()
			if !ok {
				return &DeclarationError{Table: t.Name, Field: "Key", Err: errNoRowKey}
			}
			b.keys[t.Name] = k
		}
		if t.UserColumn != "" {
			if err := col("UserColumn", t.UserColumn); err != nil {
				return err
			}
		}
		for i, c := range t.Columns {
			if err := col("Columns["+strconv.Itoa(i)+"].Name", c.Name); err != nil {
				return err
			}
		}
		for i, s := range t.Anonymise {
			field := "Anonymise[" + strconv.Itoa(i) + "]"
			if err := col(field, s.column); err != nil {
				return err
			}
			if sameName(b.d, s.column, b.keys[t.Name]) {
				return &DeclarationError{Table: t.Name, Field: field, Err: fmt.Errorf("%w: cannot overwrite the key column %s", ErrInvalidDeclaration, strconv.Quote(s.column))}
			}
		}
	}
	// Via columns last: a parent's default column is its resolved Key.
	for _, t := range b.decls {
		if t.Via == nil {
			continue
		}
		if !b.infos[t.Name].has(t.Via.Column) {
			return &DeclarationError{Table: t.Name, Field: "Via.Column", Err: unknownColumn(t.Via.Column)}
		}
		if pc := t.Via.ParentColumn; pc != "" && !b.infos[b.decl(t.Via.Parent).Name].has(pc) {
			return &DeclarationError{Table: t.Name, Field: "Via.ParentColumn", Err: fmt.Errorf("table %s: %w", strconv.Quote(t.Via.Parent), unknownColumn(pc))}
		}
	}
	return nil
}

// slot says what one bind parameter carries.
type slot int

// Slots >= 0 are Anonymise values, by index.
const (
	slotUser slot = -1 - iota // the user ID
	slotLo                    // the key a keyset batch starts after
	slotHi                    // the key a keyset batch ends at
)

// bind holds the values a statement's slots draw on.
type bind struct {
	userID string
	values []any // Anonymise values
	lo, hi any
}

// args returns the bind arguments for slots.
func (v bind) args(slots []slot) []any {
	a := make([]any, len(slots))
	for i, s := range slots {
		switch s {
		case slotUser:
			a[i] = v.userID
		case slotLo:
			a[i] = v.lo
		case slotHi:
			a[i] = v.hi
		default:
			a[i] = v.values[s]
		}
	}
	return a
}

// query is a statement with the slots its parameters draw on.
type query struct {
	sql   string
	slots []slot
}

// stmt writes one SQL statement; identifiers are always quoted and values
// always bind parameters.
type stmt struct {
	d     sqldialect.Dialect
	sb    strings.Builder
	slots []slot
}

func (s *stmt) query() query      { return query{sql: s.sb.String(), slots: s.slots} }
func (s *stmt) sql(text string)   { s.sb.WriteString(text) }
func (s *stmt) ident(name string) { s.sb.WriteString(QuoteIdent(s.d, name)) }
func (s *stmt) col(table, column string) {
	s.ident(table)
	s.sb.WriteByte('.')
	s.ident(column)
}
func (s *stmt) param(sl slot) {
	s.slots = append(s.slots, sl)
	if s.d == sqldialect.Postgres {
		s.sb.WriteString("$" + strconv.Itoa(len(s.slots)))
	} else {
		s.sb.WriteByte('?')
	}
}

// subject writes the condition that a row of t belongs to the user.
func (b *builder) subject(s *stmt, t Table) {
	if t.UserColumn != "" {
		s.col(t.Name, t.UserColumn)
		s.sql(" = ")
		s.param(slotUser)
		return
	}
	p := b.decl(t.Via.Parent)
	pc := t.Via.ParentColumn
	if pc == "" {
		pc = b.keys[p.Name]
	}
	s.col(t.Name, t.Via.Column)
	s.sql(" IN (SELECT ")
	s.col(p.Name, pc)
	s.sql(" FROM ")
	s.ident(p.Name)
	s.sql(" WHERE ")
	b.subject(s, p)
	s.sql(")")
}

func (b *builder) build(t Table, defaultBatch int) *table {
	// The statements are text by now; only the Anonymise values are read
	// later, from a copy the caller cannot change.
	bt := &table{name: t.Name, category: t.Category, batchSize: t.BatchSize, sets: slices.Clone(t.Anonymise)}
	if bt.category == "" {
		bt.category = t.Name
	}
	if bt.batchSize == 0 {
		bt.batchSize = defaultBatch
	}
	key := b.keys[t.Name]
	info := b.infos[t.Name]

	cols := t.Columns
	if len(cols) == 0 {
		for _, c := range info.columns {
			cols = append(cols, Column{Name: c})
		}
	}
	ex := &stmt{d: b.d}
	ex.sql("SELECT ")
	for i, c := range cols {
		if i > 0 {
			ex.sql(", ")
		}
		ex.col(t.Name, c.Name)
		as := c.As
		if as == "" {
			as = c.Name
		}
		bt.exportAs = append(bt.exportAs, as)
	}
	ex.sql(" FROM ")
	ex.ident(t.Name)
	ex.sql(" WHERE ")
	b.subject(ex, t)
	ex.sql(" ORDER BY ")
	ex.col(t.Name, key)
	bt.export = ex.query()

	// Rows of a table reached through Via that are anonymised without
	// cutting the link still belong to the user after the update: only
	// the "not yet anonymised" condition tells them apart, so a plain
	// LIMIT would read past every row already done, batch after batch.
	// Such tables go through their rows in key order instead.
	bt.keyset = t.Via != nil && len(t.Anonymise) > 0
	for _, s := range t.Anonymise {
		if t.Via != nil && sameName(b.d, s.column, t.Via.Column) {
			bt.keyset = false
		}
	}
	if !bt.keyset {
		bt.erase = b.eraseStatement(t, key, !info.isRowKey(key), bt.batchSize)
		return bt
	}
	repeat := !info.isRowKey(key)
	for lo := range 2 {
		if b.d == sqldialect.Postgres {
			bt.batch[lo] = b.keysetStatement(t, key, repeat, lo == 1, bt.batchSize)
			continue
		}
		bt.bound[lo] = b.boundStatement(t, key, lo == 1, bt.batchSize)
		for hi := range 2 {
			bt.rangeErase[lo][hi] = b.rangeStatement(t, key, lo == 1, hi == 1)
		}
	}
	return bt
}

// eraseStatement erases one batch of the user's rows:
//
//	DELETE FROM t WHERE t.key IN (SELECT t.key FROM t WHERE <subject> LIMIT n)
//	UPDATE t SET ... WHERE t.key IN (SELECT t.key FROM t WHERE <subject> AND <not yet anonymised> LIMIT n)
//
// When the key is not known to be unique, the outer statement repeats the
// subject so that a key value shared with another user's row cannot
// reach that row.
func (b *builder) eraseStatement(t Table, key string, repeatSubject bool, n int) query {
	er := &stmt{d: b.d}
	b.eraseHead(er, t)
	er.sql(" WHERE ")
	if repeatSubject {
		b.subject(er, t)
		er.sql(" AND ")
	}
	er.col(t.Name, key)
	if b.d == sqldialect.Postgres {
		// An array built once by an init plan makes PostgreSQL fetch the
		// batch's rows by key; "IN (SELECT ...)" lets it plan a hash join
		// over the whole table when the user owns most of it.
		er.sql(" = ANY(ARRAY(SELECT ")
	} else {
		er.sql(" IN (SELECT ")
	}
	er.col(t.Name, key)
	er.sql(" FROM ")
	er.ident(t.Name)
	er.sql(" WHERE ")
	b.subject(er, t)
	b.notDone(er, t)
	er.sql(" LIMIT " + strconv.Itoa(n) + ")")
	if b.d == sqldialect.Postgres {
		er.sql(")")
	}
	return er.query()
}

// keysetStatement erases one batch in key order on PostgreSQL and says
// how many rows it changed, how many it picked and the last key picked:
//
//	WITH b AS (SELECT t.key FROM t WHERE <subject> AND <not done> AND t.key > lo ORDER BY t.key LIMIT n),
//	e AS (UPDATE t SET ... WHERE t.key = ANY(ARRAY(SELECT key FROM b)) RETURNING 1)
//	SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM b), (SELECT key FROM b ORDER BY key DESC LIMIT 1)
func (b *builder) keysetStatement(t Table, key string, repeatSubject, lo bool, n int) query {
	s := &stmt{d: b.d}
	s.sql("WITH b AS (SELECT ")
	s.col(t.Name, key)
	s.sql(" FROM ")
	s.ident(t.Name)
	s.sql(" WHERE ")
	b.subject(s, t)
	b.notDone(s, t)
	b.keyRange(s, t, key, lo, false)
	s.sql(" ORDER BY ")
	s.col(t.Name, key)
	s.sql(" LIMIT " + strconv.Itoa(n) + "), e AS (")
	b.eraseHead(s, t)
	s.sql(" WHERE ")
	if repeatSubject {
		b.subject(s, t)
		b.notDone(s, t)
		s.sql(" AND ")
	}
	s.col(t.Name, key)
	s.sql(" = ANY(ARRAY(SELECT ")
	s.ident(key)
	s.sql(" FROM b)) RETURNING 1) SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM b), (SELECT ")
	s.ident(key)
	s.sql(" FROM b ORDER BY ")
	s.ident(key)
	s.sql(" DESC LIMIT 1)")
	return s.query()
}

// boundStatement finds where a keyset batch ends: the key of the n-th row
// still to do after lo, if there are that many.
func (b *builder) boundStatement(t Table, key string, lo bool, n int) query {
	s := &stmt{d: b.d}
	s.sql("SELECT ")
	s.col(t.Name, key)
	s.sql(" FROM ")
	s.ident(t.Name)
	s.sql(" WHERE ")
	b.subject(s, t)
	b.notDone(s, t)
	b.keyRange(s, t, key, lo, false)
	s.sql(" ORDER BY ")
	s.col(t.Name, key)
	s.sql(" LIMIT 1 OFFSET " + strconv.Itoa(n-1))
	return s.query()
}

// rangeStatement erases the user's rows with keys after lo up to hi.
func (b *builder) rangeStatement(t Table, key string, lo, hi bool) query {
	s := &stmt{d: b.d}
	b.eraseHead(s, t)
	s.sql(" WHERE ")
	b.subject(s, t)
	b.notDone(s, t)
	b.keyRange(s, t, key, lo, hi)
	return s.query()
}

// eraseHead writes "DELETE FROM t" or "UPDATE t SET ...".
func (b *builder) eraseHead(s *stmt, t Table) {
	if len(t.Anonymise) == 0 {
		s.sql("DELETE FROM ")
		s.ident(t.Name)
		return
	}
	s.sql("UPDATE ")
	s.ident(t.Name)
	s.sql(" SET ")
	for i, set := range t.Anonymise {
		if i > 0 {
			s.sql(", ")
		}
		s.ident(set.column)
		s.sql(" = ")
		if set.kind == setNull {
			s.sql("NULL")
		} else {
			s.param(slot(i))
		}
	}
}

// notDone writes " AND (<some column not yet anonymised>)" for tables
// that anonymise, and nothing for tables that delete.
func (b *builder) notDone(s *stmt, t Table) {
	if len(t.Anonymise) == 0 {
		return
	}
	s.sql(" AND (")
	for i, set := range t.Anonymise {
		if i > 0 {
			s.sql(" OR ")
		}
		s.col(t.Name, set.column)
		if set.kind == setNull {
			s.sql(" IS NOT NULL")
			continue
		}
		if b.d == sqldialect.Postgres {
			s.sql(" IS DISTINCT FROM ")
		} else {
			s.sql(" IS NOT ")
		}
		s.param(slot(i))
	}
	s.sql(")")
}

// keyRange writes " AND t.key > lo" and " AND t.key <= hi" as asked.
func (b *builder) keyRange(s *stmt, t Table, key string, lo, hi bool) {
	if lo {
		s.sql(" AND ")
		s.col(t.Name, key)
		s.sql(" > ")
		s.param(slotLo)
	}
	if hi {
		s.sql(" AND ")
		s.col(t.Name, key)
		s.sql(" <= ")
		s.param(slotHi)
	}
}
