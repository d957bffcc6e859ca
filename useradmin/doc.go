// Package useradmin is the data model's role-assignment flow and the
// account actions behind the admin:users permission: assign a role, ban
// and unban, lock and unlock.
//
// A Manager works through a steward.IdentityProvider and a compiled
// *rbac.Authorizer. AssignRole writes the role to the user's public
// metadata "role" (validated against the policy: unknown roles are
// refused, naming the role), SetBanned and SetLocked use the provider's
// optional steward.Moderator capability. Every change needs an actor
// allowed admin:users, writes a role_change audit event (pseudonymous
// subject and actor; details carry the action and, for roles, the old
// and new role) before it is made — when the event cannot be written
// (the sink is down, the logger failing closed) the change is refused
// with ErrNotAudited — and invalidates a RoleCache — clerkadapter.LiveRoles
// — so it takes effect on the user's next request without a new sign-in.
// A change the provider then refuses is followed by a second event with
// status "failed".
//
// Guard rails: the last active administrator cannot be demoted, banned or
// locked (ErrLastAdmin); an administrator may not act on their own account
// unless AllowSelf says so. An active administrator is a user whose role
// has admin:users, whose primary email is verified, and who is neither
// banned nor locked: only they can act, so an unverified, banned or
// locked admin does not count toward keeping one.
//
// # Several instances
//
// The guard counts the active administrators and then makes the change,
// so it holds only while nobody else changes administrators in between.
// With WithLeases (sqlstore's Leases, shared by every process on the
// database) every role change, ban and lock does its check-and-change
// while holding the lease LeaseName, judged by the database's clock and
// renewed while the change runs, under an owner unique to the Manager: two
// processes removing the last two admins at once end with one of them
// refused. A change that finds the lease held waits for it, retrying with
// backoff for up to WithLockWait (DefaultLockWait), and then fails with
// ErrBusy, changing nothing. The lease lasts 4 s and is renewed while the
// change runs, so a process that dies holding it delays other changes by
// at most that, less than DefaultLockWait. Without WithLeases the guard holds only
// within one Manager (a mutex): two processes, or two Managers, can
// together leave no active administrator. Either way the count is only as
// fresh as the identity provider's user list, and the provider's own
// dashboard remains the recovery path.
//
// A change reaches the role caches of every process when the RoleCache is
// a SharedRoleCache: a clerkadapter.LiveRoles (or the SessionAuth over
// it) given sqlstore's RoleInvalidations as its InvalidationLog, with Run
// going in each process. The Manager then calls InvalidateContext, which
// records the invalidation in the database, and every other process drops
// the user's cached account within its poll interval (a second by
// default). A plain RoleCache is invalidated in this process only; the
// others serve the old role, ban and lock state until their entry
// expires.
//
// This package sits beside rbac rather than inside it so that rbac stays
// pure policy evaluation with no identity-provider I/O.
//
// Handler exposes the actions as a JSON API behind
// rbac.Require(admin:users).
//
// # Errors
//
// ErrForbidden, ErrUnknownRole, ErrLastAdmin, ErrSelfAction,
// ErrUnsupported, ErrNotAudited and ErrBusy (check with errors.Is; ErrBusy also matches
// steward.ErrLeaseHeld), plus the provider's steward.ErrUserNotFound and
// steward.ErrInvalidUserID. With WithLeases, a lease store that cannot be
// reached fails the change with an error naming the administrators lock
// and wrapping the store's error; one lost before the change was made
// wraps steward.ErrLeaseLost. A refused or failed change changes nothing.
// A change that was made but whose audit event was not recorded, or whose
// invalidation a SharedRoleCache could not record for the other
// processes, returns an error saying which, wrapping the cause.
package useradmin
