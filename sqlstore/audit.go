package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/sqldialect"
)

// AuditSink is the audit.Sink and audit.Reader over the append-only table
// steward_audit_events (migration 0002): one row per event, the sequence
// number as primary key, Details as the canonical JSON text that was hashed
// (audit.CanonicalDetails; TEXT rather than JSONB so the bytes are kept),
// times to the microsecond (SQLite: UTC text in audit.TimeFormat). Triggers
// refuse UPDATE, DELETE (and, on PostgreSQL, TRUNCATE).
//
// A batch is written in one statement on PostgreSQL (INSERT ... SELECT
// FROM unnest of one array per column) and in one transaction of
// multi-row INSERTs on SQLite, so it lands whole or not at all. Sequence
// numbers must fit in a BIGINT (at most math.MaxInt64).
//
// AuditSink is safe for concurrent use. Get one with [Store.AuditSink].
type AuditSink struct {
	db *sql.DB
	d  Dialect
}

var (
	_ audit.Sink     = (*AuditSink)(nil)
	_ audit.Appender = (*AuditSink)(nil)
	_ audit.Reader   = (*AuditSink)(nil)
)

// AuditSink returns the audit sink over this database. Run [Store.Migrate]
// first.
func (s *Store) AuditSink() *AuditSink { return &AuditSink{db: s.db, d: s.dialect} }

const auditColumns = "seq, id, event_type, subject, actor, details, logged_at, key_id, prev_hash, hash"

// auditPage is how many events Events reads per query.
const auditPage = 500

// sqliteAuditRows is how many rows one SQLite INSERT carries (10
// parameters each, well under SQLite's limit of 32766).
const sqliteAuditRows = 200

// Write stores events all or nothing. It returns an error matching
// audit.ErrDuplicateSequence when a sequence number is already stored or
// repeats in events, and audit.ErrInvalidEvent for sequence 0, a sequence
// above math.MaxInt64 or Details that cannot be encoded.
//
// Write stores events whose Sequence, PrevHash and Hash the caller
// assigned; a Logger uses Append instead, which links events to the
// stored chain itself.
func (a *AuditSink) Write(ctx context.Context, events []audit.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: audit write: %w", err)
	}
	if len(events) == 0 {
		return nil
	}
	details := make([]string, len(events))
	for i, e := range events {
		if e.Sequence == 0 || e.Sequence > math.MaxInt64 {
			return fmt.Errorf("%w: sequence %d is outside 1..%d", audit.ErrInvalidEvent, e.Sequence, int64(math.MaxInt64))
		}
		b, err := audit.CanonicalDetails(e.Details)
		if err != nil {
			return fmt.Errorf("%w: sequence %d: Details: %w", audit.ErrInvalidEvent, e.Sequence, err)
		}
		details[i] = string(b)
	}
	err := a.inTx(ctx, func(tx *sql.Tx) error { return a.insert(ctx, tx, events, details) })
	if err == nil {
		return nil
	}
	if isAuditDuplicate(err) {
		return fmt.Errorf("%w: a sequence of %d..%d is already stored or repeats: %v", audit.ErrDuplicateSequence,
			events[0].Sequence, events[len(events)-1].Sequence, err)
	}
	return fmt.Errorf("sqlstore: audit write of sequences %d..%d: %w", events[0].Sequence, events[len(events)-1].Sequence, err)
}

