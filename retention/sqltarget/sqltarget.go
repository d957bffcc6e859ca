package sqltarget

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqldialect"
)

// Sentinel errors, returned wrapped; check them with errors.Is.
var (
	// ErrInvalidTable is wrapped by errors about an incomplete or
	// unusable Table, ErrUnsupportedColumn's among them.
	ErrInvalidTable = errors.New("sqltarget: invalid table")
	// ErrUnsupportedColumn is wrapped by New's error for a TimeColumn
	// whose type it cannot compare correctly; the error names the column,
	// its declared type and what would work. It wraps ErrInvalidTable.
	ErrUnsupportedColumn = fmt.Errorf("%w: unsupported time column", ErrInvalidTable)
	// ErrUnreadableTime is wrapped by Count's, Purge's and Anonymise's
	// error when a row that might be expired holds a value that is not
	// a time in a format this package reads (on SQLite, also any text or
	// blob in a column of integers). Nothing of that batch was changed.
	ErrUnreadableTime = errors.New("sqltarget: unreadable time")
)

// Table declares the table a Target purges.
type Table struct {
	// Name of the table, e.g. "activity_log".
	Name string
	// TimeColumn holds when the row was made; rows older than the
	// policy's cutoff expire. Its declared type decides how the cutoff
	// is compared (see the package doc); New refuses types it cannot
	// compare correctly. Rows whose TimeColumn is NULL never expire.
	TimeColumn string
	// Epoch says, for a TimeColumn of integers, what they count:
	// UnixSeconds, UnixMilliseconds, UnixMicroseconds or
	// UnixNanoseconds. It is required for integer columns and refused
	// for any other.
	Epoch Epoch
	// SubjectColumn, when set, holds the user ID: rows of users under
	// legal hold are skipped, and anonymisation clears it.
	SubjectColumn string
	// Anonymise lists the columns set to NULL by Anonymise (with
	// SubjectColumn). Empty means the target only deletes.
	Anonymise []string
}

// Target is a retention.Target (and, with Table.Anonymise, a
// retention.Anonymiser) over one table. It is safe for concurrent use.
type Target struct {
	db    *sql.DB
	d     sqldialect.Dialect
	table Table
	kind  kind
	// partitioned is a PostgreSQL partitioned table, whose partitions
	// each number their rows' ctids from the start.
	partitioned bool
	q           struct{ table, time, subject, key, sets string }
	text        parser

	// mu guards cursors and held.
	//
	// cursors holds, per cutoff, where the last purge batch ended. Later
	// batches of the same sweep start there instead of walking again over
	// the index entries of rows already deleted (or kept), which would
	// make each batch slower than the last. It is only a hint: a short
	// batch clears it, and a batch that finds nothing past it scans once
	// more from the start, so rows inserted behind it are not missed.
	mu      sync.Mutex
	cursors map[time.Time]cursor
	// held is the last exclude list seen, as a set, so that a sweep over
	// many batches builds the set of 100,000 holds once.
	held *holds
}

// cursor is where a batch ended: the time column's value (in its own
// storage) of the newest row it took and, for batches that leave rows
// behind (window), that row's key.
type cursor struct {
	window bool
	at     any
	key    any
}

var _ retention.Anonymiser = (*Target)(nil)

