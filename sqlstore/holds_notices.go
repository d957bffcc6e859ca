package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward/retention"
)

// noticeTime is a notice's active_at or sent_at as its column holds it,
// the zero time included.
func noticeTime(d Dialect, t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.Format(sqliteTime)
	}
	return t
}

// ClaimNotice implements retention.NoticeStore with one conditional
// upsert: the row is claimed only when it is about an earlier activity,
// failed, or pending with a claim that ran out by the database's clock.
func (h *Holds) ClaimNotice(ctx context.Context, userID string, activeAt time.Time, owner string, ttl time.Duration) (retention.Notice, bool, error) {
	if err := retention.ValidateNoticeClaim(userID, owner, ttl); err != nil {
		return retention.Notice{}, false, err
	}
	const t = "steward_retention_notices"
	claim := h.d.Rebind(`INSERT INTO ` + t + ` (user_id, active_at, state, attempts, token, owner, claim_expires, sent_at)
		VALUES (?, ?, 'pending', 1, 1, ?, ` + expiresIn(h.d) + `, NULL)
		ON CONFLICT (user_id) DO UPDATE SET
			active_at = CASE WHEN ` + t + `.active_at < excluded.active_at THEN excluded.active_at ELSE ` + t + `.active_at END,
			attempts = CASE WHEN ` + t + `.active_at < excluded.active_at THEN 1 ELSE ` + t + `.attempts + 1 END,
			state = 'pending', token = ` + t + `.token + 1, owner = excluded.owner,
			claim_expires = excluded.claim_expires, sent_at = NULL
		WHERE ` + t + `.active_at < excluded.active_at OR ` + t + `.state = 'failed'
			OR (` + t + `.state = 'pending' AND ` + t + `.claim_expires <= ` + dbNow(h.d) + `)
		RETURNING active_at, attempts, token, claim_expires`)
	read := h.d.Rebind(`SELECT active_at, state, attempts, token, owner, claim_expires, sent_at FROM ` + t + ` WHERE user_id = ?`)
	// A row forgotten between the two statements is claimed on the next
	// round; three rounds are plenty.
	for range 3 {
		n := retention.Notice{UserID: userID, State: retention.NoticePending, Owner: owner}
		err := h.db.QueryRowContext(ctx, claim, userID, noticeTime(h.d, activeAt), owner, ttlArg(h.d, ttl)).
			Scan(scanTime{&n.ActiveAt}, &n.Attempts, &n.Token, leaseTime{&n.Expires})
		if err == nil {
			return n, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return retention.Notice{}, false, fmt.Errorf("sqlstore: claiming a notice: %w", err)
		}
		n = retention.Notice{UserID: userID}
		var state string
		err = h.db.QueryRowContext(ctx, read, userID).
			Scan(scanTime{&n.ActiveAt}, &state, &n.Attempts, &n.Token, &n.Owner, leaseTime{&n.Expires}, scanTime{&n.SentAt})
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return retention.Notice{}, false, fmt.Errorf("sqlstore: reading a notice: %w", err)
		}
		n.State = retention.NoticeState(state)
		return n, false, nil
	}
	return retention.Notice{}, false, errors.New("sqlstore: claiming a notice: the record kept changing")
}

// FinishNotice implements retention.NoticeStore.
func (h *Holds) FinishNotice(ctx context.Context, n retention.Notice) error {
	if err := retention.ValidateNoticeOutcome(n); err != nil {
		return err
	}
	var sent any
	if n.State == retention.NoticeSent {
		sent = noticeTime(h.d, n.SentAt)
	}
	res, err := h.db.ExecContext(ctx, h.d.Rebind(`UPDATE steward_retention_notices SET state = ?, sent_at = ?
		WHERE user_id = ? AND owner = ? AND token = ? AND state = 'pending'`),
		string(n.State), sent, n.UserID, n.Owner, n.Token)
	if err != nil {
		return fmt.Errorf("sqlstore: recording a notice: %w", err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: recording a notice: %w", err)
	} else if k == 0 {
		return retention.ErrNoticeLost
	}
	return nil
}

// ForgetNotice implements retention.NoticeStore.
func (h *Holds) ForgetNotice(ctx context.Context, userID string) error {
	if _, err := h.db.ExecContext(ctx, h.d.Rebind(`DELETE FROM steward_retention_notices WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("sqlstore: forgetting a notice: %w", err)
	}
	return nil
}
