package rbac

import (
	"context"
	"log/slog"
)

// Role names a role in a policy, such as "user" or "admin".
type Role string

// Permission names a permission in a policy, such as "chat:send".
type Permission string

// Principal is who is making a request, with the account state that gates
// every permission check.
type Principal struct {
	UserID        string
	Role          Role
	EmailVerified bool
	Banned        bool
	Locked        bool
	// OrgID, OrgRole and OrgPermissions are set when the session is
	// scoped to an organization (Clerk's active organization): its ID,
	// the principal's role in it (such as "org:admin") and the
	// permissions it grants the principal (such as "org:posts:read").
	// They hold within that organization only: Allowed ignores them and
	// AllowedInOrg checks them.
	OrgID          string
	OrgRole        string
	OrgPermissions []Permission
}

// LogValue implements slog.LogValuer: a principal logs its role and
// account state, never its user ID.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasUser", p.UserID != ""),
		slog.String("role", string(p.Role)),
		slog.Bool("emailVerified", p.EmailVerified),
		slog.Bool("banned", p.Banned),
		slog.Bool("locked", p.Locked),
		slog.Bool("organization", p.OrgID != ""),
	)
}

// InOrg reports whether the principal's session is scoped to the
// organization orgID (never true for an empty orgID).
func (p Principal) InOrg(orgID string) bool { return orgID != "" && p.OrgID == orgID }

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored in ctx by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