// Append implements audit.Appender: in one transaction it takes the
// chain's lock (PostgreSQL: a transaction-scoped advisory lock keyed on
// the schema; SQLite: the database's write lock, which BEGIN IMMEDIATE
// takes), reads the last stored event, looks up the batch's chosen IDs
// in steward_audit_keys, links the batch after the last event, inserts it
// and commits. The lock is held from reading the head to the commit, so
// any number of Loggers in any number of processes append to one chain.
func (a *AuditSink) Append(ctx context.Context, b *audit.Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: audit append: %w", err)
	}
	if b.Len() == 0 {
		return nil
	}
	err := a.inTx(ctx, func(tx *sql.Tx) error {
		if a.d == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('steward_audit_events:' || current_schema(), 0))`); err != nil {
				return fmt.Errorf("taking the chain's lock: %w", err)
			}
		}
		var (
			seq  int64
			hash string
		)
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM steward_audit_events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading the chain's head: %w", err)
		}
		if keys := b.Keys(); len(keys) > 0 {
			if err := a.markStored(ctx, tx, b, keys); err != nil {
				return err
			}
		}
		b.Link(uint64(seq), hash)
		events := b.Events()
		if len(events) == 0 {
			return nil
		}
		details := make([]string, len(events))
		for i := range events {
			details[i] = string(b.CanonicalDetails(i))
		}
		if err := a.insert(ctx, tx, events, details); err != nil {
			return err
		}
		return a.insertKeys(ctx, tx, b)
	})
	if err != nil {
		return fmt.Errorf("sqlstore: audit append of %v: %w", b, err)
	}
	return nil
}

// markStored tells b which of its chosen IDs are already stored.
func (a *AuditSink) markStored(ctx context.Context, tx *sql.Tx, b *audit.Batch, keys []string) error {
	var rows *sql.Rows
	var err error
	if a.d == Postgres {
		rows, err = tx.QueryContext(ctx, `SELECT id FROM steward_audit_keys WHERE id = ANY($1)`, keys)
	} else {
		rows, err = tx.QueryContext(ctx, `SELECT id FROM steward_audit_keys WHERE id IN (SELECT value FROM json_each(?))`, jsonStrings(keys))
	}
	if err != nil {
		return fmt.Errorf("looking up event IDs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("looking up event IDs: %w", err)
		}
		b.Stored(id)
	}
	return rows.Err()
}

// insertKeys records the chosen IDs of the events b linked.
func (a *AuditSink) insertKeys(ctx context.Context, tx *sql.Tx, b *audit.Batch) error {
	if len(b.Keys()) == 0 {
		return nil
	}
	keyed := map[string]bool{}
	for _, k := range b.Keys() {
		keyed[k] = true
	}
	for _, e := range b.Events() {
		if !keyed[e.ID] {
			continue
		}
		if _, err := tx.ExecContext(ctx, a.d.Rebind(`INSERT INTO steward_audit_keys (id, seq) VALUES (?, ?)`), e.ID, int64(e.Sequence)); err != nil {
			return fmt.Errorf("recording event ID: %w", err)
		}
	}
	return nil
}

// jsonStrings encodes ss as a JSON array, for SQLite's json_each.
func jsonStrings(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

// inTx runs f in a transaction and commits it, or rolls it back when f
// fails.
func (a *AuditSink) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := beginWrite(ctx, a.db, a.d)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// insert adds events to steward_audit_events: one statement on
// PostgreSQL (INSERT ... SELECT FROM unnest of one array per column),
// multi-row INSERTs of sqliteAuditRows on SQLite.
func (a *AuditSink) insert(ctx context.Context, tx *sql.Tx, events []audit.Event, details []string) error {
	if a.d == Postgres {
		return insertPostgres(ctx, tx, events, details)
	}
	return insertSQLite(ctx, tx, events, details)
}

func insertPostgres(ctx context.Context, tx *sql.Tx, events []audit.Event, details []string) error {
	n := len(events)
	var (
		seq                                          = make([]int64, n)
		ids, types, subjects, actors, keys, prev, hs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times                                        = make([]time.Time, n)
	)
	for i, e := range events {
		seq[i], ids[i], types[i], subjects[i], actors[i] = int64(e.Sequence), e.ID, string(e.Type), e.Subject, e.Actor
		times[i], keys[i], prev[i], hs[i] = e.Time.UTC().Truncate(time.Microsecond), e.KeyID, e.PrevHash, e.Hash
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO steward_audit_events ("+auditColumns+") "+
		"SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[])",
		seq, ids, types, subjects, actors, details, times, keys, prev, hs)
	return err
}

func insertSQLite(ctx context.Context, tx *sql.Tx, events []audit.Event, details []string) error {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	args := make([]any, 0, 10*min(len(events), sqliteAuditRows))
	for start := 0; start < len(events); start += sqliteAuditRows {
		chunk := events[start:min(start+sqliteAuditRows, len(events))]
		args = args[:0]
		for i, e := range chunk {
			args = append(args, int64(e.Sequence), e.ID, string(e.Type), e.Subject, e.Actor, details[start+i],
				e.Time.UTC().Format(audit.TimeFormat), e.KeyID, e.PrevHash, e.Hash)
		}
		q := "INSERT INTO steward_audit_events (" + auditColumns + ") VALUES " + row + strings.Repeat(", "+row, len(chunk)-1)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// isAuditDuplicate reports a primary-key or unique violation of either
// driver.
func isAuditDuplicate(err error) bool { return sqldialect.IsUniqueViolation(err) }

// Events yields the stored events with Sequence >= from in order, reading
// auditPage rows per query; no connection is held while the caller
// handles an event. Details come back as json.Number-preserving maps
// (audit.ParseDetails), so the events verify as they were logged.
func (a *AuditSink) Events(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		if from > math.MaxInt64 {
			return
		}
		next := int64(max(from, 1))
		q := a.d.Rebind("SELECT " + auditColumns + " FROM steward_audit_events WHERE seq >= ? ORDER BY seq LIMIT ?")
		for {
			page, err := a.query(ctx, q, next, auditPage)
			if err != nil {
				yield(audit.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
			next = int64(page[len(page)-1].Sequence) + 1
		}
	}
}

// Last returns the event with the highest sequence, or the zero Event.
func (a *AuditSink) Last(ctx context.Context) (audit.Event, error) {
	page, err := a.query(ctx, "SELECT "+auditColumns+" FROM steward_audit_events ORDER BY seq DESC LIMIT 1")
	if err != nil || len(page) == 0 {
		return audit.Event{}, err
	}
	return page[0], nil
}

func (a *AuditSink) query(ctx context.Context, q string, args ...any) ([]audit.Event, error) {
	rows, err := a.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var (
			e       audit.Event
			seq     int64
			typ     string
			details string
			at      auditTime
		)
		if err := rows.Scan(&seq, &e.ID, &typ, &e.Subject, &e.Actor, &details, &at, &e.KeyID, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("sqlstore: reading audit events: %w", err)
		}
		e.Sequence, e.Type, e.Time = uint64(seq), audit.Type(typ), at.t
		if e.Details, err = audit.ParseDetails([]byte(details)); err != nil {
			return nil, fmt.Errorf("sqlstore: reading audit event %d: %w", seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: reading audit events: %w", err)
	}
	return out, nil
}

// auditTime scans logged_at: time.Time from PostgreSQL, text from SQLite.
type auditTime struct{ t time.Time }

func (a *auditTime) Scan(v any) error {
	var s string
	switch x := v.(type) {
	case time.Time:
		a.t = x.UTC()
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return fmt.Errorf("cannot read %T as a time", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	a.t = t.UTC()
	return nil
}
