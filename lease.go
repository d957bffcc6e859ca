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
// lease every third of ttl (KeepAlive), and releases it when f returns.
// When the lease is lost, f's context is canceled with a cause matching
// ErrLeaseLost, and RunLeased returns an error matching ErrLeaseLost
// whatever f returns. It fails with ErrLeaseHeld, without calling f, when
// another owner holds the lease.
func RunLeased(ctx context.Context, l Leaser, name, owner string, ttl time.Duration, f func(ctx context.Context) error) error {
	start := time.Now()
	lease, err := l.AcquireLease(ctx, name, owner, ttl)
	if err != nil {
		return err
	}
	kctx, stop := KeepAlive(ctx, ttl, start, func(ctx context.Context) error {
		next, err := l.RenewLease(ctx, lease, ttl)
		if err == nil {
			lease = next // only the keep-alive goroutine touches it until stop
		}
		return err
	})
	ferr := f(kctx)
	if cause := stop(); cause != nil {
		return fmt.Errorf("%w: %q", cause, name)
	}
	if err := l.ReleaseLease(context.WithoutCancel(ctx), lease); err != nil && ferr == nil {
		ferr = fmt.Errorf("steward: releasing lease %q: %w", name, err)
	}
	return ferr
}

// KeepAlive keeps a lease or claim alive while work runs: it calls renew
// every third of ttl until stop, and cancels the returned context (whose
// work is the holder's) with a cause matching ErrLeaseLost when renew
// reports ErrLeaseLost, or when the local deadline passes: ttl after the
// start of the last call that took or renewed the claim (taken at
// since), which is never later than the store's own expiry. So a holder
// that cannot renew in time (its store is slow or out of reach, the
// process was starved) stops before another may take over. Each renewal
// is bounded by a third of ttl.
//
// stop ends the renewals, waits for the goroutine, and returns the cause
// when the claim was lost (nil otherwise); the context is canceled either
// way once stop returns. Call it once.
func KeepAlive(ctx context.Context, ttl time.Duration, since time.Time, renew func(ctx context.Context) error) (context.Context, func() (lost error)) {
	kctx, cancel := context.WithCancelCause(ctx)
	var (
		mu   sync.Mutex
		lost error
	)
	give := func(cause error) {
		mu.Lock()
		if lost == nil {
			lost = cause
		}
		mu.Unlock()
		cancel(cause)
	}
	deadline := time.AfterFunc(max(time.Until(since.Add(ttl)), 0), func() {
		give(fmt.Errorf("%w: not renewed before it expired", ErrLeaseLost))
	})
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(max(ttl/3, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-kctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			call, stop := context.WithTimeout(kctx, max(ttl/3, time.Millisecond))
			err := renew(call)
			stop()
			switch {
			case err == nil:
				if deadline.Stop() {
					deadline.Reset(max(time.Until(start.Add(ttl)), 0))
				}
			case errors.Is(err, ErrLeaseLost):
				give(err)
				return
			}
		}
	}()
	var once sync.Once
	return kctx, func() error {
		once.Do(func() {
			close(done)
			<-exited
			deadline.Stop()
			cancel(nil)
		})
		mu.Lock()
		defer mu.Unlock()
		return lost
	}
}