// New checks the declaration against the database's catalog and returns
// its Target. It reads the TimeColumn's declared type and refuses, with
// an error wrapping ErrUnsupportedColumn that names the column and its
// type, one it cannot compare with a cutoff correctly.
func New(ctx context.Context, db *sql.DB, d sqldialect.Dialect, t Table) (*Target, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: db is nil", ErrInvalidTable)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("sqltarget: %w", err)
	}
	switch {
	case t.Name == "":
		return nil, fmt.Errorf("%w: Name is empty", ErrInvalidTable)
	case t.TimeColumn == "":
		return nil, fmt.Errorf("%w: table %q: TimeColumn is empty", ErrInvalidTable, t.Name)
	case len(t.Anonymise) > 0 && t.SubjectColumn == "":
		return nil, fmt.Errorf("%w: table %q: Anonymise needs SubjectColumn", ErrInvalidTable, t.Name)
	}
	cols := append([]string{t.TimeColumn}, t.Anonymise...)
	if t.SubjectColumn != "" {
		cols = append(cols, t.SubjectColumn)
	}
	if err := sqldata.ValidateIdentifiers(ctx, db, d, t.Name, cols...); err != nil {
		return nil, err
	}
	decl, err := sqldata.ColumnType(ctx, db, d, t.Name, t.TimeColumn)
	if err != nil {
		return nil, err
	}
	k, why := classify(d, decl, t.Epoch)
	if k == 0 {
		return nil, fmt.Errorf("%w: table %q: column %q is %s: %s", ErrUnsupportedColumn, t.Name, t.TimeColumn, describeType(decl), why)
	}
	var key string
	if d == sqldialect.SQLite {
		if key, err = sqldata.RowKey(ctx, db, d, t.Name); err != nil {
			return nil, err
		}
	}
	tg := &Target{db: db, d: d, table: t, kind: k}
	if d == sqldialect.Postgres {
		err := db.QueryRowContext(ctx, `SELECT c.relkind = 'p' FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = $1`, t.Name).Scan(&tg.partitioned)
		if err != nil {
			return nil, fmt.Errorf("sqltarget: reading the catalog for table %q: %w", t.Name, err)
		}
	}
	tg.table.Anonymise = slices.Clone(t.Anonymise)
	tg.q.table = d.Quote(t.Name)
	tg.q.time = tg.q.table + "." + d.Quote(t.TimeColumn)
	switch {
	case d == sqldialect.Postgres:
		// Rows are picked by ctid, which the executor fetches directly
		// (a TID scan) instead of probing the key's index again, and
		// which every table has.
		tg.q.key = tg.q.table + ".ctid"
	case key == "rowid":
		tg.q.key = "rowid"
	default:
		tg.q.key = tg.q.table + "." + d.Quote(key)
	}
	if t.SubjectColumn != "" {
		tg.q.subject = tg.q.table + "." + d.Quote(t.SubjectColumn)
		sets := []string{d.Quote(t.SubjectColumn) + " = NULL"}
		for _, c := range t.Anonymise {
			sets = append(sets, d.Quote(c)+" = NULL")
		}
		tg.q.sets = strings.Join(sets, ", ")
	}
	return tg, nil
}

func describeType(decl string) string {
	if decl == "" {
		return "declared without a type"
	}
	return strconv.Quote(decl)
}

// holds is the set of users under legal hold that a sweep passes, and
// those of them found owning rows of the table so far.
type holds struct {
	ids     []string
	set     map[string]struct{}
	digest  string   // names the list in PostgreSQL's temporary table
	learned []string // guarded by Target.mu
}

func (h *holds) has(id string) bool { _, ok := h.set[id]; return ok }

// holdSet returns exclude as a set, or nil when there is nothing to
// exclude. The set of the last list is kept, so the batches of one sweep
// (which pass the same list every time) build it once, and what they
// learn about which held users own rows carries over.
func (t *Target) holdSet(exclude []string) *holds {
	if t.q.subject == "" || len(exclude) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held != nil && slices.Equal(t.held.ids, exclude) {
		return t.held
	}
	h := &holds{ids: slices.Clone(exclude), set: make(map[string]struct{}, len(exclude))}
	sum := sha256.New()
	for _, id := range exclude {
		h.set[id] = struct{}{}
		sum.Write([]byte(id))
		sum.Write([]byte{0})
	}
	h.digest = "sha256:" + hex.EncodeToString(sum.Sum(nil))
	t.held = h
	return h
}

// learned returns the held users known to own rows.
func (t *Target) learned(h *holds) []string {
	if h == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return h.learned
}

// learn adds held users found owning rows.
func (t *Target) learn(h *holds, ids []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(h.learned, id) {
			h.learned = append(slices.Clip(h.learned), id)
		}
	}
}

// holdFilter returns the SQL condition that leaves out rows of the held
// users, passed as one array parameter (PostgreSQL) or one JSON array
// (SQLite), and its argument.
func (t *Target) holdFilter(exclude []string) (string, any, error) {
	if t.d == sqldialect.Postgres {
		return " AND (" + t.q.subject + " IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(CAST(? AS text[])) AS held(id) WHERE held.id = " + t.q.subject + "::text))", exclude, nil
	}
	b, err := json.Marshal(exclude)
	if err != nil {
		return "", nil, err
	}
	return " AND (" + t.q.subject + " IS NULL OR CAST(" + t.q.subject + " AS TEXT) NOT IN (SELECT value FROM json_each(?)))", string(b), nil
}

