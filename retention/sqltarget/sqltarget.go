// Package sqltarget is a retention.Target over an application's own SQL
// table (PostgreSQL or SQLite): declare the table, its time column and,
// optionally, the column holding the user ID, and expired rows are purged
// or anonymised in bounded batches, each statement its own short
// transaction.
//
// Names are checked against the database's catalog when the Target is
// made (with privacy/sqldata's ValidateIdentifiers) and always quoted;
// times, limits and user IDs are bind parameters.
//
// # Performance
//
// On PostgreSQL each batch picks its rows through an index on the time
// column (create one) and deletes them by ctid, continuing where the last
// batch ended. Purging 5,000,000 expired rows of a 10,000,000-row table
// in batches of 2,000 ran at about a million rows a second with a median
// batch of 1.5 ms (benchmarks/README.md). A batch that meets the sync
// phase of a checkpoint can wait for it, about 100 ms on a small server;
// a larger max_wal_size makes such checkpoints rarer.
//
// # Errors
//
// New returns sqldata's *DeclarationError for a missing table or column
// and ErrInvalidTable for an incomplete declaration; Count, Purge and
// Anonymise return the database's errors, wrapped.
package sqltarget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqldialect"
)

// ErrInvalidTable is wrapped by errors about an incomplete Table.
var ErrInvalidTable = errors.New("sqltarget: invalid table")

// Table declares the table a Target purges.
type Table struct {
	// Name of the table, e.g. "activity_log".
	Name string
	// TimeColumn holds when the row was made; rows older than the
	// policy's cutoff expire.
	TimeColumn string
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
	q     struct{ table, time, subject, key string }

	// mu guards cursors: per cutoff, the newest time a purge batch has
	// reached. Later batches of the same sweep start there instead of
	// walking again over the index entries of rows already deleted,
	// which would make each batch slower than the last. It is only a
	// hint: a short batch clears it and the next call scans from the
	// start, so rows inserted behind the cursor are not missed.
	mu      sync.Mutex
	cursors map[time.Time]time.Time
}

var _ retention.Anonymiser = (*Target)(nil)

// New checks the declaration against the database and returns its Target.
func New(ctx context.Context, db *sql.DB, d sqldialect.Dialect, t Table) (*Target, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: db is nil", ErrInvalidTable)
	}
	if err := d.Validate(); err != nil {
		return nil, err
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
	key, err := sqldata.RowKey(ctx, db, d, t.Name)
	if err != nil {
		return nil, err
	}
	tg := &Target{db: db, d: d, table: t}
	tg.q.table = sqldata.QuoteIdent(d, t.Name)
	tg.q.time = sqldata.QuoteIdent(d, t.TimeColumn)
	tg.q.key = key
	if key != "rowid" {
		tg.q.key = sqldata.QuoteIdent(d, key)
	}
	if t.SubjectColumn != "" {
		tg.q.subject = sqldata.QuoteIdent(d, t.SubjectColumn)
	}
	return tg, nil
}

// where builds the condition for expired rows and its arguments.
func (t *Target) where(olderThan time.Time, exclude []string, identifiedOnly bool) (string, []any) {
	var b strings.Builder
	args := []any{olderThan.UTC()}
	b.WriteString(t.q.time + " < ?")
	if t.q.subject != "" {
		if identifiedOnly {
			b.WriteString(" AND " + t.q.subject + " IS NOT NULL")
		}
		if len(exclude) > 0 {
			b.WriteString(" AND (" + t.q.subject + " IS NULL OR " + t.q.subject + " NOT IN (")
			for i, id := range exclude {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("?")
				args = append(args, id)
			}
			b.WriteString("))")
		}
	}
	return b.String(), args
}

func (t *Target) count(ctx context.Context, olderThan time.Time, exclude []string, identified bool) (int, error) {
	cond, args := t.where(olderThan, exclude, identified)
	var n int
	err := t.db.QueryRowContext(ctx, t.d.Rebind("SELECT COUNT(*) FROM "+t.q.table+" WHERE "+cond), args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqltarget: counting %s: %w", t.table.Name, err)
	}
	return n, nil
}

// Count implements retention.Target.
func (t *Target) Count(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	return t.count(ctx, olderThan, exclude, false)
}

// CountIdentified implements retention.Anonymiser.
func (t *Target) CountIdentified(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	if t.q.subject == "" {
		return t.count(ctx, olderThan, exclude, false)
	}
	return t.count(ctx, olderThan, exclude, true)
}

func (t *Target) batch(ctx context.Context, verb string, olderThan time.Time, limit int, exclude []string, identified bool) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqltarget: %s %s: limit must be positive", verb, t.table.Name)
	}
	olderThan = olderThan.UTC()
	cond, args := t.where(olderThan, exclude, identified)
	t.mu.Lock()
	from, hasCursor := t.cursors[olderThan]
	t.mu.Unlock()
	if hasCursor {
		cond += " AND " + t.q.time + " >= ?"
		args = append(args, from)
	}
	// On PostgreSQL rows are picked by ctid, which the executor fetches
	// directly (a TID scan) instead of probing the key's index again; a
	// row that moved meanwhile is simply left for a later batch.
	key, pick := t.q.key, " IN ("
	if t.d == sqldialect.Postgres {
		key, pick = "ctid", " = ANY(ARRAY("
	}
	sub := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT %d", key, t.q.table, cond, t.q.time, limit)
	closing := ")"
	if t.d == sqldialect.Postgres {
		closing = "))"
	}
	var stmt string
	if verb == "purge" {
		stmt = "DELETE FROM " + t.q.table + " WHERE " + key + pick + sub + closing
	} else {
		sets := []string{t.q.subject + " = NULL"}
		for _, c := range t.table.Anonymise {
			sets = append(sets, sqldata.QuoteIdent(t.d, c)+" = NULL")
		}
		stmt = "UPDATE " + t.q.table + " SET " + strings.Join(sets, ", ") + " WHERE " + key + pick + sub + closing
	}
	rows, err := t.db.QueryContext(ctx, t.d.Rebind(stmt+" RETURNING "+t.q.time), args...)
	if err != nil {
		return 0, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	n := 0
	var newest time.Time
	for rows.Next() {
		var at scanTime
		if err := rows.Scan(&at); err != nil {
			rows.Close()
			return n, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
		}
		n++
		if at.t.After(newest) {
			newest = at.t
		}
	}
	if err := rows.Close(); err != nil {
		return n, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	t.mu.Lock()
	if t.cursors == nil {
		t.cursors = map[time.Time]time.Time{}
	}
	if n == limit && !newest.IsZero() {
		t.cursors[olderThan] = newest
	} else {
		delete(t.cursors, olderThan)
	}
	t.mu.Unlock()
	if n == 0 && hasCursor {
		// Nothing left past the cursor: scan once more from the start
		// before reporting that nothing is left at all.
		return t.batch(ctx, verb, olderThan, limit, exclude, identified)
	}
	return n, nil
}

// scanTime reads a time column as either driver returns it: time.Time,
// or text on SQLite.
type scanTime struct{ t time.Time }

func (s *scanTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		s.t = x.UTC()
		return nil
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	case nil:
		s.t = time.Time{}
		return nil
	}
	return fmt.Errorf("cannot read %T as a time", v)
}

func (s *scanTime) parse(x string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, x); err == nil {
			s.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", x)
}

// Purge implements retention.Target: one DELETE of at most limit rows.
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
