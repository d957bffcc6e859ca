package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward/audit"
)

// AuditCursors is the audit.CursorStore over the table
// steward_audit_cursors (migration 0009): where each Forwarder
// destination stands and which Forwarder holds it, shared by every
// process on the database, with claims judged by the database's clock.
// Get one with [Store.AuditCursors].
type AuditCursors struct {
	db *sql.DB
	d  Dialect
}

var _ audit.CursorStore = (*AuditCursors)(nil)

// AuditCursors returns the forwarders' cursor store over this database.
// Run [Store.Migrate] first.
func (s *Store) AuditCursors() *AuditCursors { return &AuditCursors{db: s.db, d: s.dialect} }

// ClaimCursor implements audit.CursorStore with one upsert.
func (c *AuditCursors) ClaimCursor(ctx context.Context, name, owner string, ttl time.Duration) (uint64, error) {
	if name == "" || owner == "" || ttl < time.Millisecond {
		return 0, errors.New("sqlstore: claiming an audit cursor: name and owner must be set and ttl at least a millisecond")
	}
	q := c.d.Rebind(`INSERT INTO steward_audit_cursors (name, seq, owner, expires) VALUES (?, 0, ?, ` + expiresIn(c.d) + `)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		WHERE steward_audit_cursors.owner = excluded.owner OR steward_audit_cursors.owner = ''
			OR steward_audit_cursors.expires <= ` + dbNow(c.d) + `
		RETURNING seq`)
	var seq int64
	err := c.db.QueryRowContext(ctx, q, name, owner, ttlArg(c.d, ttl)).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: %q", audit.ErrCursorHeld, name)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: claiming audit cursor %q: %w", name, err)
	}
	return uint64(seq), nil
}

// AdvanceCursor implements audit.CursorStore.
func (c *AuditCursors) AdvanceCursor(ctx context.Context, name, owner string, seq uint64, ttl time.Duration) error {
	greatest := "GREATEST"
	if c.d == SQLite {
		greatest = "MAX"
	}
	res, err := c.db.ExecContext(ctx, c.d.Rebind(`UPDATE steward_audit_cursors SET seq = `+greatest+`(seq, ?), expires = `+expiresIn(c.d)+`
		WHERE name = ? AND owner = ?`), int64(seq), ttlArg(c.d, ttl), name, owner)
	if err != nil {
		return fmt.Errorf("sqlstore: advancing audit cursor %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: advancing audit cursor %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("%w: %q", audit.ErrCursorLost, name)
	}
	return nil
}

// ReleaseCursor implements audit.CursorStore.
func (c *AuditCursors) ReleaseCursor(ctx context.Context, name, owner string) error {
	if _, err := c.db.ExecContext(ctx, c.d.Rebind(`UPDATE steward_audit_cursors SET owner = '' WHERE name = ? AND owner = ?`), name, owner); err != nil {
		return fmt.Errorf("sqlstore: releasing audit cursor %q: %w", name, err)
	}
	return nil
}
