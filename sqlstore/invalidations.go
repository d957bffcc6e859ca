package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RoleInvalidations is the invalidation log of clerkadapter's LiveRoles
// (it implements clerkadapter.InvalidationLog, whose methods use only
// standard types, so this package does not import clerkadapter) over the
// table steward_role_invalidations (migration 0011), shared by every
// process using the database: a role change or ban that one process
// records is read by the LiveRoles of every other within its poll
// interval.
//
// Each record gets the next seq, and records become visible in seq
// order, so a reader's cursor never passes over a record committed later:
// on PostgreSQL the insert runs in a transaction holding an advisory lock
// keyed on the schema until commit; on SQLite the write lock does the
// same. A record is kept until its keep has passed by the database's
// clock; after each new record up to invalidationSweep expired ones are
// deleted (a failure of that clean-up is ignored). Records hold a user ID
// and an expiry, nothing else, for minutes. Get one with
// [Store.RoleInvalidations].
type RoleInvalidations struct {
	db *sql.DB
	d  Dialect
}

// RoleInvalidations returns the invalidation log over this database. Run
// [Store.Migrate] first.
func (s *Store) RoleInvalidations() *RoleInvalidations {
	return &RoleInvalidations{db: s.db, d: s.dialect}
}

// invalidationSweep is how many expired records one Invalidate deletes
// at most; invalidationPage how many InvalidatedSince returns at most.
const (
	invalidationSweep = 100
	invalidationPage  = 500
)

// Invalidate records that userID's account changed, kept for keep by the
// database's clock. It fails for an empty userID or a keep that is not
// positive; its errors never hold the user ID.
func (r *RoleInvalidations) Invalidate(ctx context.Context, userID string, keep time.Duration) error {
	if userID == "" {
		return errors.New("sqlstore: role invalidations: empty user ID")
	}
	if keep <= 0 {
		return fmt.Errorf("sqlstore: role invalidations: keep %v is not positive", keep)
	}
	insert := r.d.Rebind(`INSERT INTO steward_role_invalidations (user_id, expires) VALUES (?, ` + expiresIn(r.d) + `)`)
	var err error
	if r.d == Postgres {
		err = r.insertLocked(ctx, insert, userID, ttlArg(r.d, keep))
	} else {
		_, err = r.db.ExecContext(ctx, insert, userID, ttlArg(r.d, keep))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: recording a role invalidation: %w", err)
	}
	_ = sweepExpired(ctx, r.db, r.d, "steward_role_invalidations", "seq", invalidationSweep)
	return nil
}

// insertLocked runs insert in a transaction that holds the log's
// advisory lock until it commits, so that seq order is commit order.
func (r *RoleInvalidations) insertLocked(ctx context.Context, insert string, args ...any) error {
	tx, err := beginWrite(ctx, r.db, r.d)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('steward_role_invalidations:' || current_schema(), 0))`); err != nil {
		return fmt.Errorf("taking the log's lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		return err
	}
	return tx.Commit()
}

// InvalidatedSince returns the user IDs recorded after cursor, oldest
// first, at most invalidationPage of them, and the seq of the last one
// (cursor when there are none). Records whose keep has passed but which
// are not deleted yet are returned too.
func (r *RoleInvalidations) InvalidatedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	rows, err := r.db.QueryContext(ctx, r.d.Rebind(`SELECT seq, user_id FROM steward_role_invalidations WHERE seq > ? ORDER BY seq LIMIT ?`), cursor, invalidationPage)
	if err != nil {
		return nil, cursor, fmt.Errorf("sqlstore: reading role invalidations: %w", err)
	}
	defer rows.Close()
	var ids []string
	next := cursor
	for rows.Next() {
		var (
			seq int64
			id  string
		)
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, cursor, fmt.Errorf("sqlstore: reading role invalidations: %w", err)
		}
		ids, next = append(ids, id), seq
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, fmt.Errorf("sqlstore: reading role invalidations: %w", err)
	}
	return ids, next, nil
}
