package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebhookMessages is the replay store of clerkadapter's webhook handler
// (it implements clerkadapter.ReplayStore, whose methods use only
// standard types, so this package does not import clerkadapter) over
// the table steward_webhook_messages (migration 0011), shared by every
// process using the database: a Svix message ID accepted by one replica
// is refused by all. Each ID is recorded by one atomic upsert whose
// expiry is judged by the database's clock (PostgreSQL
// clock_timestamp(), SQLite unixepoch('subsec'), to the millisecond), so
// of two replicas given one message at once exactly one processes it,
// whatever their clocks say; a handled ID is marked so, and Svix's
// redelivery of it is acknowledged unprocessed. After recording a new ID it deletes up to
// webhookSweep expired rows, so the table holds about as many rows as
// IDs within their expiry; a failure of that clean-up is ignored (the
// next call tries again). Message IDs are Svix's, not personal data.
// Get one with [Store.WebhookMessages].
type WebhookMessages struct {
	db *sql.DB
	d  Dialect
}

// WebhookMessages returns the webhook replay store over this database.
// Run [Store.Migrate] first.
func (s *Store) WebhookMessages() *WebhookMessages { return &WebhookMessages{db: s.db, d: s.dialect} }

// webhookSweep is how many expired rows one call deletes at most.
const webhookSweep = 100

// SeenMessage records msgID for ttl, by the database's clock, and reports
// false; when msgID is recorded and unexpired it reports true and leaves
// the record as it was. It fails for an empty msgID or a ttl that is not
// positive.
func (w *WebhookMessages) SeenMessage(ctx context.Context, msgID string, ttl time.Duration) (bool, error) {
	if msgID == "" {
		return false, errors.New("sqlstore: webhook messages: empty message ID")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("sqlstore: webhook messages: ttl %v is not positive", ttl)
	}
	// An expired record is taken over; an unexpired one makes the upsert
	// return no row.
	q := w.d.Rebind(`INSERT INTO steward_webhook_messages (id, expires) VALUES (?, ` + expiresIn(w.d) + `)
		ON CONFLICT (id) DO UPDATE SET expires = excluded.expires, handled = false
		WHERE steward_webhook_messages.expires <= ` + dbNow(w.d) + `
		RETURNING 1`)
	var one int
	err := w.db.QueryRowContext(ctx, q, msgID, ttlArg(w.d, ttl)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: recording a webhook message ID: %w", err)
	}
	_ = sweepExpired(ctx, w.db, w.d, "steward_webhook_messages", "id", webhookSweep)
	return false, nil
}

// HandleMessage marks msgID's unexpired record handled (migration 0014);
// an ID not recorded, or expired, is left alone.
func (w *WebhookMessages) HandleMessage(ctx context.Context, msgID string) error {
	q := w.d.Rebind(`UPDATE steward_webhook_messages SET handled = true WHERE id = ? AND expires > ` + dbNow(w.d))
	if _, err := w.db.ExecContext(ctx, q, msgID); err != nil {
		return fmt.Errorf("sqlstore: marking a webhook message handled: %w", err)
	}
	return nil
}

// MessageHandled reports whether msgID is recorded, unexpired by the
// database's clock, and marked handled.
func (w *WebhookMessages) MessageHandled(ctx context.Context, msgID string) (bool, error) {
	q := w.d.Rebind(`SELECT 1 FROM steward_webhook_messages WHERE id = ? AND handled AND expires > ` + dbNow(w.d))
	var one int
	err := w.db.QueryRowContext(ctx, q, msgID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: reading a webhook message ID: %w", err)
	}
	return true, nil
}

// ForgetMessage deletes msgID's record, if any.
func (w *WebhookMessages) ForgetMessage(ctx context.Context, msgID string) error {
	if _, err := w.db.ExecContext(ctx, w.d.Rebind(`DELETE FROM steward_webhook_messages WHERE id = ?`), msgID); err != nil {
		return fmt.Errorf("sqlstore: forgetting a webhook message ID: %w", err)
	}
	return nil
}

// sweepExpired deletes at most limit rows of table whose expires column
// has passed by the database's clock, picked by its index on expires;
// key is the table's primary key. On PostgreSQL rows another sweep is
// deleting are skipped rather than waited for.
func sweepExpired(ctx context.Context, db *sql.DB, d Dialect, table, key string, limit int) error {
	lock := ""
	if d == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := d.Rebind(fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (
		SELECT %[2]s FROM %[1]s WHERE expires <= %[3]s ORDER BY expires LIMIT ?%[4]s)`, table, key, dbNow(d), lock))
	_, err := db.ExecContext(ctx, q, limit)
	return err
}
