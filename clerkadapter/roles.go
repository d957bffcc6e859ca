package clerkadapter

import (
	"context"
	"errors"
	"fmt"
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
type LiveRoles struct {
	idp   steward.IdentityProvider
	ttl   time.Duration
	max   int
	stale time.Duration
	parse func(any) rbac.Role
	now   func() time.Time
	read  time.Duration

	mu       sync.Mutex
	entries  map[string]liveEntry
	inflight map[string]*liveCall
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
// reads it afresh; a read already in flight is not cached.
func (l *LiveRoles) Invalidate(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, userID)
	if c := l.inflight[userID]; c != nil {
		c.invalidated = true
	}
}
