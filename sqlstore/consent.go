package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/stewardlabs/steward/consent"
)

// Consent is the consent.Store and consent.Outbox over the tables
// steward_consent_records (append-only: a trigger refuses UPDATE) and
// steward_consent_outbox (migration 0004). Get one with [Store.Consent].
// It is safe for concurrent use.
type Consent struct {
	db *sql.DB
	d  Dialect
}

var (
	_ consent.Store  = (*Consent)(nil)
	_ consent.Outbox = (*Consent)(nil)
)

// Consent returns the consent store over this database. Run
// [Store.Migrate] first.
func (s *Store) Consent() *Consent { return &Consent{db: s.db, d: s.dialect} }

func (c *Consent) q(query string) string { return c.d.Rebind(query) }

// timeArg encodes t for a query in dialect d; the zero time is NULL.
func timeArg(d Dialect, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.Format(sqliteTime)
	}
	return t
}

// Append implements consent.Store: one transaction for the batch.
func (c *Consent) Append(ctx context.Context, records ...consent.Record) error {
	for _, r := range records {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: consent append: %w", err)
	}
	defer tx.Rollback()
	if err := c.insert(ctx, tx, records); err != nil {
		return fmt.Errorf("sqlstore: consent append: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: consent append: %w", err)
	}
	return nil
}

