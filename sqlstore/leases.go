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

// dbNow is the database's clock in the unit the expires column holds.
func (l *Leases) dbNow() string {
	if l.d == Postgres {
		return "clock_timestamp()"
	}
	return "CAST(unixepoch('subsec') * 1000 AS INTEGER)"
}

// expiresIn is an expression for the database's now plus the ttl bound to
// the next placeholder.
func (l *Leases) expiresIn() string {
	if l.d == Postgres {
		return "clock_timestamp() + ? * interval '1 microsecond'"
	}
	return l.dbNow() + " + ?"
}

// ttlArg is ttl in the unit of expiresIn's placeholder.
func (l *Leases) ttlArg(ttl time.Duration) int64 {
	if l.d == Postgres {
		return ttl.Microseconds()
	}
	return ttl.Milliseconds()
}

// AcquireLease implements steward.Leaser.
func (l *Leases) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (steward.Lease, error) {
	if err := steward.ValidateLease(name, owner, ttl); err != nil {
		return steward.Lease{}, err
	}
	q := l.d.Rebind(`INSERT INTO steward_leases (name, owner, token, expires) VALUES (?, ?, 1, ` + l.expiresIn() + `)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = steward_leases.token + 1, expires = excluded.expires
		WHERE steward_leases.expires <= ` + l.dbNow() + `
		RETURNING token, expires`)
	lease := steward.Lease{Name: name, Owner: owner}
	err := l.db.QueryRowContext(ctx, q, name, owner, l.ttlArg(ttl)).Scan(&lease.Token, leaseTime{&lease.Expires})
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
	q := l.d.Rebind(`UPDATE steward_leases SET expires = ` + l.expiresIn() + `
		WHERE name = ? AND owner = ? AND token = ? RETURNING expires`)
	err := l.db.QueryRowContext(ctx, q, l.ttlArg(ttl), lease.Name, lease.Owner, lease.Token).Scan(leaseTime{&lease.Expires})
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
	var past any = int64(0)
	if l.d == Postgres {
		past = time.Unix(0, 0).UTC()
	}
	_, err := l.db.ExecContext(ctx, l.d.Rebind(`UPDATE steward_leases SET expires = ? WHERE name = ? AND owner = ? AND token = ?`),
		past, lease.Name, lease.Owner, lease.Token)
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
