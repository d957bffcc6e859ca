package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
)

// Consent is the consent.Store and consent.Outbox over the tables
// steward_consent_records (append-only: a trigger refuses UPDATE) and
// steward_consent_outbox (migrations 0004 and 0007). Get one with
// [Store.Consent]. It is safe for concurrent use by any number of
// processes sharing the database: outbox claims expire by the database's
// clock (PostgreSQL clock_timestamp(), SQLite unixepoch('subsec'), to the
// millisecond), a claim is taken by one atomic statement, and Done, Retry,
// Renew and Release match the claim's owner and token.
type Consent struct {
	db *sql.DB
	d  Dialect
}

var (
	_ consent.Store  = (*Consent)(nil)
	_ consent.Outbox = (*Consent)(nil)

	_ consent.OutboxDepth = (*Consent)(nil)
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
	tx, err := beginWrite(ctx, c.db, c.d)
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
	tx, err := beginWrite(ctx, c.db, c.d)
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

// nextToken draws the next value of the sequence shared by outbox
// versions and claim tokens. On SQLite it also drops the values below it,
// so the table keeps one row (AUTOINCREMENT never reuses a value).
func (c *Consent) nextToken(ctx context.Context, tx *sql.Tx) (int64, error) {
	var tok int64
	if c.d == Postgres {
		err := tx.QueryRowContext(ctx, `SELECT nextval('steward_consent_outbox_token')`).Scan(&tok)
		return tok, err
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO steward_consent_outbox_tokens DEFAULT VALUES RETURNING token`).Scan(&tok); err != nil {
		return 0, err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM steward_consent_outbox_tokens WHERE token < ?`, tok)
	return tok, err
}

// dbNow is the database's clock in the unit claim_expires holds.
func (c *Consent) dbNow() string {
	if c.d == Postgres {
		return "clock_timestamp()"
	}
	return "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
}

// claimUntil is an expression for the database's now plus the ttl bound
// to the next placeholder (see ttlArg).
func (c *Consent) claimUntil() string {
	if c.d == Postgres {
		return "clock_timestamp() + ? * interval '1 microsecond'"
	}
	return c.dbNow() + " + ?"
}

// ttlArg is ttl in the unit of claimUntil's placeholder.
func (c *Consent) ttlArg(ttl time.Duration) int64 {
	if c.d == Postgres {
		return ttl.Microseconds()
	}
	return ttl.Milliseconds()
}

// outboxColumns are the columns scanClaims reads, in its order.
const outboxColumns = `user_id, version, due, attempts, last_error, rewrite, claim_owner, claim_token, claim_expires`

// scanClaims reads and closes rows of outboxColumns, oldest due first.
func scanClaims(rows *sql.Rows) ([]consent.Claim, error) {
	defer rows.Close()
	out := []consent.Claim{}
	for rows.Next() {
		var e consent.Claim
		if err := rows.Scan(&e.UserID, &e.Version, scanTime{&e.Due}, &e.Attempts, &e.LastErr, &e.Rewrite,
			&e.Owner, &e.Token, claimExpiry{&e.Expires}); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b consent.Claim) int {
		if d := a.Due.Compare(b.Due); d != 0 {
			return d
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return out, rows.Err()
}

// claimExpiry scans claim_expires: a time from PostgreSQL, Unix
// milliseconds from SQLite, NULL (not claimed) as the zero time.
type claimExpiry struct{ t *time.Time }

func (s claimExpiry) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = x.UTC()
	case int64:
		*s.t = time.UnixMilli(x).UTC()
	case float64:
		*s.t = time.UnixMilli(int64(x)).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot read %T as a claim expiry", v)
	}
	return nil
}

// lostClaim is the error of a fenced call whose claim is not held.
func lostClaim(requeued bool) error {
	if requeued {
		return fmt.Errorf("%w: the claim on a user's consent sync; queued again to rewrite the mirror", steward.ErrLeaseLost)
	}
	return fmt.Errorf("%w: the claim on a user's consent sync", steward.ErrLeaseLost)
}

// Depth implements consent.OutboxDepth: one count of the outbox's rows.
func (c *Consent) Depth(ctx context.Context) (int, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM steward_consent_outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: consent outbox depth: %w", err)
	}
	return n, nil
}