func (t *Target) count(ctx context.Context, cutoff time.Time, exclude []string, identified bool) (int, error) {
	cutoff = cutoff.UTC()
	fail := func(err error) (int, error) {
		return 0, fmt.Errorf("sqltarget: counting %s: %w", t.table.Name, err)
	}
	var cond strings.Builder
	var args []any
	if identified && t.q.subject != "" {
		cond.WriteString(" AND " + t.q.subject + " IS NOT NULL")
	}
	held := t.holdSet(exclude)
	if held != nil {
		f, arg, err := t.holdFilter(exclude)
		if err != nil {
			return fail(err)
		}
		cond.WriteString(f)
		args = append(args, arg)
	}
	if err := t.numbersOnly(ctx); err != nil {
		return fail(err)
	}
	if t.kind != kindText {
		var n int
		q := "SELECT COUNT(*) FROM " + t.q.table + " WHERE " + t.q.time + " < ?" + cond.String()
		if err := t.db.QueryRowContext(ctx, t.d.Rebind(q), append([]any{t.bound(cutoff)}, args...)...).Scan(&n); err != nil {
			return fail(err)
		}
		return n, nil
	}
	// Text times: dates below low are past the cutoff whatever their
	// offset and are counted by the database; the few days between low
	// and high are read and compared as instants here, and so is every
	// value below low that is not text beginning with a date (SQLite
	// sorts integers and reals before any text, and text such as
	// "1700000000" before every date): Purge fails on such a row, so
	// Count fails too rather than count it as expired.
	low, high := textBounds(cutoff)
	dated := "typeof(" + t.q.time + ") = 'text' AND " + t.q.time + " GLOB '" + dateGlob + "'"
	var n int
	q := "SELECT COUNT(*) FROM " + t.q.table + " WHERE " + t.q.time + " < ? AND " + dated + cond.String()
	if err := t.db.QueryRowContext(ctx, q, append([]any{low}, args...)...).Scan(&n); err != nil {
		return fail(err)
	}
	subject := "NULL"
	if t.q.subject != "" {
		subject = "CAST(" + t.q.subject + " AS TEXT)"
	}
	q = "SELECT typeof(" + t.q.time + "), CAST(" + t.q.time + " AS TEXT), " + subject + " FROM " + t.q.table +
		" WHERE " + t.q.time + " < ? AND (" + t.q.time + " >= ? OR NOT (" + dated + "))"
	if identified && t.q.subject != "" {
		q += " AND " + t.q.subject + " IS NOT NULL"
	}
	rows, err := t.db.QueryContext(ctx, q, high, low)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var at, subj sql.NullString
		if err := rows.Scan(&typ, &at, &subj); err != nil {
			return fail(err)
		}
		expired, err := t.textExpired(typ, at.String, cutoff)
		if err != nil {
			return fail(err)
		}
		if expired && !(subj.Valid && held != nil && held.has(subj.String)) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return n, nil
}

// numbersOnly fails, for a column of integers on SQLite, when a row holds
// text or a blob there (the driver's rendering of a time.Time, say):
// SQLite sorts those after every number, so no cutoff would ever reach
// them and they would be kept for ever, unseen. The probe walks the time
// column's index from its first text value, so it costs one lookup.
func (t *Target) numbersOnly(ctx context.Context) error {
	if t.d != sqldialect.SQLite || t.kind != kindInteger {
		return nil
	}
	var typ string
	err := t.db.QueryRowContext(ctx, "SELECT typeof("+t.q.time+") FROM "+t.q.table+" WHERE "+t.q.time+" >= '' LIMIT 1").Scan(&typ)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: column %q of a row holds %s, not a number of %v since 1970 as Table.Epoch says (SQLite sorts it after every number, so no cutoff reaches it)",
		ErrUnreadableTime, t.table.TimeColumn, article(typ), t.table.Epoch)
}

// textExpired reads one text time (SQLite's typeof and its text) and
// says whether it is before cutoff.
func (t *Target) textExpired(typ, s string, cutoff time.Time) (bool, error) {
	if typ != "text" {
		return false, fmt.Errorf("%w: column %q of a row holds %s, not text", ErrUnreadableTime, t.table.TimeColumn, article(typ))
	}
	at, ok := t.text.parse(s)
	if !ok {
		return false, fmt.Errorf("%w: column %q of a row holds text (%d bytes) that is in none of the time formats sqltarget reads (see its package doc)", ErrUnreadableTime, t.table.TimeColumn, len(s))
	}
	return at.Before(cutoff), nil
}