// insert appends validated records inside tx, in order.
func (c *Consent) insert(ctx context.Context, tx *sql.Tx, records []consent.Record) error {
	if len(records) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, c.q(`INSERT INTO steward_consent_records
		(user_id, purpose, granted, policy_version, source, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range records {
		if _, err := stmt.ExecContext(ctx, r.UserID, string(r.Purpose), r.Granted, r.PolicyVersion,
			r.Source, r.Actor, timeArg(c.d, r.Time)); err != nil {
			return err
		}
	}
	return nil
}

const consentPage = 500

// History implements consent.Store. It reads in pages by sequence, so no
// connection is held while the caller handles a record.
func (c *Consent) History(ctx context.Context, userID string) iter.Seq2[consent.Record, error] {
	return c.records(ctx, userID, time.Time{})
}

func (c *Consent) records(ctx context.Context, userID string, until time.Time) iter.Seq2[consent.Record, error] {
	return func(yield func(consent.Record, error) bool) {
		var after int64
		for {
			page, err := c.page(ctx, userID, after, until)
			if err != nil {
				yield(consent.Record{}, err)
				return
			}
			for _, r := range page {
				if !yield(r, nil) {
					return
				}
				after = r.Seq
			}
			if len(page) < consentPage {
				return
			}
		}
	}
}

func (c *Consent) page(ctx context.Context, userID string, after int64, until time.Time) ([]consent.Record, error) {
	query := `SELECT seq, user_id, purpose, granted, policy_version, source, actor, at
		FROM steward_consent_records WHERE user_id = ? AND seq > ?`
	args := []any{userID, after}
	if !until.IsZero() {
		query += ` AND at <= ?`
		args = append(args, timeArg(c.d, until))
	}
	query += fmt.Sprintf(` ORDER BY seq LIMIT %d`, consentPage)
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent history: %w", err)
	}
	out, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent history: %w", err)
	}
	return out, nil
}

// scanRecords reads and closes rows of (seq, user_id, purpose, granted,
// policy_version, source, actor, at).
func scanRecords(rows *sql.Rows) ([]consent.Record, error) {
	defer rows.Close()
	var out []consent.Record
	for rows.Next() {
		var r consent.Record
		var purpose string
		if err := rows.Scan(&r.Seq, &r.UserID, &purpose, &r.Granted, &r.PolicyVersion, &r.Source, &r.Actor, scanTime{&r.Time}); err != nil {
			return nil, err
		}
		r.Purpose = consent.Purpose(purpose)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (c *Consent) fold(ctx context.Context, userID string, until time.Time) (consent.State, error) {
	var all []consent.Record
	for r, err := range c.records(ctx, userID, until) {
		if err != nil {
			return nil, err
		}
		all = append(all, r)
	}
	return consent.Latest(all, until), nil
}

// At implements consent.Store.
func (c *Consent) At(ctx context.Context, userID string, t time.Time) (consent.State, error) {
	if t.IsZero() {
		return consent.State{}, ctx.Err()
	}
	return c.fold(ctx, userID, t)
}

// Current implements consent.Store.
func (c *Consent) Current(ctx context.Context, userID string) (consent.State, error) {
	return c.fold(ctx, userID, time.Time{})
}

// Erase implements consent.Store; it also drops the user's outbox entry.
// DELETE ... RETURNING hands back exactly the rows removed, so a record
// appended concurrently is either erased with its proof kept or not
// touched at all.
func (c *Consent) Erase(ctx context.Context, userID string, keep func(consent.Record) (consent.Record, bool)) (int, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, c.q(`DELETE FROM steward_consent_records WHERE user_id = ?
		RETURNING seq, user_id, purpose, granted, policy_version, source, actor, at`), userID)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	erased, err := scanRecords(rows)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	slices.SortFunc(erased, func(a, b consent.Record) int { return cmp.Compare(a.Seq, b.Seq) })
	kept, err := consent.Kept(userID, erased, keep)
	if err != nil {
		return 0, err
	}
	if err := c.insert(ctx, tx, kept); err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	if _, err := tx.ExecContext(ctx, c.q(`DELETE FROM steward_consent_outbox WHERE user_id = ?`), userID); err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: consent erase: %w", err)
	}
	return len(erased), nil
}

func (c *Consent) nextToken(ctx context.Context, tx *sql.Tx) (int64, error) {
	var tok int64
	var err error
	if c.d == Postgres {
		err = tx.QueryRowContext(ctx, `SELECT nextval('steward_consent_outbox_token')`).Scan(&tok)
	} else {
		err = tx.QueryRowContext(ctx, `INSERT INTO steward_consent_outbox_tokens DEFAULT VALUES RETURNING token`).Scan(&tok)
	}
	return tok, err
}

// Enqueue implements consent.Outbox.
func (c *Consent) Enqueue(ctx context.Context, userID string, due time.Time) (int64, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	defer tx.Rollback()
	tok, err := c.nextToken(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	_, err = tx.ExecContext(ctx, c.q(`INSERT INTO steward_consent_outbox (user_id, token, due, attempts, last_error)
		VALUES (?, ?, ?, 0, '')
		ON CONFLICT (user_id) DO UPDATE SET token = excluded.token, due = excluded.due, attempts = 0, last_error = ''`),
		userID, tok, timeArg(c.d, due))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	return tok, nil
}

// Due implements consent.Outbox.
func (c *Consent) Due(ctx context.Context, now time.Time, limit int) ([]consent.Pending, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.db.QueryContext(ctx, c.q(fmt.Sprintf(`SELECT user_id, token, due, attempts, last_error
		FROM steward_consent_outbox WHERE due <= ? ORDER BY due, token LIMIT %d`, limit)), timeArg(c.d, now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox: %w", err)
	}
	defer rows.Close()
	var out []consent.Pending
	for rows.Next() {
		var p consent.Pending
		if err := rows.Scan(&p.UserID, &p.Token, scanTime{&p.Due}, &p.Attempts, &p.LastErr); err != nil {
			return nil, fmt.Errorf("sqlstore: consent outbox: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Retry implements consent.Outbox.
func (c *Consent) Retry(ctx context.Context, userID string, token int64, next time.Time, lastErr string) error {
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE steward_consent_outbox SET attempts = attempts + 1, due = ?, last_error = ?
		WHERE user_id = ? AND token = ?`), timeArg(c.d, next), lastErr, userID, token)
	if err != nil {
		return fmt.Errorf("sqlstore: consent outbox retry: %w", err)
	}
	return nil
}

// Done implements consent.Outbox.
func (c *Consent) Done(ctx context.Context, userID string, token int64) error {
	_, err := c.db.ExecContext(ctx, c.q(`DELETE FROM steward_consent_outbox WHERE user_id = ? AND token = ?`), userID, token)
	if err != nil {
		return fmt.Errorf("sqlstore: consent outbox done: %w", err)
	}
	return nil
}
