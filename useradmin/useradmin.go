package useradmin

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrForbidden: the acting principal lacks admin:users.
	ErrForbidden = errors.New("useradmin: forbidden")
	// ErrUnknownRole: the role is not declared by the policy.
	ErrUnknownRole = errors.New("useradmin: unknown role")
	// ErrLastAdmin: the action would leave no active administrator.
	ErrLastAdmin = errors.New("useradmin: would remove the last active admin")
	// ErrSelfAction: an administrator acting on their own account, which
	// is refused unless AllowSelf permits the action.
	ErrSelfAction = errors.New("useradmin: action on one's own account not allowed")
	// ErrUnsupported: the identity provider cannot ban or lock (it does
	// not implement steward.Moderator).
	ErrUnsupported = errors.New("useradmin: the identity provider cannot ban or lock accounts")
	// ErrBusy: another Manager, here or in another process, held the
	// administrators lock (WithLeases) for longer than the lock wait.
	// Nothing was changed; try again. The error matches
	// steward.ErrLeaseHeld too.
	ErrBusy = errors.New("useradmin: another administrator change holds the lock")
)

// LeaseName is the lease a Manager given WithLeases holds around every
// check-and-change that could remove an active administrator.
const LeaseName = "useradmin.admins"

// DefaultLockWait is how long a Manager waits for the administrators lock
// by default before failing with ErrBusy.
const DefaultLockWait = 5 * time.Second

// lockTTL is the administrators lock's ttl; RunLeased renews it every
// third of that while a change runs. It is short because a process that
// dies holding the lock blocks every role change, ban and lock until it
// expires: within DefaultLockWait, so a waiting change gets it.
const lockTTL = 4 * time.Second

// Action names what an administrator does; it appears in audit details.
type Action string

// The actions.
const (
	AssignRole Action = "assign_role"
	Ban        Action = "ban"
	Unban      Action = "unban"
	Lock       Action = "lock"
	Unlock     Action = "unlock"
)

// AuditLogger records audit events; *audit.Logger satisfies it.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// RoleCache forgets what it knows of a user's role and account state;
// clerkadapter.LiveRoles satisfies it, so a change takes effect on the
// user's next request without a new session token.
type RoleCache interface {
	Invalidate(userID string)
}

// SharedRoleCache is a RoleCache that also tells the other processes of
// an invalidation and says when it could not: clerkadapter.LiveRoles and
// clerkadapter.SessionAuth are, given an InvalidationLog
// (LiveRolesOptions.Invalidations). A Manager calls InvalidateContext
// instead of Invalidate on a RoleCache that has it.
type SharedRoleCache interface {
	RoleCache
	InvalidateContext(ctx context.Context, userID string) error
}

// Manager assigns roles and bans or locks accounts through an
// IdentityProvider, guarded by the compiled policy. It is safe for
// concurrent use.
type Manager struct {
	idp   steward.IdentityProvider
	authz *rbac.Authorizer
	audit AuditLogger
	cache RoleCache
	self  map[Action]bool
	// leases, when set, holds LeaseName around each check-and-change, so
	// the guard holds across processes.
	leases steward.Leaser
	owner  string
	wait   time.Duration
	// mu serialises this Manager's check-and-changes (and, without
	// leases, is the whole guard).
	mu sync.Mutex
}

// Option configures a Manager.
type Option func(*Manager)

// WithAudit writes a role_change event for every change.
func WithAudit(l AuditLogger) Option { return func(m *Manager) { m.audit = l } }

// WithRoleCache invalidates c after every change. When c is a
// SharedRoleCache, a change whose invalidation could not be recorded for
// the other processes returns an error saying so (the change was made and
// audited; other processes serve the old account until their cache entry
// expires).
func WithRoleCache(c RoleCache) Option { return func(m *Manager) { m.cache = c } }