func article(typ string) string {
	if typ == "integer" {
		return "an integer"
	}
	return "a " + typ
}

// Count implements retention.Target.
func (t *Target) Count(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	return t.count(ctx, olderThan, exclude, false)
}

// CountIdentified implements retention.Anonymiser.
func (t *Target) CountIdentified(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	return t.count(ctx, olderThan, exclude, t.q.subject != "")
}

// Purge implements retention.Target: one DELETE of at most limit rows,
// in a transaction that commits only once the statement's results have
// been read.
func (t *Target) Purge(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	return t.batch(ctx, "purge", olderThan, limit, exclude, false)
}

// Anonymise implements retention.Anonymiser: one UPDATE of at most limit
// identified rows, setting the subject and Table.Anonymise columns to
// NULL.
func (t *Target) Anonymise(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	if t.q.subject == "" {
		return 0, fmt.Errorf("%w: table %q has no SubjectColumn to anonymise", ErrInvalidTable, t.table.Name)
	}
	return t.batch(ctx, "anonymise", olderThan, limit, exclude, true)
}

func (t *Target) batch(ctx context.Context, verb string, cutoff time.Time, limit int, exclude []string, identified bool) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqltarget: %s %s: limit must be positive", verb, t.table.Name)
	}
	cutoff = cutoff.UTC()
	held := t.holdSet(exclude)
	var n int
	err := t.numbersOnly(ctx)
	switch {
	case err != nil:
	case t.kind == kindText:
		n, err = t.windowed(ctx, verb, cutoff, limit, held, identified)
	default:
		n, err = t.direct(ctx, verb, cutoff, limit, held, identified, false)
	}
	if err != nil {
		return 0, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	return n, nil
}

func (t *Target) cursor(cutoff time.Time, window bool) (cursor, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.cursors[cutoff]
	return c, ok && c.window == window
}

func (t *Target) setCursor(cutoff time.Time, c cursor, keep bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !keep {
		delete(t.cursors, cutoff)
		return
	}
	if t.cursors == nil {
		t.cursors = map[time.Time]cursor{}
	}
	t.cursors[cutoff] = c
}

// head writes "DELETE FROM t" or "UPDATE t SET ...".
func (t *Target) head(verb string) string {
	if verb == "purge" {
		return "DELETE FROM " + t.q.table
	}
	return "UPDATE " + t.q.table + " SET " + t.q.sets
}

// direct purges one batch with one statement that picks the oldest
// expired rows through the time column's index, for columns whose
// storage compares exactly with the cutoff.
//
// Held users are left out so that 100,000 holds cost a batch little more
// than none. On PostgreSQL the list goes, once per connection and list,
// into a temporary table (see heldTable), which the statement probes by
// index for each row it picks. On SQLite the batch reads its rows' keys
// and subjects first and changes them by key; the statement leaves out
// the held users already known to own rows of the table (one JSON array
// parameter), and when a row read belongs to a held user after all, the
// batch is rolled back, that user is added to the known ones and the
// batch is read again: each held user who owns expired rows costs one
// rolled-back batch per Target and list of holds.
func (t *Target) direct(ctx context.Context, verb string, cutoff time.Time, limit int, held *holds, identified, again bool) (int, error) {
	c, hasCursor := t.cursor(cutoff, false)
	hasCursor = hasCursor && !again
	for {
		n, newest, caught, err := t.directOnce(ctx, verb, cutoff, limit, held, identified, c, hasCursor)
		if err != nil {
			return 0, err
		}
		if len(caught) > 0 {
			t.learn(held, caught)
			continue
		}
		t.setCursor(cutoff, cursor{at: newest}, n == limit && newest != nil)
		if n == 0 && hasCursor && !again {
			// Nothing left past the cursor: scan once more from the start
			// before reporting that nothing is left at all.
			return t.direct(ctx, verb, cutoff, limit, held, identified, true)
		}
		return n, nil
	}
}

