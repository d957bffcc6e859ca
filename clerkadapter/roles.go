package clerkadapter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/rbac"
)

// Account is the part of a principal that comes from the user's account
// rather than from the session: the role and the account state that
// gates every permission.
type Account struct {
	Role          rbac.Role
	EmailVerified bool
	Banned        bool
	Locked        bool
}

// accountOf reads a user's Account: the role from public metadata
// ("role", through parse), the primary email's verification, and the ban
// and lock flags.
func accountOf(u steward.User, parse func(any) rbac.Role) Account {
	return Account{
		Role:          parse(u.PublicMetadata["role"]),
		EmailVerified: u.EmailVerified(),
		Banned:        u.Banned,
		Locked:        u.Locked,
	}
}

// RoleSource supplies a user's current Account, for SessionOptions.Roles.
type RoleSource interface {
	// Account returns the user's current account state. An error means
	// the request gets no principal.
	Account(ctx context.Context, userID string) (Account, error)
}

// Defaults of LiveRolesOptions.
const (
	DefaultRolesTTL         = 30 * time.Second
	DefaultRolesMaxEntries  = 10_000
	DefaultRolesStaleLimit  = 5 * time.Minute
	DefaultRolesReadTimeout = 10 * time.Second
	// DefaultRolesPollInterval is how often Run reads the
	// InvalidationLog: the bound, while the log answers, on how long
	// another process serves an account that changed.
	DefaultRolesPollInterval = time.Second
)

// LiveRolesOptions configures a LiveRoles. The zero value (or nil) gives
// the defaults.
type LiveRolesOptions struct {
	// TTL is how long an account read from the identity provider is used
	// before it is read again. Zero means DefaultRolesTTL.
	TTL time.Duration
	// MaxEntries bounds the cache. Zero means DefaultRolesMaxEntries.
	MaxEntries int
	// StaleLimit is how old a cached account may be and still be used
	// when reading a fresh one fails (Clerk down or rate limiting); past
	// it, the request gets no principal. Zero means
	// DefaultRolesStaleLimit; negative means never use stale accounts.
	StaleLimit time.Duration
	// ParseRole turns the "role" value of public metadata into a role;
	// nil means rbac.ParseRole (the default policy: "user" or "admin",
	// anything else "user"). Pass an Authorizer's ParseRole for a custom
	// policy.
	ParseRole func(v any) rbac.Role
	// ReadTimeout bounds one read of an account, which runs on its own
	// and serves every request waiting for that user; each request waits
	// for it no longer than its own context allows. Zero means
	// DefaultRolesReadTimeout.
	ReadTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Invalidations, when set, carries invalidations between the
	// processes that share it (sqlstore's RoleInvalidations over their
	// database): Invalidate and InvalidateContext record each one there,
	// and Run, which must then be running, reads those of every process
	// every PollInterval and drops their entries here. nil means an
	// invalidation reaches this process's cache only, and other replicas
	// serve the old account until their entry's TTL runs out.
	Invalidations InvalidationLog
	// PollInterval is how often Run reads Invalidations. Zero means
	// DefaultRolesPollInterval.
	PollInterval time.Duration
	// OnError, when set, hears of each failure to reach Invalidations:
	// a record Invalidate could not make, or a read of Run's. Meanwhile
	// every cached account still expires after the TTL, so
	// authentication goes on, as without Invalidations. Its errors hold
	// no user ID.
	OnError func(error)
}

// InvalidationLog carries invalidations of cached accounts between
// processes: one records that a user's account changed, and every
// process reads, in order, what all have recorded. Its methods use only
// standard types, so a log in another package (sqlstore's
// RoleInvalidations) implements it without importing this one.
// Implementations must be safe for concurrent use.
type InvalidationLog interface {
	// Invalidate records that userID's account changed. The record is
	// kept for at least keep, judged by the log's clock, and may be
	// dropped after that. A userID that is empty, or a keep that is not
	// positive, is an error.
	Invalidate(ctx context.Context, userID string, keep time.Duration) error
	// InvalidatedSince returns the user IDs recorded after cursor,
	// oldest first (a user may appear more than once), and the cursor
	// that follows the last of them; when there are none, next is
	// cursor. It may return fewer than all, a page at a time: call it
	// again with next until it returns none. Cursor 0 starts with the
	// oldest record kept. Records appear in cursor order: once a record
	// has been returned, none with a lower cursor appears later, however
	// many processes record at once.
	InvalidatedSince(ctx context.Context, cursor int64) (userIDs []string, next int64, err error)
}

