// Package rbac decides who may do what: roles, permissions, compiled
// policies, the request's Principal and HTTP middleware.
//
// A Policy is plain data (built in Go or parsed from JSON with
// ParsePolicy): the declared permissions, roles with grants, denies and
// parents, a default role and the permissions usable before email
// verification. DefaultPolicy is the data model's: "user" (the default)
// has chat:access, chat:send, profile:view and profile:edit; "admin"
// inherits those and adds admin:access and admin:users.
//
// Compile validates a policy and turns it into an immutable *Authorizer:
// inheritance is followed, wildcards such as "admin:*" are expanded
// against the declared permissions, and explicit denies are removed, so
// each role's permissions are one bit set. Authorizer.Can is the hot path
// (two constant-time hash lookups and a bit test, no allocation); Explain
// says which rule decided. A Holder swaps compiled policies atomically for hot reload.
//
// A Principal is who makes a request (user ID, role, email verified,
// banned, locked, and the organization its session is scoped to).
// Authorizer.Allowed applies the account gates before the role: banned or
// locked principals get nothing and unverified ones only the policy's
// BeforeVerification permissions. The role stored in a user's public
// metadata is read with ParseRole: anything but a declared role is the
// default role.
//
// Organization permissions are a scope of their own. An organization
// (Clerk's active organization, with the principal's OrgID, OrgRole and
// OrgPermissions) grants its permissions within that organization only:
// Allowed, the global check, ignores them, and AllowedInOrg(p, orgID,
// perm) checks them for the organization it names, after the same
// account gates. The global role grants nothing inside an organization.
//
// Require and RequireAny are net/http middleware: 401 {"error":
// "Unauthorized"} when the request carries no principal (see WithPrincipal;
// clerkadapter's session middleware sets it), 403 {"error": "Forbidden"}
// when it lacks the permission, with an access_denied audit event when an
// AuditLogger is configured. RequireOrg is the same for a permission in
// the organization a route names (such as a path value); its audit
// events say which scope denied.
//
// # Errors
//
// Compile and ParsePolicy return errors wrapping ErrInvalidPolicy; Compile's
// are *PolicyError values naming the offending entry (for example
// `roles[1] "admin" inherits[0]: unknown role "staff"`).
package rbac
