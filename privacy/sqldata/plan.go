package sqldata

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stewardlabs/steward/sqldialect"
)

// label names declaration t in errors: its table and, if it has one, its
// role.
func label(t Table) string {
	if t.Role == "" {
		return strconv.Quote(t.Name)
	}
	return strconv.Quote(t.Name) + " (role " + strconv.Quote(t.Role) + ")"
}

// declError returns a *DeclarationError about declaration t.
func declError(t Table, field string, err error) *DeclarationError {
	return &DeclarationError{Table: t.Name, Role: t.Role, Field: field, Err: err}
}

// checkDeclarations checks what can be checked without a database, and
// returns for each declaration with Via the index of its parent's.
func checkDeclarations(d sqldialect.Dialect, decls []Table) ([]int, error) {
	byName := map[string][]int{}
	key := func(name string) string { return nameKey(d, name) }
	for i, t := range decls {
		if err := checkName(t.Name); err != nil {
			return nil, declError(t, "Name", err)
		}
		if t.Role != "" {
			if err := checkName(t.Role); err != nil {
				return nil, declError(t, "Role", err)
			}
		}
		for _, j := range byName[key(t.Name)] {
			switch {
			case t.Role == "" || decls[j].Role == "":
				return nil, declError(t, "Role", fmt.Errorf("%w: declared twice (tables %d and %d); a table declared once per user column needs a Role in each declaration", ErrInvalidDeclaration, j, i))
			case t.Role == decls[j].Role:
				return nil, declError(t, "Role", fmt.Errorf("%w: declared twice with the same Role (tables %d and %d)", ErrInvalidDeclaration, j, i))
			}
		}
		byName[key(t.Name)] = append(byName[key(t.Name)], i)
	}
	declared := func(name string) bool { return len(byName[key(name)]) > 0 }
	invalid := func(t Table, field, format string, a ...any) error {
		return declError(t, field, fmt.Errorf("%w: "+format, append([]any{ErrInvalidDeclaration}, a...)...))
	}
	names := func(t Table, field, name string) error {
		if err := checkName(name); err != nil {
			return declError(t, field, err)
		}
		return nil
	}
	parents := make([]int, len(decls))
	for i, t := range decls {
		parents[i] = -1
		switch {
		case t.UserColumn != "" && t.Via != nil:
			return nil, invalid(t, "UserColumn", "set only one of UserColumn and Via")
		case t.UserColumn == "" && t.Via == nil:
			return nil, invalid(t, "UserColumn", "set one of UserColumn and Via, so rows can be matched to a user")
		case t.UserColumn != "":
			if err := names(t, "UserColumn", t.UserColumn); err != nil {
				return nil, err
			}
		default:
			if err := names(t, "Via.Parent", t.Via.Parent); err != nil {
				return nil, err
			}
			if !declared(t.Via.Parent) {
				return nil, invalid(t, "Via.Parent", "table %s is not declared", strconv.Quote(t.Via.Parent))
			}
			if key(t.Via.Parent) == key(t.Name) {
				return nil, invalid(t, "Via.Parent", "a table cannot be its own parent")
			}
			for _, j := range byName[key(t.Via.Parent)] {
				if t.Via.Role == decls[j].Role {
					parents[i] = j
				}
			}
			if parents[i] < 0 {
				if t.Via.Role == "" {
					return nil, invalid(t, "Via.Role", "table %s is declared under several roles; say which one the rows belong through", strconv.Quote(t.Via.Parent))
				}
				return nil, invalid(t, "Via.Role", "table %s has no declaration with Role %s", strconv.Quote(t.Via.Parent), strconv.Quote(t.Via.Role))
			}
			if err := names(t, "Via.Column", t.Via.Column); err != nil {
				return nil, err
			}
			if t.Via.ParentColumn != "" {
				if err := names(t, "Via.ParentColumn", t.Via.ParentColumn); err != nil {
					return nil, err
				}
			}
		}
		if t.Key != "" {
			if err := names(t, "Key", t.Key); err != nil {
				return nil, err
			}
		}
		as := map[string]bool{}
		for i, c := range t.Columns {
			field := "Columns[" + strconv.Itoa(i) + "]"
			if err := names(t, field+".Name", c.Name); err != nil {
				return nil, err
			}
			name := c.As
			if name == "" {
				name = c.Name
			}
			if as[name] {
				return nil, invalid(t, field+".As", "export name %s used twice", strconv.Quote(name))
			}
			as[name] = true
		}
		set := map[string]bool{}
		keepsUser := t.UserColumn != ""
		stampsOnly := len(t.Anonymise) > 0
		for i, s := range t.Anonymise {
			field := "Anonymise[" + strconv.Itoa(i) + "]"
			switch {
			case s.kind == 0:
				return nil, invalid(t, field, "build each Set with Null, Fixed, Derived or ErasedAt")
			case s.kind == setDerived && s.derive == nil:
				return nil, invalid(t, field, "Derived with a nil function")
			}
			if err := names(t, field, s.column); err != nil {
				return nil, err
			}
			if set[key(s.column)] {
				return nil, invalid(t, field, "column %s set twice", strconv.Quote(s.column))
			}
			set[key(s.column)] = true
			if s.kind != setErasedAt {
				stampsOnly = false
			}
			if t.UserColumn != "" && key(s.column) == key(t.UserColumn) {
				if s.kind == setErasedAt {
					return nil, invalid(t, field, "ErasedAt cannot overwrite UserColumn %s; overwrite it with Null, Fixed or Derived", strconv.Quote(t.UserColumn))
				}
				keepsUser = false
			}
		}
		if stampsOnly {
			return nil, invalid(t, "Anonymise", "ErasedAt only stamps rows that something else anonymises; add the columns to overwrite")
		}
		if len(t.Anonymise) > 0 && keepsUser {
			return nil, invalid(t, "Anonymise", "must overwrite UserColumn %s, or the kept rows still point at the user", strconv.Quote(t.UserColumn))
		}
		for i, r := range t.References {
			field := "References[" + strconv.Itoa(i) + "]"
			if err := names(t, field, r); err != nil {
				return nil, err
			}
			if !declared(r) {
				return nil, invalid(t, field, "table %s is not declared", strconv.Quote(r))
			}
			if key(r) == key(t.Name) {
				return nil, invalid(t, field, "a table cannot reference itself")
			}
		}
		if t.BatchSize < 0 {
			return nil, invalid(t, "BatchSize", "%d is negative", t.BatchSize)
		}
	}
	return parents, nil
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
// table after every table that refers to it (through Via, References or
// a foreign key in extra, which maps a table's name key to the name keys
// of the declared tables it must be erased before), otherwise in
// declaration order. The declarations of one table (its roles) are
// ordered as one. A cycle is an error naming its tables.
func eraseOrder(d sqldialect.Dialect, decls []Table, extra map[string][]string) ([]int, error) {
	n := len(decls)
	byName := map[string][]int{}
	for i, t := range decls {
		byName[nameKey(d, t.Name)] = append(byName[nameKey(d, t.Name)], i)
	}
	// parents[i] are the declarations decls[i] refers to.
	parents := make([][]int, n)
	refer := func(i int, table string) {
		for _, j := range byName[nameKey(d, table)] {
			if !slices.Contains(parents[i], j) {
				parents[i] = append(parents[i], j)
			}
		}
	}
	for i, t := range decls {
		if t.Via != nil {
			refer(i, t.Via.Parent)
		}
		for _, r := range t.References {
			refer(i, r)
		}
		for _, r := range extra[nameKey(d, t.Name)] {
			if r != nameKey(d, t.Name) {
				refer(i, r)
			}
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
		Role:  decls[path[len(path)-1]].Role,
		Err:   fmt.Errorf("%w: tables refer to each other in a cycle (%s), so none can be erased first", ErrInvalidDeclaration, strings.Join(names, " → ")),
	}
}

// builder turns checked declarations into statements.
type builder struct {
	d       sqldialect.Dialect
	decls   []Table
	parents []int                // the declaration each Via leads to, by index; -1 for none
	infos   map[string]tableInfo // by the table's name key
	keys    []string             // resolved Key, by index
}

func (b *builder) info(t Table) tableInfo { return b.infos[nameKey(b.d, t.Name)] }

// others returns the user columns of the declarations of t's table other
// than t's own.
func (b *builder) others(i int) []string {
	var cols []string
	for j, o := range b.decls {
		if j != i && sameName(b.d, o.Name, b.decls[i].Name) && o.UserColumn != "" {
			cols = append(cols, o.UserColumn)
		}
	}
	return cols
}

// resolve checks every column against the catalog and settles each Key.
func (b *builder) resolve() error {
	for i, t := range b.decls {
		info := b.info(t)
		col := func(field, name string) error {
			if !info.has(name) {
				return declError(t, field, unknownColumn(name))
			}
			return nil
		}
		if t.Key != "" {
			if err := col("Key", t.Key); err != nil && !(b.d == sqldialect.SQLite && sameName(b.d, t.Key, "rowid") && info.hasRowid) {
				return err
			}
			b.keys[i] = t.Key
		} else {
			k, ok := info.rowKey()
			if !ok {
				return declError(t, "Key", errNoRowKey)
			}
			b.keys[i] = k
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
		for j, s := range t.Anonymise {
			if err := b.checkSet(i, j, s); err != nil {
				return err
			}
		}
		if err := b.checkUnique(i); err != nil {
			return err
		}
	}
	// Via columns last: a parent's default column is its resolved Key.
	for i, t := range b.decls {
		if t.Via == nil {
			continue
		}
		if !b.info(t).has(t.Via.Column) {
			return declError(t, "Via.Column", unknownColumn(t.Via.Column))
		}
		if pc := t.Via.ParentColumn; pc != "" && !b.info(b.decls[b.parents[i]]).has(pc) {
			return declError(t, "Via.ParentColumn", fmt.Errorf("table %s: %w", strconv.Quote(t.Via.Parent), unknownColumn(pc)))
		}
	}
	return nil
}

// keyset reports whether declaration t is erased in key order (see
// build): it anonymises rows it reaches through Via without cutting the
// link.
func keyset(d sqldialect.Dialect, t Table) bool {
	if t.Via == nil || len(t.Anonymise) == 0 {
		return false
	}
	for _, s := range t.Anonymise {
		if sameName(d, s.column, t.Via.Column) {
			return false
		}
	}
	return true
}

// checkSet checks Anonymise[j] of declaration i against its column.
func (b *builder) checkSet(i, j int, s Set) error {
	t := b.decls[i]
	info := b.info(t)
	field := "Anonymise[" + strconv.Itoa(j) + "]"
	c := info.index(s.column)
	if c < 0 {
		return declError(t, field, unknownColumn(s.column))
	}
	bad := func(format string, a ...any) error {
		return declError(t, field, fmt.Errorf("%w: "+format, append([]any{ErrInvalidDeclaration}, a...)...))
	}
	name := strconv.Quote(s.column)
	isKey := sameName(b.d, s.column, b.keys[i]) || slices.ContainsFunc(info.primaryKey, func(k string) bool { return sameName(b.d, k, s.column) })
	switch {
	case s.kind == setNull && isKey:
		return bad("cannot set the key column %s to NULL; overwrite it with Derived (a pseudonym of the user ID), or declare Key as another unique column (on SQLite: rowid)", name)
	case s.kind == setNull && info.notNull[c]:
		return bad("column %s is NOT NULL, so Null would fail every erasure; use Fixed or Derived", name)
	case isKey && keyset(b.d, t):
		return bad("cannot overwrite the key column %s of a table anonymised through Via (its batches go in key order); declare Key as another unique column (on SQLite: rowid)", name)
	case s.kind == setErasedAt && !holdsTimes(b.d, info.types[c]):
		return bad("ErasedAt needs a column of times (PostgreSQL timestamptz, timestamp or date; SQLite TEXT, DATE, DATETIME or TIMESTAMP), and column %s is %s", name, describeType(info.types[c]))
	}
	return nil
}

// holdsTimes reports whether a column declared with type decl can take
// the stamp ErasedAt writes.
func holdsTimes(d sqldialect.Dialect, decl string) bool {
	if d == sqldialect.Postgres {
		return decl == "timestamptz" || decl == "timestamp" || decl == "date"
	}
	u := strings.ToUpper(decl)
	switch {
	case strings.Contains(u, "INT"), strings.Contains(u, "BLOB"), strings.Contains(u, "REAL"), strings.Contains(u, "FLOA"), strings.Contains(u, "DOUB"), u == "":
		return false
	case strings.Contains(u, "CHAR"), strings.Contains(u, "CLOB"), strings.Contains(u, "TEXT"):
		return true
	}
	return strings.Contains(u, "DATE") || strings.Contains(u, "TIME")
}

func describeType(decl string) string {
	if decl == "" {
		return "declared without a type"
	}
	return strconv.Quote(decl)
}

// checkUnique refuses a Fixed value that would repeat in a unique index:
// the second user's erasure would fail. An index is safe when one of its
// columns is set to NULL (NULLs never clash) or to a value that differs
// between users (Derived, ErasedAt), or when it holds the whole primary
// key and leaves it as it is.
func (b *builder) checkUnique(i int) error {
	t := b.decls[i]
	if len(t.Anonymise) == 0 {
		return nil
	}
	info := b.info(t)
	setAt := func(col string) int {
		return slices.IndexFunc(t.Anonymise, func(s Set) bool { return sameName(b.d, s.column, col) })
	}
	for _, u := range info.uniques {
		fixed, varies := -1, false
		for _, col := range u.columns {
			switch j := setAt(col); {
			case j < 0:
			case t.Anonymise[j].kind == setFixed:
				if fixed < 0 {
					fixed = j
				}
			default:
				varies = true
			}
		}
		keyed := len(info.primaryKey) > 0 && !slices.ContainsFunc(info.primaryKey, func(k string) bool {
			return !slices.ContainsFunc(u.columns, func(c string) bool { return sameName(b.d, c, k) }) || setAt(k) >= 0
		})
		if fixed >= 0 && !varies && !keyed {
			return declError(t, "Anonymise["+strconv.Itoa(fixed)+"]", fmt.Errorf("%w: Fixed value for column %s would repeat in unique %s (%s), so erasing a second user would fail; use Derived (a pseudonym of the user ID) or Null",
				ErrInvalidDeclaration, strconv.Quote(t.Anonymise[fixed].column), uniqueName(u), strings.Join(u.columns, ", ")))
		}
		// Derived and ErasedAt give all of one user's rows the same value:
		// an index they cover whole would see the user's rows collide,
		// unless it is the user column alone (one row per user).
		whole := !slices.ContainsFunc(u.columns, func(c string) bool {
			j := setAt(c)
			return j < 0 || t.Anonymise[j].kind == setNull
		})
		if whole && !(len(u.columns) == 1 && t.UserColumn != "" && sameName(b.d, u.columns[0], t.UserColumn)) {
			return declError(t, "Anonymise", fmt.Errorf("%w: every column of unique %s (%s) is overwritten with one value per user, so a user with two rows could not be erased; leave one of them as it is, or set one to Null",
				ErrInvalidDeclaration, uniqueName(u), strings.Join(u.columns, ", ")))
		}
	}
	return nil
}

func uniqueName(u uniqueIndex) string {
	if u.name == "primary key" {
		return u.name
	}
	return "index " + strconv.Quote(u.name)
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

// subject writes the condition that a row of declaration i belongs to
// the user.
func (b *builder) subject(s *stmt, i int) {
	t := b.decls[i]
	if t.UserColumn != "" {
		s.col(t.Name, t.UserColumn)
		s.sql(" = ")
		s.param(slotUser)
		return
	}
	pi := b.parents[i]
	p := b.decls[pi]
	pc := t.Via.ParentColumn
	if pc == "" {
		pc = b.keys[pi]
	}
	s.col(t.Name, t.Via.Column)
	s.sql(" IN (SELECT ")
	s.col(p.Name, pc)
	s.sql(" FROM ")
	s.ident(p.Name)
	s.sql(" WHERE ")
	b.subject(s, pi)
	s.sql(")")
}

func (b *builder) build(i int, defaultBatch int) *table {
	t := b.decls[i]
	// The statements are text by now; only the Anonymise values are read
	// later, from a copy the caller cannot change.
	bt := &table{name: t.Name, role: t.Role, category: t.Category, batchSize: t.BatchSize, sets: slices.Clone(t.Anonymise)}
	info := b.info(t)
	for j, set := range bt.sets {
		if c := info.index(set.column); set.kind == setErasedAt && c >= 0 && b.d == sqldialect.Postgres && info.types[c] == "date" {
			bt.sets[j].kind = setErasedDay
		}
	}
	if bt.category == "" {
		bt.category = t.Name
		if t.Role != "" {
			bt.category = t.Name + "." + t.Role
		}
	}
	if bt.batchSize == 0 {
		bt.batchSize = defaultBatch
	}
	key := b.keys[i]

	cols := t.Columns
	if len(cols) == 0 {
		others := b.others(i)
		for _, c := range info.columns {
			if !slices.ContainsFunc(others, func(o string) bool { return sameName(b.d, o, c) }) {
				cols = append(cols, Column{Name: c})
			}
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
	b.subject(ex, i)
	ex.sql(" ORDER BY ")
	ex.col(t.Name, key)
	bt.export = ex.query()

	// Rows of a table reached through Via that are anonymised without
	// cutting the link still belong to the user after the update: only
	// the "not yet anonymised" condition tells them apart, so a plain
	// LIMIT would read past every row already done, batch after batch.
	// Such tables go through their rows in key order instead.
	bt.keyset = keyset(b.d, t)
	if !bt.keyset {
		bt.erase = b.eraseStatement(i, key, !info.isRowKey(key), bt.batchSize)
		return bt
	}
	repeat := !info.isRowKey(key)
	for lo := range 2 {
		if b.d == sqldialect.Postgres {
			bt.batch[lo] = b.keysetStatement(i, key, repeat, lo == 1, bt.batchSize)
			continue
		}
		bt.bound[lo] = b.boundStatement(i, key, lo == 1, bt.batchSize)
		for hi := range 2 {
			bt.rangeErase[lo][hi] = b.rangeStatement(i, key, lo == 1, hi == 1)
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
func (b *builder) eraseStatement(i int, key string, repeatSubject bool, n int) query {
	t := b.decls[i]
	er := &stmt{d: b.d}
	b.eraseHead(er, t)
	er.sql(" WHERE ")
	if repeatSubject {
		b.subject(er, i)
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
	b.subject(er, i)
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
func (b *builder) keysetStatement(i int, key string, repeatSubject, lo bool, n int) query {
	t := b.decls[i]
	s := &stmt{d: b.d}
	s.sql("WITH b AS (SELECT ")
	s.col(t.Name, key)
	s.sql(" FROM ")
	s.ident(t.Name)
	s.sql(" WHERE ")
	b.subject(s, i)
	b.notDone(s, t)
	b.keyRange(s, t, key, lo, false)
	s.sql(" ORDER BY ")
	s.col(t.Name, key)
	s.sql(" LIMIT " + strconv.Itoa(n) + "), e AS (")
	b.eraseHead(s, t)
	s.sql(" WHERE ")
	if repeatSubject {
		b.subject(s, i)
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
func (b *builder) boundStatement(i int, key string, lo bool, n int) query {
	t := b.decls[i]
	s := &stmt{d: b.d}
	s.sql("SELECT ")
	s.col(t.Name, key)
	s.sql(" FROM ")
	s.ident(t.Name)
	s.sql(" WHERE ")
	b.subject(s, i)
	b.notDone(s, t)
	b.keyRange(s, t, key, lo, false)
	s.sql(" ORDER BY ")
	s.col(t.Name, key)
	s.sql(" LIMIT 1 OFFSET " + strconv.Itoa(n-1))
	return s.query()
}

// rangeStatement erases the user's rows with keys after lo up to hi.
func (b *builder) rangeStatement(i int, key string, lo, hi bool) query {
	t := b.decls[i]
	s := &stmt{d: b.d}
	b.eraseHead(s, t)
	s.sql(" WHERE ")
	b.subject(s, i)
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
// that anonymise, and nothing for tables that delete. An ErasedAt stamp
// does not count: it is new at every erasure, and a row already
// anonymised keeps the stamp of its anonymisation.
func (b *builder) notDone(s *stmt, t Table) {
	if len(t.Anonymise) == 0 {
		return
	}
	s.sql(" AND (")
	first := true
	for i, set := range t.Anonymise {
		if set.kind == setErasedAt {
			continue
		}
		if !first {
			s.sql(" OR ")
		}
		first = false
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
