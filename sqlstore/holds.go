package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stewardlabs/steward/retention"
)

// Holds is the retention.HoldStore and retention.NoticeStore over the
// tables steward_retention_holds (migration 0005) and
// steward_retention_notices (migration 0008). Get one with [Store.Holds].
// It is safe for concurrent use and shared by every process using the
// database: notice claims expire by the database's clock. The retention
// lease is [Store.Leases].
type Holds struct {
	db *sql.DB
	d  Dialect
}

var (
	_ retention.HoldStore   = (*Holds)(nil)
	_ retention.NoticeStore = (*Holds)(nil)
)

// Holds returns the hold and notice store over this database. Run
// [Store.Migrate] first.
func (s *Store) Holds() *Holds { return &Holds{db: s.db, d: s.dialect} }

// Place implements retention.HoldStore.
func (h *Holds) Place(ctx context.Context, hold retention.Hold) error {
	if err := hold.Validate(); err != nil {
		return err
	}
	_, err := h.db.ExecContext(ctx, h.d.Rebind(`INSERT INTO steward_retention_holds (user_id, reason, placed_by, placed_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, placed_by = excluded.placed_by, placed_at = excluded.placed_at`),
		hold.UserID, hold.Reason, hold.PlacedBy, timeArg(h.d, hold.PlacedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: placing a hold: %w", err)
	}
	return nil
}

// Release implements retention.HoldStore.
func (h *Holds) Release(ctx context.Context, userID string) error {
	if _, err := h.db.ExecContext(ctx, h.d.Rebind(`DELETE FROM steward_retention_holds WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("sqlstore: releasing a hold: %w", err)
	}
	return nil
}

// Get implements retention.HoldStore.
func (h *Holds) Get(ctx context.Context, userID string) (retention.Hold, bool, error) {
	var hold retention.Hold
	err := h.db.QueryRowContext(ctx, h.d.Rebind(`SELECT user_id, reason, placed_by, placed_at
		FROM steward_retention_holds WHERE user_id = ?`), userID).
		Scan(&hold.UserID, &hold.Reason, &hold.PlacedBy, scanTime{&hold.PlacedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return retention.Hold{}, false, nil
	}
	if err != nil {
		return retention.Hold{}, false, fmt.Errorf("sqlstore: reading a hold: %w", err)
	}
	return hold, true, nil
}

// List implements retention.HoldStore.
func (h *Holds) List(ctx context.Context) ([]retention.Hold, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT user_id, reason, placed_by, placed_at FROM steward_retention_holds ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listing holds: %w", err)
	}
	defer rows.Close()
	out := []retention.Hold{}
	for rows.Next() {
		var hold retention.Hold
		if err := rows.Scan(&hold.UserID, &hold.Reason, &hold.PlacedBy, scanTime{&hold.PlacedAt}); err != nil {
			return nil, fmt.Errorf("sqlstore: listing holds: %w", err)
		}
		out = append(out, hold)
	}
	return out, rows.Err()
}
