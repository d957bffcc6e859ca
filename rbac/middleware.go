package rbac

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/stewardlabs/steward/audit"
)

// AuditLogger records audit events; *audit.Logger satisfies it. The
// logger pseudonymises the user IDs it is given.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// Option configures Require and RequireAny.
type Option func(*guard)

type guard struct {
	checker interface {
		Allowed(Principal, Permission) bool
		AllowedInOrg(Principal, string, Permission) bool
	}
	audit   AuditLogger
	onError func(r *http.Request, err error)
}

// WithAuthorizer checks permissions against a instead of the default
// policy.
func WithAuthorizer(a *Authorizer) Option {
	return func(g *guard) {
		if a != nil {
			g.checker = a
		}
	}
}

// WithHolder checks permissions against the Holder's current policy, so
// reloads take effect on the next request.
func WithHolder(h *Holder) Option {
	return func(g *guard) {
		if h != nil {
			g.checker = h
		}
	}
}

// WithAudit logs an access_denied event for every 403.
func WithAudit(l AuditLogger) Option { return func(g *guard) { g.audit = l } }

// WithErrorHandler is called when the audit logger fails to record a
// denial. The request is answered 403 regardless: denying is already the
// safe outcome. By default such errors are dropped.
func WithErrorHandler(f func(r *http.Request, err error)) Option {
	return func(g *guard) { g.onError = f }
}

// Require returns middleware that lets a request through only when the
// principal in its context (see WithPrincipal) is Allowed perm. Without
// a principal it answers 401 {"error":"Unauthorized"}; without the
// permission, 403 {"error":"Forbidden","permission":"<perm>"}.
func Require(perm Permission, opts ...Option) func(http.Handler) http.Handler {
	return RequireAny([]Permission{perm}, opts...)
}

// RequireAny is Require for a request that any one of perms admits.
func RequireAny(perms []Permission, opts ...Option) func(http.Handler) http.Handler {
	g := &guard{checker: Default()}
	for _, o := range opts {
		o(g)
	}
	perms = append([]Permission(nil), perms...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
				return
			}
			for _, perm := range perms {
				if g.checker.Allowed(p, perm) {
					next.ServeHTTP(w, r)
					return
				}
			}
			g.denied(r, p, perms)
			body := map[string]any{"error": "Forbidden"}
			if len(perms) == 1 {
				body["permission"] = perms[0]
			} else {
				body["permissions"] = perms
			}
			writeJSON(w, http.StatusForbidden, body)
		})
	}
}

// RequireOrg returns middleware that lets a request through only when
// the principal in its context is AllowedInOrg perm in the organization
// org names for the request, such as
//
//	rbac.RequireOrg("org:posts:manage", func(r *http.Request) string { return r.PathValue("org") })
//
// so that a permission granted in one organization never opens another
// organization's routes, nor global ones. Without a principal it answers
// 401 {"error":"Unauthorized"}; when org names no organization ("") or
// the principal lacks the permission there, 403
// {"error":"Forbidden","permission":"<perm>"}, with an access_denied
// audit event naming the scope.
func RequireOrg(perm Permission, org func(r *http.Request) string, opts ...Option) func(http.Handler) http.Handler {
	g := &guard{checker: Default()}
	for _, o := range opts {
		o(g)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
				return
			}
			orgID := ""
			if org != nil {
				orgID = org(r)
			}
			if g.checker.AllowedInOrg(p, orgID, perm) {
				next.ServeHTTP(w, r)
				return
			}
			g.deniedIn(r, p, []Permission{perm}, orgID)
			writeJSON(w, http.StatusForbidden, map[string]any{"error": "Forbidden", "permission": perm})
		})
	}
}

func (g *guard) denied(r *http.Request, p Principal, perms []Permission) {
	g.deniedIn(r, p, perms, "")
}

// deniedIn logs an access_denied event; orgID names the organization
// scope of the check, "" for the global scope.
func (g *guard) deniedIn(r *http.Request, p Principal, perms []Permission, orgID string) {
	if g.audit == nil {
		return
	}
	names := make([]string, len(perms))
	for i, perm := range perms {
		names[i] = string(perm)
	}
	details := map[string]any{
		"permissions": names,
		"method":      r.Method,
		"role":        string(p.Role),
		"scope":       "global",
	}
	if orgID != "" {
		details["scope"] = "organization"
		details["organization"] = orgID
		details["orgRole"] = p.OrgRole
	}
	// The route pattern, never the raw path: paths may carry user IDs.
	if r.Pattern != "" {
		details["route"] = r.Pattern
	}
	err := g.audit.Log(r.Context(), audit.Event{
		Type:    audit.AccessDenied,
		Subject: p.UserID,
		Actor:   p.UserID,
		Details: details,
	})
	if err != nil && g.onError != nil {
		g.onError(r, err)
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
