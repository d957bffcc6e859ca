package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
)

// Leases is the steward.Leaser over the table steward_leases (migration
// 0006), shared by every process using the database. Expiry is judged by
// the database's clock (PostgreSQL clock_timestamp(), SQLite
// unixepoch('subsec'), to the millisecond), so processes with skewed
// clocks agree on who holds a lease. Each statement is one atomic upsert
// or update; no transaction is held between calls. Get one with
// [Store.Leases].
type Leases struct {
	db *sql.DB
	d  Dialect
}

var _ steward.Leaser = (*Leases)(nil)

// Leases returns the lease store over this database. Run [Store.Migrate]
// first.
func (s *Store) Leases() *Leases { return &Leases{db: s.db, d: s.dialect} }

// The expiry columns of leases and claims hold the database's time:
// TIMESTAMPTZ on PostgreSQL, Unix milliseconds (INTEGER) on SQLite.

// dbNow is the database's clock in the unit an expiry column holds.
func dbNow(d Dialect) string {
	if d == Postgres {
		return "clock_timestamp()"
	}
	return "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
}

// expiresIn is an expression for the database's now plus the ttl bound to
// the next placeholder (pass ttlArg).
func expiresIn(d Dialect) string {
	if d == Postgres {
		return "clock_timestamp() + ? * interval '1 microsecond'"
	}
	return dbNow(d) + " + ?"
}

// ttlArg is ttl in the unit of expiresIn's placeholder.
func ttlArg(d Dialect, ttl time.Duration) int64 {
	if d == Postgres {
		return ttl.Microseconds()
	}
	return ttl.Milliseconds()
}

// pastArg is a time before any lease's expiry, in the column's unit.
func pastArg(d Dialect) any {
	if d == Postgres {
		return time.Unix(0, 0).UTC()
	}
	return int64(0)
}

// AcquireLease implements steward.Leaser.
func (l *Leases) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (steward.Lease, error) {
	if err := steward.ValidateLease(name, owner, ttl); err != nil {
		return steward.Lease{}, err
	}
	q := l.d.Rebind(`INSERT INTO steward_leases (name, owner, token, expires) VALUES (?, ?, 1, ` + expiresIn(l.d) + `)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = steward_leases.token + 1, expires = excluded.expires
		WHERE steward_leases.expires <= ` + dbNow(l.d) + `
		RETURNING token, expires`)
	lease := steward.Lease{Name: name, Owner: owner}
	err := l.db.QueryRowContext(ctx, q, name, owner, ttlArg(l.d, ttl)).Scan(&lease.Token, leaseTime{&lease.Expires})
	if errors.Is(err, sql.ErrNoRows) {
		return steward.Lease{}, fmt.Errorf("%w: %q", steward.ErrLeaseHeld, name)
	}
	if err != nil {
		return steward.Lease{}, fmt.Errorf("sqlstore: acquiring lease %q: %w", name, err)
	}
	return lease, nil
}

// RenewLease implements steward.Leaser.
func (l *Leases) RenewLease(ctx context.Context, lease steward.Lease, ttl time.Duration) (steward.Lease, error) {
	if err := steward.ValidateLease(lease.Name, lease.Owner, ttl); err != nil {
		return steward.Lease{}, err
	}
	q := l.d.Rebind(`UPDATE steward_leases SET expires = ` + expiresIn(l.d) + `
		WHERE name = ? AND owner = ? AND token = ? RETURNING expires`)
	err := l.db.QueryRowContext(ctx, q, ttlArg(l.d, ttl), lease.Name, lease.Owner, lease.Token).Scan(leaseTime{&lease.Expires})
	if errors.Is(err, sql.ErrNoRows) {
		return steward.Lease{}, fmt.Errorf("%w: %q", steward.ErrLeaseLost, lease.Name)
	}
	if err != nil {
		return steward.Lease{}, fmt.Errorf("sqlstore: renewing lease %q: %w", lease.Name, err)
	}
	return lease, nil
}

// ReleaseLease implements steward.Leaser. The row stays, expired, so the
// next holder's token is greater.
func (l *Leases) ReleaseLease(ctx context.Context, lease steward.Lease) error {
	_, err := l.db.ExecContext(ctx, l.d.Rebind(`UPDATE steward_leases SET expires = ? WHERE name = ? AND owner = ? AND token = ?`),
		pastArg(l.d), lease.Name, lease.Owner, lease.Token)
	if err != nil {
		return fmt.Errorf("sqlstore: releasing lease %q: %w", lease.Name, err)
	}
	return nil
}

// leaseTime scans an expires column: a time from PostgreSQL, Unix
// milliseconds from SQLite.
type leaseTime struct{ t *time.Time }

func (s leaseTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*s.t = x.UTC()
	case int64:
		*s.t = time.UnixMilli(x).UTC()
	case float64:
		*s.t = time.UnixMilli(int64(x)).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot read %T as a lease expiry", v)
	}
	return nil
}