// Enqueue implements consent.Outbox. A claim on the entry stays.
func (c *Consent) Enqueue(ctx context.Context, userID string, due time.Time) (int64, error) {
	tx, err := beginWrite(ctx, c.db, c.d)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	defer tx.Rollback()
	tok, err := c.nextToken(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	_, err = tx.ExecContext(ctx, c.q(`INSERT INTO steward_consent_outbox (user_id, version, due, attempts, last_error)
		VALUES (?, ?, ?, 0, '')
		ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, due = excluded.due, attempts = 0, last_error = ''`),
		userID, tok, timeArg(c.d, due))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: consent enqueue: %w", err)
	}
	return tok, nil
}

// Claim implements consent.Outbox with one UPDATE of the rows it takes:
// on PostgreSQL they are picked FOR UPDATE SKIP LOCKED, so concurrent
// claims pass each other's rows by; on SQLite the statement runs under
// the database's write lock.
func (c *Consent) Claim(ctx context.Context, q consent.ClaimQuery) ([]consent.Claim, error) {
	if err := consent.ValidateClaim(q.Owner, q.TTL); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = consent.DefaultClaimLimit
	}
	pick := `SELECT user_id FROM steward_consent_outbox
		WHERE due <= ? AND (claim_expires IS NULL OR claim_expires <= ` + c.dbNow() + `)`
	args := []any{timeArg(c.d, q.Now)}
	if q.UserID != "" {
		pick += ` AND user_id = ?`
		args = append(args, q.UserID)
	}
	pick += fmt.Sprintf(` ORDER BY due, version LIMIT %d`, limit)
	if c.d == Postgres {
		rows, err := c.db.QueryContext(ctx, c.q(`UPDATE steward_consent_outbox
			SET claim_owner = ?, claim_token = nextval('steward_consent_outbox_token'), claim_expires = `+c.claimUntil()+`
			WHERE (claim_expires IS NULL OR claim_expires <= clock_timestamp()) AND user_id IN (`+pick+` FOR UPDATE SKIP LOCKED)
			RETURNING `+outboxColumns), append([]any{q.Owner, c.ttlArg(q.TTL)}, args...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
		}
		out, err := scanClaims(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
		}
		return out, nil
	}
	tx, err := beginWrite(ctx, c.db, c.d)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
	}
	defer tx.Rollback()
	tok, err := c.nextToken(ctx, tx) // a write first: the transaction holds the write lock from here
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE steward_consent_outbox
		SET claim_owner = ?, claim_token = ?, claim_expires = `+c.claimUntil()+`
		WHERE user_id IN (`+pick+`)
		RETURNING `+outboxColumns, append([]any{q.Owner, tok, c.ttlArg(q.TTL)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
	}
	out, err := scanClaims(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox claim: %w", err)
	}
	return out, nil
}

// Renew implements consent.Outbox.
func (c *Consent) Renew(ctx context.Context, cl consent.Claim, ttl time.Duration) (consent.Claim, error) {
	if err := consent.ValidateClaim(cl.Owner, ttl); err != nil {
		return consent.Claim{}, err
	}
	rows, err := c.db.QueryContext(ctx, c.q(`UPDATE steward_consent_outbox SET claim_expires = `+c.claimUntil()+`
		WHERE user_id = ? AND claim_owner = ? AND claim_token = ? RETURNING `+outboxColumns),
		c.ttlArg(ttl), cl.UserID, cl.Owner, cl.Token)
	if err != nil {
		return consent.Claim{}, fmt.Errorf("sqlstore: consent outbox renew: %w", err)
	}
	out, err := scanClaims(rows)
	if err != nil {
		return consent.Claim{}, fmt.Errorf("sqlstore: consent outbox renew: %w", err)
	}
	if len(out) == 0 {
		return consent.Claim{}, lostClaim(false)
	}
	return out[0], nil
}

// Release implements consent.Outbox.
func (c *Consent) Release(ctx context.Context, cl consent.Claim) error {
	if cl.Owner == "" {
		return nil
	}
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE steward_consent_outbox SET claim_owner = '', claim_expires = NULL
		WHERE user_id = ? AND claim_owner = ? AND claim_token = ?`), cl.UserID, cl.Owner, cl.Token)
	if err != nil {
		return fmt.Errorf("sqlstore: consent outbox release: %w", err)
	}
	return nil
}