// directOnce runs one direct batch in a transaction. When a changed row
// belongs to a held user it rolls back and returns those users in caught.
func (t *Target) directOnce(ctx context.Context, verb string, cutoff time.Time, limit int, held *holds, identified bool, c cursor, hasCursor bool) (n int, newest any, caught []string, err error) {
	cond := t.q.time + " < ?"
	args := []any{t.bound(cutoff)}
	if identified {
		cond += " AND " + t.q.subject + " IS NOT NULL"
	}
	if hasCursor {
		cond += " AND " + t.q.time + " >= ?"
		args = append(args, c.at)
	}
	if known := t.learned(held); len(known) > 0 && t.d == sqldialect.SQLite {
		f, arg, err := t.holdFilter(known)
		if err != nil {
			return 0, nil, nil, err
		}
		cond += f
		args = append(args, arg)
	}
	if held != nil && t.d == sqldialect.Postgres {
		// A scalar subquery, probed by index for each row; NOT EXISTS
		// here would be planned as a hash of every hold, built again by
		// every batch. (COALESCE rather than IS NULL keeps the planner's
		// estimate of how many rows pass sane.)
		cond += " AND (" + t.q.subject + " IS NULL OR COALESCE((SELECT false FROM " + heldTable + " AS held WHERE held.id = " + t.q.subject + "::text), true))"
	}
	sub := "SELECT " + t.q.key + " FROM " + t.q.table + " WHERE " + cond + " ORDER BY " + t.q.time + " LIMIT " + strconv.Itoa(limit)
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	defer tx.Rollback()
	switch {
	case t.d == sqldialect.Postgres && t.partitioned:
		if held != nil {
			if err := loadHeld(ctx, tx, held); err != nil {
				return 0, nil, nil, err
			}
		}
		n, newest, err = t.partitionedBatch(ctx, tx, verb, cond, args, limit)
		if err != nil {
			return 0, nil, nil, err
		}
	case t.d == sqldialect.Postgres:
		if held != nil {
			if err := loadHeld(ctx, tx, held); err != nil {
				return 0, nil, nil, err
			}
		}
		// An array built once by an init plan makes PostgreSQL fetch the
		// batch's rows by ctid; "IN (SELECT ...)" can plan a join.
		q := "WITH done AS (" + t.head(verb) + " WHERE " + t.q.key + " = ANY(ARRAY(" + sub + ")) RETURNING " + t.q.time + " AS at) SELECT count(*), max(at) FROM done"
		if err := tx.QueryRowContext(ctx, t.d.Rebind(q), args...).Scan(&n, &newest); err != nil {
			return 0, nil, nil, err
		}
	case held != nil:
		// SQLite, with holds: read the batch's keys and subjects, then
		// change those rows by key; the write transaction keeps other
		// writers out in between.
		pick := "SELECT " + t.q.key + ", " + t.q.time + ", CAST(" + t.q.subject + " AS TEXT) FROM " + t.q.table + " WHERE " + cond + " ORDER BY " + t.q.time + " LIMIT " + strconv.Itoa(limit)
		rows, err := tx.QueryContext(ctx, pick, args...)
		if err != nil {
			return 0, nil, nil, err
		}
		var keys []any
		for rows.Next() {
			var k, at any
			var subject sql.NullString
			if err := rows.Scan(&k, &at, &subject); err != nil {
				rows.Close()
				return 0, nil, nil, err
			}
			keys = append(keys, k)
			if newest == nil || less(newest, at) {
				newest = at
			}
			if subject.Valid && held.has(subject.String) && !slices.Contains(caught, subject.String) {
				caught = append(caught, subject.String)
			}
		}
		if err := rows.Close(); err != nil {
			return 0, nil, nil, err
		}
		if err := rows.Err(); err != nil {
			return 0, nil, nil, err
		}
		if len(caught) > 0 || len(keys) == 0 {
			break
		}
		list, err := keyList(keys)
		if err != nil {
			return 0, nil, nil, err
		}
		res, err := tx.ExecContext(ctx, t.head(verb)+" WHERE "+t.q.key+" IN (SELECT value FROM json_each(?))", string(list))
		if err != nil {
			return 0, nil, nil, err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return 0, nil, nil, err
		}
		n = int(affected)
	default:
		rows, err := tx.QueryContext(ctx, t.head(verb)+" WHERE "+t.q.key+" IN ("+sub+") RETURNING "+t.q.time, args...)
		if err != nil {
			return 0, nil, nil, err
		}
		for rows.Next() {
			var at any
			if err := rows.Scan(&at); err != nil {
				rows.Close()
				return 0, nil, nil, err
			}
			n++
			if newest == nil || less(newest, at) {
				newest = at
			}
		}
		if err := rows.Close(); err != nil {
			return 0, nil, nil, err
		}
		if err := rows.Err(); err != nil {
			return 0, nil, nil, err
		}
	}
	if len(caught) > 0 {
		return 0, nil, caught, nil // rolled back by the deferred Rollback
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, nil, err
	}
	return n, newest, nil, nil
}