// LiveRoles is a RoleSource that reads users through an
// IdentityProvider, caching each account for a short TTL. Invalidate drops
// a user's entry at once; call it from the user.updated and user.deleted
// webhooks (WebhookOptions.Roles does) so role changes, bans and locks
// apply on the next request rather than when the session token is
// refreshed. Concurrent requests for one user share one read, and each
// request waits for it no longer than its context's deadline, however
// long the read takes (following Clerk's Retry-After, say). It is safe
// for concurrent use.
//
// With several processes, give every LiveRoles one shared
// LiveRolesOptions.Invalidations and call Run in each: an invalidation in
// any process (a role change through useradmin, a webhook delivered to
// one replica) then reaches every other within PollInterval and the
// length of one read of the log, with no query on the path of a request.
// While the log cannot be reached, processes fall back to the TTL.
type LiveRoles struct {
	idp   steward.IdentityProvider
	ttl   time.Duration
	max   int
	stale time.Duration
	parse func(any) rbac.Role
	now   func() time.Time
	read  time.Duration

	log     InvalidationLog
	poll    time.Duration
	keep    time.Duration
	onError func(error)

	mu       sync.Mutex
	entries  map[string]liveEntry
	inflight map[string]*liveCall

	pollMu sync.Mutex // serialises reads of the log
	cursor int64
}

var _ RoleSource = (*LiveRoles)(nil)

type liveEntry struct {
	acct    Account
	fetched time.Time
}

// liveCall is one read in flight, shared by the requests that wait on it.
type liveCall struct {
	done        chan struct{}
	acct        Account
	err         error
	invalidated bool // Invalidate ran meanwhile: do not cache the result
}

// NewLiveRoles returns a LiveRoles over idp. opts may be nil.
func NewLiveRoles(idp steward.IdentityProvider, opts *LiveRolesOptions) *LiveRoles {
	var o LiveRolesOptions
	if opts != nil {
		o = *opts
	}
	l := &LiveRoles{
		idp:      idp,
		ttl:      orDefault(o.TTL, DefaultRolesTTL),
		max:      o.MaxEntries,
		stale:    o.StaleLimit,
		parse:    o.ParseRole,
		now:      o.Now,
		read:     orDefault(o.ReadTimeout, DefaultRolesReadTimeout),
		log:      o.Invalidations,
		poll:     orDefault(o.PollInterval, DefaultRolesPollInterval),
		onError:  o.OnError,
		entries:  make(map[string]liveEntry),
		inflight: make(map[string]*liveCall),
	}
	if l.max <= 0 {
		l.max = DefaultRolesMaxEntries
	}
	if l.stale == 0 {
		l.stale = DefaultRolesStaleLimit
	} else if l.stale < 0 {
		l.stale = 0
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.parse == nil {
		l.parse = rbac.ParseRole
	}
	// An account read before a change (even one whose read was still in
	// flight) is served at most TTL, or the stale limit, after it was
	// read: past that, a record of the change matters to nobody.
	l.keep = l.read + max(l.ttl, l.stale)
	return l
}

// Account returns the user's account, from the cache when it is younger
// than the TTL, else read through the IdentityProvider. When the read
// fails, an entry younger than the stale limit is used instead; otherwise
// the error is returned (wrapping steward.ErrUserNotFound for a deleted
// user). When ctx ends before the read does, Account returns ctx's error
// at once; the read goes on and caches what it finds.
func (l *LiveRoles) Account(ctx context.Context, userID string) (Account, error) {
	if err := ctx.Err(); err != nil {
		return Account{}, err
	}
	l.mu.Lock()
	e, cached := l.entries[userID]
	if cached && l.now().Sub(e.fetched) < l.ttl {
		l.mu.Unlock()
		return e.acct, nil
	}
	call := l.inflight[userID]
	if call == nil {
		call = &liveCall{done: make(chan struct{})}
		l.inflight[userID] = call
		// The read serves every waiter, so one client going away must
		// not cancel it; it has its own timeout instead.
		go l.readAccount(context.WithoutCancel(ctx), userID, call)
	}
	l.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return Account{}, fmt.Errorf("clerkadapter: reading the account: %w", ctx.Err())
	}
	if call.err != nil {
		if cached && l.stale > 0 && l.now().Sub(e.fetched) < l.stale && !errors.Is(call.err, steward.ErrUserNotFound) {
			return e.acct, nil
		}
		return Account{}, call.err
	}
	return call.acct, nil
}