// Done implements consent.Outbox, in one transaction.
func (c *Consent) Done(ctx context.Context, cl consent.Claim) error {
	return c.finish(ctx, "done", cl, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, c.q(`DELETE FROM steward_consent_outbox
			WHERE user_id = ? AND claim_owner = ? AND claim_token = ? AND version = ?`), cl.UserID, cl.Owner, cl.Token, cl.Version)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return n == 1, err
		}
		lock := ""
		if c.d == Postgres {
			lock = " FOR UPDATE"
		}
		var one int
		err = tx.QueryRowContext(ctx, c.q(`SELECT 1 FROM steward_consent_outbox
			WHERE user_id = ? AND claim_owner = ? AND claim_token = ?`+lock), cl.UserID, cl.Owner, cl.Token).Scan(&one)
		if err == nil {
			return true, consent.ErrSuperseded
		}
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, err
	})
}

// Retry implements consent.Outbox, in one transaction.
func (c *Consent) Retry(ctx context.Context, cl consent.Claim, next time.Time, lastErr string) error {
	return c.finish(ctx, "retry", cl, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, c.q(`UPDATE steward_consent_outbox
			SET attempts = attempts + 1, due = ?, last_error = ?, claim_owner = '', claim_expires = NULL
			WHERE user_id = ? AND claim_owner = ? AND claim_token = ? AND version = ?`),
			timeArg(c.d, next), lastErr, cl.UserID, cl.Owner, cl.Token, cl.Version)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return n == 1, err
		}
		// Re-enqueued since: free the claim, leave the newer change due.
		res, err = tx.ExecContext(ctx, c.q(`UPDATE steward_consent_outbox SET claim_owner = '', claim_expires = NULL
			WHERE user_id = ? AND claim_owner = ? AND claim_token = ?`), cl.UserID, cl.Owner, cl.Token)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	})
}

// finish runs a fenced Done or Retry: apply reports whether cl held its
// claim. When it did not, the entry is queued again, due no later than
// cl's, marked rewrite, with a new version (the claim, someone else's,
// stays), in the same transaction.
func (c *Consent) finish(ctx context.Context, op string, cl consent.Claim, apply func(*sql.Tx) (bool, error)) error {
	tx, err := beginWrite(ctx, c.db, c.d)
	if err != nil {
		return fmt.Errorf("sqlstore: consent outbox %s: %w", op, err)
	}
	defer tx.Rollback()
	held := false
	if cl.Owner != "" {
		held, err = apply(tx)
	}
	var result error
	switch {
	case errors.Is(err, consent.ErrSuperseded):
		result = err
	case err != nil:
		return fmt.Errorf("sqlstore: consent outbox %s: %w", op, err)
	case !held:
		tok, err := c.nextToken(ctx, tx)
		if err != nil {
			return fmt.Errorf("sqlstore: consent outbox %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, c.q(`INSERT INTO steward_consent_outbox (user_id, version, due, attempts, last_error, rewrite)
			VALUES (?, ?, ?, 0, '', ?)
			ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, rewrite = excluded.rewrite,
				due = CASE WHEN excluded.due < steward_consent_outbox.due THEN excluded.due ELSE steward_consent_outbox.due END`),
			cl.UserID, tok, timeArg(c.d, cl.Due), true)
		if err != nil {
			return fmt.Errorf("sqlstore: consent outbox %s: %w", op, err)
		}
		result = lostClaim(true)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: consent outbox %s: %w", op, err)
	}
	return result
}

// Queued returns up to limit outbox entries (0: 1000), claimed or not,
// oldest due first, for inspection: what is still to be mirrored, how
// often it failed, and which runner holds it now.
func (c *Consent) Queued(ctx context.Context, limit int) ([]consent.Claim, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.db.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM steward_consent_outbox ORDER BY due, version LIMIT %d`, outboxColumns, limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox: %w", err)
	}
	out, err := scanClaims(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consent outbox: %w", err)
	}
	return out, nil
}