// partitionedBatch changes one batch of a partitioned table: a ctid only
// names a row within its partition, so the batch's rows are read (and
// locked, so none changes or frees its ctid meanwhile) with their
// partition, then changed partition by partition.
func (t *Target) partitionedBatch(ctx context.Context, tx *sql.Tx, verb, cond string, args []any, limit int) (int, any, error) {
	q := "SELECT " + t.q.table + ".tableoid::regclass::text, " + t.q.key + "::text, " + t.q.time + " FROM " + t.q.table +
		" WHERE " + cond + " ORDER BY " + t.q.time + " LIMIT " + strconv.Itoa(limit) + " FOR UPDATE"
	rows, err := tx.QueryContext(ctx, t.d.Rebind(q), args...)
	if err != nil {
		return 0, nil, err
	}
	var parts []string
	ctids := map[string][]string{}
	var newest any
	for rows.Next() {
		var part, ctid string
		var at any
		if err := rows.Scan(&part, &ctid, &at); err != nil {
			rows.Close()
			return 0, nil, err
		}
		if _, ok := ctids[part]; !ok {
			parts = append(parts, part)
		}
		ctids[part] = append(ctids[part], ctid)
		if newest == nil || less(newest, at) {
			newest = at
		}
	}
	if err := rows.Close(); err != nil {
		return 0, nil, err
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	n := 0
	for _, part := range parts {
		// part is the partition's name as regclass prints it: quoted where
		// needed by the server, never text from outside.
		head := "DELETE FROM ONLY " + part
		if verb != "purge" {
			head = "UPDATE ONLY " + part + " SET " + t.q.sets
		}
		res, err := tx.ExecContext(ctx, head+" WHERE ctid = ANY(CAST($1 AS tid[]))", `{"`+strings.Join(ctids[part], `","`)+`"}`)
		if err != nil {
			return 0, nil, err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return 0, nil, err
		}
		n += int(affected)
	}
	return n, newest, nil
}

// heldTable is the temporary table that carries the held users' IDs to
// PostgreSQL: one per connection (and so per server session), with the
// list's digest as its comment, loaded again when a sweep passes another
// list. A temporary table is private to its session and goes with it.
const heldTable = "pg_temp.steward_sqltarget_holds"

// loadHeld makes sure the connection of tx has h in heldTable. It also
// turns JIT compilation off for the transaction: the per-row probes make
// the planner's cost estimate large enough to compile the statement,
// which takes far longer than running it.
func loadHeld(ctx context.Context, tx *sql.Tx, h *holds) error {
	var jit string
	var have sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT set_config('jit', 'off', true), obj_description(to_regclass('`+heldTable+`'), 'pg_class')`).Scan(&jit, &have); err != nil {
		return fmt.Errorf("reading the holds table: %w", err)
	}
	if have.Valid && have.String == h.digest {
		return nil
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`CREATE TEMPORARY TABLE IF NOT EXISTS steward_sqltarget_holds (id text NOT NULL)`, nil},
		// A hash index probes in about half the time of a B-tree.
		{`CREATE INDEX IF NOT EXISTS steward_sqltarget_holds_id ON ` + heldTable + ` USING hash (id)`, nil},
		{`TRUNCATE ` + heldTable, nil},
		{`INSERT INTO ` + heldTable + ` (id) SELECT unnest(CAST($1 AS text[]))`, []any{h.ids}},
		// The digest is hex and a fixed prefix, safe as a literal.
		{`COMMENT ON TABLE ` + heldTable + ` IS '` + h.digest + `'`, nil},
		{`ANALYZE ` + heldTable, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("loading the holds table: %w", err)
		}
	}
	return nil
}

// windowed purges one batch of SQLite text times, which only the
// process can compare as instants: read candidate rows (those before
// the date the cutoff cannot be past whatever their offset) in (time,
// key) order, a window of limit rows at a time, keep those that are
// expired and not held until limit are kept or the candidates run out,
// and delete or anonymise those by key, all in one transaction. Held and
// not-yet-expired rows stay, behind the cursor, so the next batch does
// not read them again.
func (t *Target) windowed(ctx context.Context, verb string, cutoff time.Time, limit int, held *holds, identified bool) (int, error) {
	from, hasFrom := t.cursor(cutoff, true)
	restarted := false
	for {
		n, last, ended, err := t.window(ctx, verb, cutoff, limit, held, identified, from, hasFrom)
		if err != nil {
			return 0, err
		}
		t.setCursor(cutoff, last, !ended)
		if n > 0 || !ended || !hasFrom || restarted {
			return n, nil
		}
		// Nothing left past the cursor: scan once from the start before
		// reporting that nothing is left at all.
		restarted, from, hasFrom = true, cursor{}, false
	}
}

// window does one windowed batch starting after from, and returns how
// many rows it changed, the cursor after the last row it read, and
// whether it read every candidate left. SQLite's write transaction keeps
// other writers out between the reads and the write.
func (t *Target) window(ctx context.Context, verb string, cutoff time.Time, limit int, held *holds, identified bool, from cursor, hasFrom bool) (n int, last cursor, ended bool, err error) {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, cursor{}, false, err
	}
	defer tx.Rollback()
	var keys []any
	for {
		if err := ctx.Err(); err != nil {
			return 0, cursor{}, false, err
		}
		var read int
		keys, read, last, err = t.read(ctx, tx, cutoff, limit, held, identified, from, hasFrom, keys)
		if err != nil {
			return 0, cursor{}, false, err
		}
		if read < limit {
			ended = true
			break
		}
		if len(keys) == limit {
			break
		}
		from, hasFrom = last, true
	}
	if len(keys) > 0 {
		list, err := keyList(keys)
		if err != nil {
			return 0, cursor{}, false, err
		}
		res, err := tx.ExecContext(ctx, t.head(verb)+" WHERE "+t.q.key+" IN (SELECT value FROM json_each(?))", string(list))
		if err != nil {
			return 0, cursor{}, false, err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return 0, cursor{}, false, err
		}
		n = int(affected)
	}
	if err := tx.Commit(); err != nil {
		return 0, cursor{}, false, err
	}
	return n, last, ended, nil
}

// read reads up to limit candidate rows after from and appends the keys
// of those to change to keys, stopping once keys holds limit. It returns
// the keys, how many rows it read and the cursor after the last.
func (t *Target) read(ctx context.Context, tx *sql.Tx, cutoff time.Time, limit int, held *holds, identified bool, from cursor, hasFrom bool, keys []any) ([]any, int, cursor, error) {
	subject := "NULL"
	if t.q.subject != "" {
		subject = "CAST(" + t.q.subject + " AS TEXT)"
	}
	cond := t.q.time + " < ?"
	args := []any{t.bound(cutoff)}
	if identified {
		cond += " AND " + t.q.subject + " IS NOT NULL"
	}
	if hasFrom {
		cond += " AND " + t.q.time + " >= ? AND (" + t.q.time + " > ? OR " + t.q.key + " > ?)"
		args = append(args, from.at, from.at, from.key)
	}
	q := "SELECT " + t.q.key + ", typeof(" + t.q.time + "), CAST(" + t.q.time + " AS TEXT), " + subject + " FROM " + t.q.table +
		" WHERE " + cond + " ORDER BY " + t.q.time + ", " + t.q.key + " LIMIT " + strconv.Itoa(limit)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, cursor{}, err
	}
	defer rows.Close()
	read := 0
	var last cursor
	for len(keys) < limit && rows.Next() {
		var k any
		var typ string
		var at, subj sql.NullString
		if err := rows.Scan(&k, &typ, &at, &subj); err != nil {
			return nil, 0, cursor{}, err
		}
		read++
		last = cursor{window: true, at: at.String, key: k}
		expired, err := t.textExpired(typ, at.String, cutoff)
		if err != nil {
			return nil, 0, cursor{}, err
		}
		if !expired || (subj.Valid && held != nil && held.has(subj.String)) {
			continue
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, cursor{}, err
	}
	if len(keys) == limit {
		// Stopped early: the window did not run out, whatever it read.
		read = limit
	}
	return keys, read, last, nil
}

// keyList writes SQLite row keys as a JSON array for json_each.
func keyList(keys []any) ([]byte, error) {
	for _, k := range keys {
		switch k.(type) {
		case int64, string:
		default:
			return nil, fmt.Errorf("%w: the table's key holds %T values, which sqltarget cannot pass back", ErrInvalidTable, k)
		}
	}
	return json.Marshal(keys)
}