// readAccount reads one account for call and caches it.
func (l *LiveRoles) readAccount(ctx context.Context, userID string, call *liveCall) {
	ctx, cancel := context.WithTimeout(ctx, l.read)
	defer cancel()
	u, err := l.idp.GetUser(ctx, userID)
	if err == nil {
		call.acct = accountOf(u, l.parse)
	}
	call.err = err
	l.mu.Lock()
	delete(l.inflight, userID)
	if err == nil && !call.invalidated {
		l.storeLocked(userID, liveEntry{acct: call.acct, fetched: l.now()})
	}
	l.mu.Unlock()
	close(call.done)
}

// storeLocked adds an entry, evicting expired entries, or an arbitrary
// one, when the cache is full.
func (l *LiveRoles) storeLocked(userID string, e liveEntry) {
	if _, ok := l.entries[userID]; !ok && len(l.entries) >= l.max {
		now := l.now()
		for id, old := range l.entries {
			if now.Sub(old.fetched) >= l.ttl+l.stale {
				delete(l.entries, id)
			}
		}
		for id := range l.entries {
			if len(l.entries) < l.max {
				break
			}
			delete(l.entries, id)
		}
	}
	l.entries[userID] = e
}

// Invalidate forgets the cached account of userID, so the next request
// reads it afresh; a read already in flight is not cached. With
// LiveRolesOptions.Invalidations it also records the invalidation there
// for the other processes, waiting at most ReadTimeout, and reports a
// failure to OnError; use InvalidateContext to get the error instead.
func (l *LiveRoles) Invalidate(userID string) {
	if l.log == nil {
		l.forget(userID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.read)
	defer cancel()
	if err := l.InvalidateContext(ctx, userID); err != nil && l.onError != nil {
		l.onError(err)
	}
}

// InvalidateContext is Invalidate with a context and an error: it forgets
// the cached account of userID here at once, then records the
// invalidation in LiveRolesOptions.Invalidations, when set, so that every
// process running Run forgets it too. An error means the record was not
// made: this process has forgotten the account, other processes serve
// theirs until its TTL runs out. The webhook handler and useradmin call
// it when they are given a LiveRoles or a SessionAuth.
func (l *LiveRoles) InvalidateContext(ctx context.Context, userID string) error {
	l.forget(userID)
	if l.log == nil {
		return nil
	}
	if err := l.log.Invalidate(ctx, userID, l.keep); err != nil {
		return fmt.Errorf("clerkadapter: recording an invalidation for the other processes: %w", err)
	}
	return nil
}

// forget drops userID's entry and keeps a read in flight from being
// cached.
func (l *LiveRoles) forget(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, userID)
	if c := l.inflight[userID]; c != nil {
		c.invalidated = true
	}
}

// errNoInvalidations reports Poll or Run on a LiveRoles without
// LiveRolesOptions.Invalidations.
var errNoInvalidations = errors.New("clerkadapter: LiveRoles has no Invalidations to read")

