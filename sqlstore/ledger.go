package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/stewardlabs/steward/privacy"
)

// Ledger is the privacy.Ledger over the table steward_privacy_ledger
// (migration 0012): one row per erased user, keyed by a keyed pseudonym,
// never a user ID. Its entries must outlive a restore of the data they
// protect: give privacy.WithLedger a Ledger of a database that is not
// restored with the application's tables (a second SQLite file, another
// PostgreSQL database), or copy the table out before a restore and back
// in after. [Requests] is a Ledger over its own database too. Get one
// with [Store.Ledger]; it is safe for concurrent use by any number of
// processes.
type Ledger struct {
	db *sql.DB
	d  Dialect
}

var _ privacy.Ledger = (*Ledger)(nil)

// Ledger returns the privacy.Ledger over this database. Run
// [Store.Migrate] first.
func (s *Store) Ledger() *Ledger { return &Ledger{db: s.db, d: s.dialect} }

func (l *Ledger) timeArg(t time.Time) any { return (&Requests{d: l.d}).timeArg(t) }

// RecordErased implements privacy.Ledger with one upsert.
func (l *Ledger) RecordErased(ctx context.Context, e privacy.LedgerEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	q := l.d.Rebind(`INSERT INTO steward_privacy_ledger (subject, key_id, request_id, erased_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET key_id = excluded.key_id, request_id = excluded.request_id, erased_at = excluded.erased_at`)
	if _, err := l.db.ExecContext(ctx, q, e.Subject, e.KeyID, e.RequestID, l.timeArg(e.ErasedAt)); err != nil {
		return fmt.Errorf("sqlstore: recording an erasure in the ledger: %w", err)
	}
	return nil
}

// FindErased implements privacy.Ledger.
func (l *Ledger) FindErased(ctx context.Context, subjects ...string) (privacy.LedgerEntry, bool, error) {
	if len(subjects) == 0 {
		return privacy.LedgerEntry{}, false, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(subjects)), ", ")
	args := make([]any, len(subjects))
	for i, s := range subjects {
		args[i] = s
	}
	rows, err := l.db.QueryContext(ctx, l.d.Rebind(`SELECT subject, key_id, request_id, erased_at FROM steward_privacy_ledger
		WHERE subject IN (`+marks+`)`), args...)
	if err != nil {
		return privacy.LedgerEntry{}, false, fmt.Errorf("sqlstore: reading the ledger: %w", err)
	}
	defer rows.Close()
	found := map[string]privacy.LedgerEntry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return privacy.LedgerEntry{}, false, err
		}
		found[e.Subject] = e
	}
	if err := rows.Err(); err != nil {
		return privacy.LedgerEntry{}, false, fmt.Errorf("sqlstore: reading the ledger: %w", err)
	}
	for _, s := range subjects {
		if e, ok := found[s]; ok {
			return e, true, nil
		}
	}
	return privacy.LedgerEntry{}, false, nil
}

// ListErased implements privacy.Ledger, reading rows as it yields.
func (l *Ledger) ListErased(ctx context.Context) iter.Seq2[privacy.LedgerEntry, error] {
	return func(yield func(privacy.LedgerEntry, error) bool) {
		rows, err := l.db.QueryContext(ctx, `SELECT subject, key_id, request_id, erased_at FROM steward_privacy_ledger ORDER BY subject`)
		if err != nil {
			yield(privacy.LedgerEntry{}, fmt.Errorf("sqlstore: reading the ledger: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				yield(privacy.LedgerEntry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(privacy.LedgerEntry{}, fmt.Errorf("sqlstore: reading the ledger: %w", err))
		}
	}
}

func scanEntry(row rowScanner) (privacy.LedgerEntry, error) {
	var e privacy.LedgerEntry
	if err := row.Scan(&e.Subject, &e.KeyID, &e.RequestID, scanTime{&e.ErasedAt}); err != nil {
		return privacy.LedgerEntry{}, fmt.Errorf("sqlstore: reading the ledger: %w", err)
	}
	return e, nil
}

// RecordErased implements privacy.Ledger over this database's ledger.
func (r *Requests) RecordErased(ctx context.Context, e privacy.LedgerEntry) error {
	return (&Ledger{db: r.db, d: r.d}).RecordErased(ctx, e)
}

// FindErased implements privacy.Ledger over this database's ledger.
func (r *Requests) FindErased(ctx context.Context, subjects ...string) (privacy.LedgerEntry, bool, error) {
	return (&Ledger{db: r.db, d: r.d}).FindErased(ctx, subjects...)
}

// ListErased implements privacy.Ledger over this database's ledger.
func (r *Requests) ListErased(ctx context.Context) iter.Seq2[privacy.LedgerEntry, error] {
	return (&Ledger{db: r.db, d: r.d}).ListErased(ctx)
}

// finishedStatuses are the statuses of privacy.Status.Finished, for SQL.
const finishedStatuses = `('completed', 'cancelled', 'expired')`

// CountFinished implements privacy.RequestPurger.
func (r *Requests) CountFinished(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := r.db.QueryRowContext(ctx, r.d.Rebind(`SELECT COUNT(*) FROM steward_privacy_requests
		WHERE status IN `+finishedStatuses+` AND completed_at IS NOT NULL AND completed_at < ?`), r.timeArg(before)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: counting finished requests: %w", err)
	}
	return n, nil
}

// PurgeFinished implements privacy.RequestPurger with one DELETE of at
// most limit rows, oldest first.
func (r *Requests) PurgeFinished(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("%w: limit %d is less than 1", privacy.ErrInvalidRequest, limit)
	}
	res, err := r.db.ExecContext(ctx, r.d.Rebind(`DELETE FROM steward_privacy_requests WHERE id IN (
		SELECT id FROM steward_privacy_requests
		WHERE status IN `+finishedStatuses+` AND completed_at IS NOT NULL AND completed_at < ?
		ORDER BY completed_at, id LIMIT ?)`), r.timeArg(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purging finished requests: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purging finished requests: %w", err)
	}
	return int(n), nil
}
