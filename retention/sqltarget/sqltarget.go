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
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
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
	d     sqlstore.Dialect
	table Table
	q     struct{ table, time, subject, key string }
}

var _ retention.Anonymiser = (*Target)(nil)

// New checks the declaration against the database and returns its Target.
func New(ctx context.Context, db *sql.DB, d sqlstore.Dialect, t Table) (*Target, error) {
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
	cond, args := t.where(olderThan, exclude, identified)
	sub := fmt.Sprintf("SELECT %s FROM %s WHERE %s LIMIT %d", t.q.key, t.q.table, cond, limit)
	var stmt string
	if verb == "purge" {
		stmt = "DELETE FROM " + t.q.table + " WHERE " + t.q.key + " IN (" + sub + ")"
	} else {
		sets := []string{t.q.subject + " = NULL"}
		for _, c := range t.table.Anonymise {
			sets = append(sets, sqldata.QuoteIdent(t.d, c)+" = NULL")
		}
		stmt = "UPDATE " + t.q.table + " SET " + strings.Join(sets, ", ") + " WHERE " + t.q.key + " IN (" + sub + ")"
	}
	res, err := t.db.ExecContext(ctx, t.d.Rebind(stmt), args...)
	if err != nil {
		return 0, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqltarget: %s %s: %w", verb, t.table.Name, err)
	}
	return int(n), nil
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
