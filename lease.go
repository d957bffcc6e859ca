package steward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Errors of a Leaser.
var (
	// ErrLeaseHeld is matched when a lease is held by another owner and
	// has not expired.
	ErrLeaseHeld = errors.New("steward: lease held by another owner")
	// ErrLeaseLost is matched when a holder renews or releases a lease
	// that is no longer its own: it expired and changed hands, or was
	// released.
	ErrLeaseLost = errors.New("steward: lease lost")
	// ErrInvalidLease is matched when a lease's name, owner or ttl is
	// unusable; the message names the field.
	ErrInvalidLease = errors.New("steward: invalid lease")
)

// MaxLeaseNameLen bounds a lease's Name and Owner.
const MaxLeaseNameLen = 200

// Lease is a named, time-limited claim on a duty that only one process
// may do at a time (a retention sweep, the audit forwarder of one
// destination, the check-and-change of the last administrator).
//
// Expiry is judged by the clock of the store that grants leases (the
// database's, for sqlstore), never by the holder's, so processes whose
// clocks disagree still agree on who holds a lease. Token is a fencing
// token: it grows every time the lease is acquired, so a holder whose
// lease expired and was taken by another cannot renew it, even if the
// other has released it since.
type Lease struct {
	Name  string
	Owner string
	Token int64
	// Expires is the store's time at which the lease lapses.
	Expires time.Time
}

// Leaser grants leases. Implementations: MemoryLeases (one process), and
// sqlstore's Leases (every process sharing the database).
type Leaser interface {
	// AcquireLease takes the lease name for owner for ttl when nobody
	// holds it or its holder's lease expired, and returns it with a new
	// Token. It fails with an error matching ErrLeaseHeld when it is
	// held, even by the same owner: two runs given one owner name do
	// not both hold it.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error)
	// RenewLease extends l to ttl from the store's now when l is still
	// the stored lease (same Owner and Token), expired or not: nobody
	// took it meanwhile. Otherwise it fails with ErrLeaseLost.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease frees l when it is still the stored lease, so another
	// owner may take it at once. Releasing a lease that changed hands
	// does nothing and returns nil.
	ReleaseLease(ctx context.Context, l Lease) error
}

// ValidateLease checks the arguments of AcquireLease and RenewLease; the
// error matches ErrInvalidLease and names the field.
func ValidateLease(name, owner string, ttl time.Duration) error {
	switch {
	case name == "" || len(name) > MaxLeaseNameLen:
		return fmt.Errorf("%w: name must be 1 to %d bytes", ErrInvalidLease, MaxLeaseNameLen)
	case owner == "" || len(owner) > MaxLeaseNameLen:
		return fmt.Errorf("%w: owner must be 1 to %d bytes", ErrInvalidLease, MaxLeaseNameLen)
	case ttl < time.Millisecond:
		return fmt.Errorf("%w: ttl %v is under a millisecond", ErrInvalidLease, ttl)
	}
	return nil
}

// NewOwner returns a lease owner name unique to this process and call:
// "<host>/<pid>/<random>". Every process, and every Engine or runner in
// it, should own its leases under a name of its own.
func NewOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	if len(host) > 64 {
		host = host[:64]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// MemoryLeases is a Leaser in process memory, for tests and single-process
// applications. Its clock is time.Now unless WithLeaseClock says
// otherwise. It is safe for concurrent use.
type MemoryLeases struct {
	now    func() time.Time
	mu     sync.Mutex
	leases map[string]Lease
	tokens int64
}

var _ Leaser = (*MemoryLeases)(nil)

// NewMemoryLeases returns an empty MemoryLeases using clock now (nil:
// time.Now).
func NewMemoryLeases(now func() time.Time) *MemoryLeases {
	if now == nil {
		now = time.Now
	}
	return &MemoryLeases{now: now, leases: map[string]Lease{}}
}

// AcquireLease implements Leaser.
func (m *MemoryLeases) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	if err := ValidateLease(name, owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if cur, ok := m.leases[name]; ok && now.Before(cur.Expires) {
		return Lease{}, fmt.Errorf("%w: %q", ErrLeaseHeld, name)
	}
	m.tokens++
	l := Lease{Name: name, Owner: owner, Token: m.tokens, Expires: now.Add(ttl)}
	m.leases[name] = l
	return l, nil
}

// RenewLease implements Leaser.
func (m *MemoryLeases) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := ValidateLease(l.Name, l.Owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.leases[l.Name]
	if !ok || cur.Owner != l.Owner || cur.Token != l.Token {
		return Lease{}, fmt.Errorf("%w: %q", ErrLeaseLost, l.Name)
	}
	cur.Expires = m.now().Add(ttl)
	m.leases[l.Name] = cur
	return cur, nil
}

// ReleaseLease implements Leaser.
func (m *MemoryLeases) ReleaseLease(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.leases[l.Name]; ok && cur.Owner == l.Owner && cur.Token == l.Token {
		delete(m.leases, l.Name)
	}
	return nil
}

// RunLeased acquires the lease name for owner, runs f while renewing the
// lease every third of ttl, and releases it when f returns. When a
// renewal finds the lease lost, f's context is canceled with a cause
// matching ErrLeaseLost, and RunLeased returns an error matching
// ErrLeaseLost whatever f returns. It fails with ErrLeaseHeld, without
// calling f, when another owner holds the lease.
//
// A renewal that fails for another reason (the database is briefly
// unreachable) is retried at the next tick; the lease is given up only
// when it is seen lost or has expired by the holder's own estimate.
func RunLeased(ctx context.Context, l Leaser, name, owner string, ttl time.Duration, f func(ctx context.Context) error) error {
	lease, err := l.AcquireLease(ctx, name, owner, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(max(ttl/3, time.Millisecond))
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			next, err := l.RenewLease(ctx, lease, ttl)
			switch {
			case err == nil:
				lease, renewed = next, time.Now()
			case errors.Is(err, ErrLeaseLost):
				cancel(fmt.Errorf("%w: %q", ErrLeaseLost, name))
				return
			case time.Since(renewed) >= ttl:
				cancel(fmt.Errorf("%w: %q could not be renewed before it expired: %w", ErrLeaseLost, name, err))
				return
			}
		}
	}()
	ferr := f(ctx)
	close(done)
	<-stopped
	if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
		return cause
	}
	if err := l.ReleaseLease(context.WithoutCancel(ctx), lease); err != nil && ferr == nil {
		ferr = fmt.Errorf("steward: releasing lease %q: %w", name, err)
	}
	return ferr
}
