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
// and new role) and invalidates a RoleCache — clerkadapter.LiveRoles — so
// it takes effect on the user's next request without a new sign-in.
//
// Guard rails: the last active administrator (a user whose role has
// admin:users and who is neither banned nor locked) cannot be demoted,
// banned or locked; an administrator may not act on their own account
// unless AllowSelf says so.
//
// This package sits beside rbac rather than inside it so that rbac stays
// pure policy evaluation with no identity-provider I/O.
//
// The last-admin check counts admins and then changes the user under a
// mutex of the Manager, so it holds within one process. Several
// processes administering the same users concurrently can race; route
// administration through one instance, or accept that the identity
// provider's dashboard remains the recovery path.
//
// Handler exposes the actions as a JSON API behind
// rbac.Require(admin:users).
//
// # Errors
//
// ErrForbidden, ErrUnknownRole, ErrLastAdmin, ErrSelfAction and
// ErrUnsupported (check with errors.Is), plus the provider's
// steward.ErrUserNotFound and steward.ErrInvalidUserID.
package useradmin
