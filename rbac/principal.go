package rbac

import "context"

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
	// scoped to an organization.
	OrgID          string
	OrgRole        string
	OrgPermissions []Permission
}

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