// WithLeases makes the last-admin guard hold across processes: every
// role change, ban and lock counts the active administrators and makes
// the change while holding the lease LeaseName from l (sqlstore's Leases,
// shared by every process on the database), under an owner name unique to
// the Manager. A change that finds the lease held waits for it (see
// WithLockWait) and then fails with ErrBusy. Without it the guard holds
// only among the changes of one Manager.
func WithLeases(l steward.Leaser) Option { return func(m *Manager) { m.leases = l } }

// WithLockWait sets how long a change waits for the administrators lock
// (WithLeases) before failing with ErrBusy; the default is
// DefaultLockWait, and 0 or less means not waiting at all.
func WithLockWait(d time.Duration) Option { return func(m *Manager) { m.wait = max(d, 0) } }

// AllowSelf lets an administrator perform these actions on their own
// account. By default none is allowed: nobody demotes, bans or locks
// themselves by mistake.
func AllowSelf(actions ...Action) Option {
	return func(m *Manager) {
		for _, a := range actions {
			m.self[a] = true
		}
	}
}

// New returns a Manager over idp, checking roles and permissions with
// authz.
func New(idp steward.IdentityProvider, authz *rbac.Authorizer, opts ...Option) (*Manager, error) {
	if idp == nil {
		return nil, errors.New("useradmin: New: identity provider is nil")
	}
	if authz == nil {
		return nil, errors.New("useradmin: New: authorizer is nil")
	}
	m := &Manager{idp: idp, authz: authz, self: map[Action]bool{}, owner: steward.NewOwner(), wait: DefaultLockWait}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Role returns the user's effective role: the public metadata "role"
// validated against the policy, the default role otherwise.
func (m *Manager) Role(ctx context.Context, userID string) (rbac.Role, error) {
	u, err := m.idp.GetUser(ctx, userID)
	if err != nil {
		return "", err
	}
	return m.authz.ParseRole(u.PublicMetadata["role"]), nil
}

// Principal builds the principal of u under the Manager's policy.
func (m *Manager) Principal(u steward.User) rbac.Principal {
	return rbac.Principal{UserID: u.ID, Role: m.authz.ParseRole(u.PublicMetadata["role"]),
		EmailVerified: u.EmailVerified(), Banned: u.Banned, Locked: u.Locked}
}

// UsersWithRole yields the users whose effective role is role, lazily.
func (m *Manager) UsersWithRole(ctx context.Context, role rbac.Role) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		for u, err := range m.idp.ListUsers(ctx, steward.UserQuery{}) {
			if err != nil {
				yield(steward.User{}, err)
				return
			}
			if m.authz.ParseRole(u.PublicMetadata["role"]) == role && !yield(u, nil) {
				return
			}
		}
	}
}

// isAdmin: a role that may manage users.
func (m *Manager) isAdmin(r rbac.Role) bool { return m.authz.Can(r, rbac.AdminUsers) }

// canAct reports whether u is an active administrator: a role with
// admin:users, a verified primary email, neither banned nor locked.
func (m *Manager) canAct(u steward.User) bool {
	return m.isAdmin(m.authz.ParseRole(u.PublicMetadata["role"])) && u.EmailVerified() && !u.Banned && !u.Locked
}

// activeAdmins counts the active administrators (canAct), stopping at
// limit.
func (m *Manager) activeAdmins(ctx context.Context, limit int) (int, error) {
	n := 0
	for u, err := range m.idp.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			return 0, err
		}
		if m.canAct(u) {
			if n++; n >= limit {
				break
			}
		}
	}
	return n, nil
}

