package sqldata

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// foreignKeys checks the database's foreign keys that point at declared
// tables, and returns the erase-order edges they add: for each declared
// table, the declared tables it must be erased before because a key of
// its would stop their erasure otherwise.
//
// It refuses:
//   - an undeclared table with such a key (unless listed in undeclared
//     and the key cannot stop an erasure): its rows belong to users'
//     rows, yet would not be exported, and the key could fail erasures
//     half-way;
//   - a declared table that keeps its rows (Anonymise) with such a key
//     still set, towards rows that erasure deletes.
func (b *builder) foreignKeys(fks []foreignKey, undeclared []string) (map[string][]string, error) {
	byName := map[string][]int{}
	for i, t := range b.decls {
		byName[nameKey(b.d, t.Name)] = append(byName[nameKey(b.d, t.Name)], i)
	}
	extra := map[string][]string{}
	var errs []error
	// reach holds the undeclared tables whose rows hang off declared
	// tables' rows, directly or through other undeclared tables.
	reach := map[string]reached{}
	for _, k := range fks {
		parent := nameKey(b.d, k.parent)
		ps := byName[parent]
		if len(ps) == 0 {
			continue
		}
		child := nameKey(b.d, k.child)
		cs := byName[child]
		if !k.local {
			cs = nil
		}
		blocks := b.blocks(k, ps)
		if child == parent && len(cs) > 0 {
			// A table's own tree of rows (replies to comments): a row
			// pointing at one that erasure deletes stops it, whether it
			// is another user's reply or the same user's, left to a
			// later batch.
			if blocks != "" {
				errs = append(errs, b.selfReference(cs[0], k, blocks))
			}
			continue
		}
		switch {
		case len(cs) == 0:
			listed := slices.ContainsFunc(undeclared, func(u string) bool { return nameKey(b.d, u) == child })
			if k.local {
				r := reach[child]
				r.root, r.listed = k.parent, listed
				r.deleted = r.deleted || (k.onDelete == "CASCADE" && b.deletes(ps))
				reach[child] = r
			}
			if listed && blocks == "" {
				continue
			}
			errs = append(errs, b.undeclaredError(k, ps[0], listed, blocks))
		case blocks != "":
			extra[child] = append(extra[child], parent)
			for _, c := range cs {
				if err := b.keepsReference(c, k, blocks); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	errs = append(errs, b.reachedThrough(fks, undeclared, reach)...)
	return extra, errors.Join(errs...)
}

// reached is an undeclared table whose rows hang off a declared table's
// rows.
type reached struct {
	root    string // the declared table they hang off, as the catalog names it
	listed  bool   // named in WithUndeclared
	deleted bool   // erasing a user deletes some of its rows (ON DELETE CASCADE all the way)
}

// deletes reports whether any of the declarations ps deletes rows.
func (b *builder) deletes(ps []int) bool {
	return slices.ContainsFunc(ps, func(p int) bool { return len(b.decls[p].Anonymise) == 0 })
}

// reachedThrough follows foreign keys from the undeclared tables in
// reach (those that hang off declared ones) to the undeclared tables
// that point at them, which hang off users' rows as well, and refuses
// them: unless named in WithUndeclared, since their rows would be left
// out of exports; and even then when a cascade from an erasure reaches
// them through a key that does not let deletes through, since the
// erasure would fail on it.
func (b *builder) reachedThrough(fks []foreignKey, undeclared []string, reach map[string]reached) []error {
	declared := map[string]bool{}
	for _, t := range b.decls {
		declared[nameKey(b.d, t.Name)] = true
	}
	direct := map[string]bool{} // refused already, for their keys to declared tables
	for c := range reach {
		direct[c] = true
	}
	isListed := func(child string) bool {
		return slices.ContainsFunc(undeclared, func(u string) bool { return nameKey(b.d, u) == child })
	}
	// The keys from undeclared tables to tables in reach.
	var keys []foreignKey
	for _, k := range fks {
		parent, child := nameKey(b.d, k.parent), nameKey(b.d, k.child)
		if child != parent && !declared[parent] && !(k.local && declared[child]) {
			keys = append(keys, k)
		}
	}
	for changed := true; changed; {
		changed = false
		for _, k := range keys {
			p, ok := reach[nameKey(b.d, k.parent)]
			child := nameKey(b.d, k.child)
			if !ok || !k.local {
				continue
			}
			r, seen := reach[child]
			next := reached{root: p.root, listed: isListed(child), deleted: r.deleted || (p.deleted && k.onDelete == "CASCADE")}
			if seen {
				next.root = r.root
			}
			if !seen || next != r {
				reach[child] = next
				changed = true
			}
		}
	}
	var errs []error
	for _, k := range keys {
		p, ok := reach[nameKey(b.d, k.parent)]
		child := nameKey(b.d, k.child)
		if !ok {
			continue
		}
		from := strings.Join(k.from, ", ")
		switch {
		case !isListed(child):
			if direct[child] {
				continue
			}
			errs = append(errs, &DeclarationError{Table: k.child, Err: fmt.Errorf("%w: not declared, but its foreign key (%s) points at table %s, which is not declared either and whose rows hang off those of declared table %s: declare both (%s with Via through %s), or name them in WithUndeclared if they hold no personal data and their keys let erasures through",
				ErrUndeclaredTable, from, strconv.Quote(k.parent), strconv.Quote(p.root), strconv.Quote(k.child), strconv.Quote(k.parent))})
		case p.listed && p.deleted && !lets(k.onDelete):
			errs = append(errs, &DeclarationError{Table: k.child, Err: fmt.Errorf("%w: it is named in WithUndeclared, but erasures would fail: erasing a user deletes their rows of declared table %s and, by ON DELETE CASCADE, rows of %s, which its foreign key (%s) points at (ON DELETE %s); make the key ON DELETE CASCADE or SET NULL, or declare the table",
				ErrUndeclaredTable, strconv.Quote(p.root), strconv.Quote(k.parent), from, k.onDelete)})
		}
	}
	return errs
}

// blocks says how key k can stop the erasure of the declarations ps of
// the table it points at ("" when it cannot): they delete rows and the
// key does not let deletes through, or they overwrite a referenced
// column and it does not let updates through.
func (b *builder) blocks(k foreignKey, ps []int) string {
	for _, p := range ps {
		t := b.decls[p]
		if len(t.Anonymise) == 0 {
			if !lets(k.onDelete) {
				return fmt.Sprintf("%s deletes rows it points at (ON DELETE %s)", label(t), k.onDelete)
			}
			continue
		}
		ref := k.to
		if len(ref) == 0 {
			ref = b.info(t).primaryKey
		}
		for _, s := range t.Anonymise {
			if slices.ContainsFunc(ref, func(c string) bool { return sameName(b.d, c, s.column) }) && !lets(k.onUpdate) {
				return fmt.Sprintf("%s overwrites column %s it points at (ON UPDATE %s)", label(t), strconv.Quote(s.column), k.onUpdate)
			}
		}
	}
	return ""
}

func (b *builder) undeclaredError(k foreignKey, p int, listed bool, blocks string) error {
	t := b.decls[p]
	from := strings.Join(k.from, ", ")
	var why string
	switch {
	case listed:
		why = fmt.Sprintf("it is named in WithUndeclared, but erasures would fail: %s; make the key ON DELETE CASCADE or SET NULL, or declare the table", blocks)
	default:
		why = fmt.Sprintf("its rows hang off users' rows, so declare it, for instance {Name: %s, Via: &sqldata.Via{Parent: %s, Column: %s}}, and they are exported and erased with them, or name it in WithUndeclared if it holds no personal data",
			strconv.Quote(k.child), strconv.Quote(t.Name), strconv.Quote(k.from[0]))
		if blocks != "" {
			why += " and its key lets erasures through (now " + blocks + ")"
		}
	}
	return &DeclarationError{Table: k.child, Err: fmt.Errorf("%w: not declared, but its foreign key (%s) points at declared table %s: %s", ErrUndeclaredTable, from, strconv.Quote(k.parent), why)}
}

// keepsReference refuses declaration c when it keeps its rows with key
// k still set, so that deleting what the key points at would fail.
func (b *builder) keepsReference(c int, k foreignKey, blocks string) error {
	t := b.decls[c]
	if len(t.Anonymise) == 0 {
		return nil
	}
	for _, col := range k.from {
		j := slices.IndexFunc(t.Anonymise, func(s Set) bool { return sameName(b.d, s.column, col) })
		if j < 0 || t.Anonymise[j].kind != setNull {
			return declError(t, "Anonymise", fmt.Errorf("%w: the rows kept keep their foreign key (%s) to table %s, and %s, so erasures would fail; add Null(%s), or make the key ON DELETE SET NULL or CASCADE",
				ErrInvalidDeclaration, strings.Join(k.from, ", "), strconv.Quote(k.parent), blocks, strconv.Quote(col)))
		}
	}
	return nil
}

// selfReference refuses a key of a declared table to its own rows that
// erasure deletes or overwrites: rows of other users (a reply to the
// user's comment), or the user's own rows in a later batch, still point
// at them, so the erasure would fail half-way.
func (b *builder) selfReference(c int, k foreignKey, blocks string) error {
	return declError(b.decls[c], "", fmt.Errorf("%w: its foreign key (%s) points at rows of the same table, and %s, so a row still pointing at one of them (another user's reply, or the user's own in a later batch) would fail the erasure; make the key ON DELETE CASCADE or SET NULL (and ON UPDATE CASCADE or SET NULL for a column Anonymise overwrites), or Anonymise the rows instead of deleting them",
		ErrInvalidDeclaration, strings.Join(k.from, ", "), blocks))
}