// Poll reads the invalidations recorded in LiveRolesOptions.Invalidations
// since its last call, by any process, forgets their accounts here, and
// returns how many it read. Its first call reads every record the log
// still keeps. Run calls it every PollInterval; call it yourself to
// catch up at once. It fails when no Invalidations were given, or with
// the log's error, in which case the position is kept and the next call
// starts there.
func (l *LiveRoles) Poll(ctx context.Context) (int, error) {
	if l.log == nil {
		return 0, errNoInvalidations
	}
	l.pollMu.Lock()
	defer l.pollMu.Unlock()
	n := 0
	for {
		ids, next, err := l.log.InvalidatedSince(ctx, l.cursor)
		if err != nil {
			return n, fmt.Errorf("clerkadapter: reading the invalidations of other processes: %w", err)
		}
		for _, id := range ids {
			l.forget(id)
		}
		n += len(ids)
		if len(ids) == 0 || next == l.cursor {
			return n, nil
		}
		l.cursor = next
	}
}

// Run calls Poll at once and then every PollInterval until ctx ends, and
// returns ctx's error; a failed Poll goes to OnError and the next one
// tries again. Start it in its own goroutine in every process whose
// LiveRoles shares LiveRolesOptions.Invalidations. Without Invalidations
// it returns an error at once.
func (l *LiveRoles) Run(ctx context.Context) error {
	if l.log == nil {
		return errNoInvalidations
	}
	t := time.NewTicker(l.poll)
	defer t.Stop()
	for {
		if _, err := l.Poll(ctx); err != nil && ctx.Err() == nil && l.onError != nil {
			l.onError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// MemoryInvalidations is an InvalidationLog in process memory, for tests
// and for several LiveRoles in one process (SessionOptions.Roles and
// ConfirmRoles, say); it reaches no other process. Records are dropped
// once their keep has passed. It is safe for concurrent use.
type MemoryInvalidations struct {
	now func() time.Time

	mu      sync.Mutex
	seq     int64
	records []memInvalidation // by seq
}

type memInvalidation struct {
	seq     int64
	userID  string
	expires time.Time
}

var _ InvalidationLog = (*MemoryInvalidations)(nil)

// invalidationPage is how many records MemoryInvalidations returns per
// call.
const invalidationPage = 500

// NewMemoryInvalidations returns an empty log using the given clock (nil
// means time.Now).
func NewMemoryInvalidations(now func() time.Time) *MemoryInvalidations {
	if now == nil {
		now = time.Now
	}
	return &MemoryInvalidations{now: now}
}

// checkInvalidationArgs applies the argument rules of
// InvalidationLog.Invalidate.
func checkInvalidationArgs(userID string, keep time.Duration) error {
	if userID == "" {
		return errors.New("clerkadapter: invalidation log: empty user ID")
	}
	if keep <= 0 {
		return fmt.Errorf("clerkadapter: invalidation log: keep %v is not positive", keep)
	}
	return nil
}

// Invalidate implements InvalidationLog.
func (m *MemoryInvalidations) Invalidate(_ context.Context, userID string, keep time.Duration) error {
	if err := checkInvalidationArgs(userID, keep); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.records = slices.DeleteFunc(m.records, func(r memInvalidation) bool { return !now.Before(r.expires) })
	m.seq++
	m.records = append(m.records, memInvalidation{seq: m.seq, userID: userID, expires: now.Add(keep)})
	return nil
}

// InvalidatedSince implements InvalidationLog.
func (m *MemoryInvalidations) InvalidatedSince(_ context.Context, cursor int64) ([]string, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, _ := slices.BinarySearchFunc(m.records, cursor+1, func(r memInvalidation, seq int64) int { return cmp.Compare(r.seq, seq) })
	var ids []string
	next := cursor
	for _, r := range m.records[i:] {
		if len(ids) == invalidationPage {
			break
		}
		ids = append(ids, r.userID)
		next = r.seq
	}
	return ids, next, nil
}

// Len returns how many records the log holds.
func (m *MemoryInvalidations) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}