// locked runs a check-and-change f under the Manager's mutex and, with
// WithLeases, under the lease LeaseName, waiting for it up to the lock
// wait. f reports whether it made its change. A change made is never
// reported as failed because of the lock: f saw the lease held when it
// checked, and what it changed stays changed.
func (m *Manager) locked(ctx context.Context, f func(ctx context.Context) (changed bool, err error)) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases == nil {
		return f(ctx)
	}
	deadline := time.Now().Add(m.wait)
	pause := 10 * time.Millisecond
	for {
		var (
			ran, changed bool
			ferr         error
		)
		err := steward.RunLeased(ctx, m.leases, LeaseName, m.owner, lockTTL, func(ctx context.Context) error {
			ran = true
			changed, ferr = f(ctx)
			return ferr
		})
		switch {
		case changed:
			return true, ferr
		case ran && errors.Is(err, steward.ErrLeaseLost):
			return false, fmt.Errorf("useradmin: the administrators lock was lost before the change, which was not made: %w", err)
		case ran:
			return false, ferr
		case !errors.Is(err, steward.ErrLeaseHeld):
			return false, fmt.Errorf("useradmin: taking the administrators lock: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, fmt.Errorf("%w: waited %v for lease %q (%w)", ErrBusy, m.wait, LeaseName, err)
		}
		wait := min(pause/2+rand.N(pause), left)
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("useradmin: waiting for the administrators lock: %w", ctx.Err())
		case <-time.After(wait):
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// guard checks the actor and the self-action rule.
func (m *Manager) guard(actor rbac.Principal, userID string, a Action) error {
	if !m.authz.Allowed(actor, rbac.AdminUsers) {
		return fmt.Errorf("%w: %s needs %s", ErrForbidden, a, rbac.AdminUsers)
	}
	if err := steward.ValidateUserID(userID); err != nil {
		return err
	}
	if actor.UserID == userID && !m.self[a] {
		return fmt.Errorf("%w: %s", ErrSelfAction, a)
	}
	return nil
}

// AssignRole sets the user's role (public metadata "role") and returns
// the role they had. The role must be declared by the policy; demoting
// the last active admin is refused (ErrLastAdmin), and with WithLeases
// the check and the change hold the administrators lock, so two processes
// cannot both demote one of the last two (ErrBusy when the lock stays
// held). The change is audited and the role cache invalidated, so it
// applies on the user's next request.
func (m *Manager) AssignRole(ctx context.Context, actor rbac.Principal, userID string, role rbac.Role) (rbac.Role, error) {
	if err := m.guard(actor, userID, AssignRole); err != nil {
		return "", err
	}
	if !m.authz.HasRole(role) {
		return "", fmt.Errorf("%w: %q (the policy declares %v)", ErrUnknownRole, role, m.authz.Roles())
	}
	var old rbac.Role
	changed, err := m.locked(ctx, func(ctx context.Context) (bool, error) {
		u, err := m.idp.GetUser(ctx, userID)
		if err != nil {
			return false, err
		}
		old = m.authz.ParseRole(u.PublicMetadata["role"])
		if old == role && u.PublicMetadata["role"] == string(role) {
			return false, nil
		}
		if m.canAct(u) && !m.isAdmin(role) {
			if err := m.keepAnAdmin(ctx); err != nil {
				return false, err
			}
		}
		if err := checkLock(ctx); err != nil {
			return false, err
		}
		details := map[string]any{"oldRole": string(old), "newRole": string(role)}
		if err := m.before(ctx, actor, userID, AssignRole, details); err != nil {
			return false, err
		}
		if err := m.idp.UpdateMetadata(ctx, userID, steward.MetadataPatch{Public: map[string]any{"role": string(role)}}); err != nil {
			m.failed(ctx, actor, userID, AssignRole)
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	if changed {
		return old, m.after(ctx, userID, AssignRole)
	}
	return old, nil
}

// checkLock fails when the lock's context is done (a lost lease cancels
// it), so no change starts after the check it depends on lost its lock.
func checkLock(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (m *Manager) keepAnAdmin(ctx context.Context) error {
	n, err := m.activeAdmins(ctx, 2)
	if err != nil {
		return err
	}
	if n < 2 {
		return ErrLastAdmin
	}
	return nil
}

// SetBanned bans (true) or unbans the user. Banning the last active admin
// is refused, under the administrators lock with WithLeases. It needs a
// provider implementing steward.Moderator.
func (m *Manager) SetBanned(ctx context.Context, actor rbac.Principal, userID string, banned bool) error {
	a, call := Unban, (steward.Moderator).Unban
	if banned {
		a, call = Ban, (steward.Moderator).Ban
	}
	return m.moderate(ctx, actor, userID, a, banned, call)
}

// SetLocked locks (true) or unlocks the user, like SetBanned.
func (m *Manager) SetLocked(ctx context.Context, actor rbac.Principal, userID string, locked bool) error {
	a, call := Unlock, (steward.Moderator).Unlock
	if locked {
		a, call = Lock, (steward.Moderator).Lock
	}
	return m.moderate(ctx, actor, userID, a, locked, call)
}

func (m *Manager) moderate(ctx context.Context, actor rbac.Principal, userID string, a Action, restricting bool,
	call func(steward.Moderator, context.Context, string) error) error {
	if err := m.guard(actor, userID, a); err != nil {
		return err
	}
	mod, ok := m.idp.(steward.Moderator)
	if !ok {
		return ErrUnsupported
	}
	change := func(ctx context.Context) (bool, error) {
		u, err := m.idp.GetUser(ctx, userID)
		if err != nil {
			return false, err
		}
		if restricting && m.canAct(u) {
			if err := m.keepAnAdmin(ctx); err != nil {
				return false, err
			}
		}
		if err := checkLock(ctx); err != nil {
			return false, err
		}
		if err := m.before(ctx, actor, userID, a, nil); err != nil {
			return false, err
		}
		if err := call(mod, ctx, userID); err != nil {
			m.failed(ctx, actor, userID, a)
			return false, err
		}
		return true, nil
	}
	var err error
	if restricting {
		_, err = m.locked(ctx, change)
	} else {
		_, err = change(ctx) // unbanning or unlocking never removes an administrator
	}
	if err != nil {
		return err
	}
	return m.after(ctx, userID, a)
}

// ErrNotAudited is matched when a change was refused because its
// audit event could not be written (the audit sink is down and the logger
// fails closed): nothing was changed.
var ErrNotAudited = errors.New("useradmin: the change was not made: its audit event could not be written")

// before writes the role_change event of a change about to be made:
// audit before effect, so that no change happens that the trail cannot
// show.
func (m *Manager) before(ctx context.Context, actor rbac.Principal, userID string, a Action, details map[string]any) error {
	if m.audit == nil {
		return nil
	}
	d := map[string]any{"action": string(a)}
	for k, v := range details {
		d[k] = v
	}
	if err := m.audit.Log(ctx, audit.Event{Type: audit.RoleChange, Subject: userID, Actor: actor.UserID, Details: d}); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotAudited, a, err)
	}
	return nil
}

// failed records that a change audited by before was not made after all
// (best effort: the provider refused it).
func (m *Manager) failed(ctx context.Context, actor rbac.Principal, userID string, a Action) {
	if m.audit != nil {
		_ = m.audit.Log(context.WithoutCancel(ctx), audit.Event{Type: audit.RoleChange, Subject: userID, Actor: actor.UserID,
			Details: map[string]any{"action": string(a), "status": "failed"}})
	}
}

// after invalidates the role cache once a change a was made, telling
// every process's cache when it is a SharedRoleCache. The change stands
// either way; the error says the other processes were not told.
func (m *Manager) after(ctx context.Context, userID string, a Action) error {
	switch c := m.cache.(type) {
	case nil:
	case SharedRoleCache:
		if err := c.InvalidateContext(ctx, userID); err != nil {
			return fmt.Errorf("useradmin: %s was made but the role caches of other processes were not told (they see it when their entry expires): %w", a, err)
		}
	default:
		c.Invalidate(userID)
	}
	return nil
}
