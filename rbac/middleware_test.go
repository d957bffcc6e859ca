package rbac_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

type recordingLogger struct {
	events []audit.Event
	err    error
}

func (l *recordingLogger) Log(_ context.Context, e audit.Event) error {
	l.events = append(l.events, e)
	return l.err
}

func requireOne(perm rbac.Permission) func(rbac.AuditLogger) func(http.Handler) http.Handler {
	return func(l rbac.AuditLogger) func(http.Handler) http.Handler { return rbac.Require(perm, rbac.WithAudit(l)) }
}

func requireAny(perms ...rbac.Permission) func(rbac.AuditLogger) func(http.Handler) http.Handler {
	return func(l rbac.AuditLogger) func(http.Handler) http.Handler {
		return rbac.RequireAny(perms, rbac.WithAudit(l))
	}
}

func TestRequire(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	admin := rbac.Principal{UserID: "user_admin", Role: rbac.RoleAdmin, EmailVerified: true}
	user := rbac.Principal{UserID: "user_plain", Role: rbac.RoleUser, EmailVerified: true}
	tests := []struct {
		name       string
		principal  *rbac.Principal
		mw         func(rbac.AuditLogger) func(http.Handler) http.Handler
		wantStatus int
		wantBody   map[string]any
		wantDenied int
	}{
		{"no principal answers 401", nil, requireOne(rbac.AdminUsers),
			http.StatusUnauthorized, map[string]any{"error": "Unauthorized"}, 0},
		{"a principal with the permission passes", &admin, requireOne(rbac.AdminUsers),
			http.StatusNoContent, nil, 0},
		{"a principal without it answers 403", &user, requireOne(rbac.AdminUsers),
			http.StatusForbidden, map[string]any{"error": "Forbidden", "permission": "admin:users"}, 1},
		{"a banned admin answers 403", &rbac.Principal{UserID: "user_b", Role: rbac.RoleAdmin, EmailVerified: true, Banned: true}, requireOne(rbac.ChatSend),
			http.StatusForbidden, map[string]any{"error": "Forbidden", "permission": "chat:send"}, 1},
		{"RequireAny passes on any one permission", &user, requireAny(rbac.AdminUsers, rbac.ProfileView),
			http.StatusNoContent, nil, 0},
		{"RequireAny lists the permissions on 403", &user, requireAny(rbac.AdminUsers, rbac.AdminAccess),
			http.StatusForbidden, map[string]any{"error": "Forbidden", "permissions": []any{"admin:users", "admin:access"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &recordingLogger{}
			h := tt.mw(log)(ok)
			req := httptest.NewRequest(http.MethodGet, "/users/user_plain/role", nil)
			if tt.principal != nil {
				req = req.WithContext(rbac.WithPrincipal(req.Context(), *tt.principal))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantBody != nil {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				var got map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantBody, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if len(log.events) != tt.wantDenied {
				t.Fatalf("audited %d denials, want %d", len(log.events), tt.wantDenied)
			}
			for _, e := range log.events {
				if e.Type != audit.AccessDenied || e.Subject != tt.principal.UserID {
					t.Errorf("event = %+v", e)
				}
				b, _ := json.Marshal(e.Details)
				if strings.Contains(string(b), tt.principal.UserID) || strings.Contains(string(b), "user_plain") {
					t.Errorf("details carry a raw user ID: %s", b)
				}
			}
		})
	}
}

func TestRequireOrg(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	member := rbac.Principal{UserID: "user_m", Role: rbac.RoleUser, EmailVerified: true, OrgID: "org_1", OrgRole: "org:admin",
		OrgPermissions: []rbac.Permission{"org:posts:manage", rbac.AdminUsers}}
	orgOfPath := func(r *http.Request) string { return r.PathValue("org") }
	tests := []struct {
		name       string
		principal  *rbac.Principal
		path       string
		mw         func(l rbac.AuditLogger) func(http.Handler) http.Handler
		wantStatus int
		wantScope  map[string]any // details of the denial, when one is audited
	}{
		{"no principal", nil, "/orgs/org_1/posts", func(l rbac.AuditLogger) func(http.Handler) http.Handler {
			return rbac.RequireOrg("org:posts:manage", orgOfPath, rbac.WithAudit(l))
		}, http.StatusUnauthorized, nil},
		{"granted in the organization of the route", &member, "/orgs/org_1/posts", func(l rbac.AuditLogger) func(http.Handler) http.Handler {
			return rbac.RequireOrg("org:posts:manage", orgOfPath, rbac.WithAudit(l))
		}, http.StatusNoContent, nil},
		{"another organization's route", &member, "/orgs/org_2/posts", func(l rbac.AuditLogger) func(http.Handler) http.Handler {
			return rbac.RequireOrg("org:posts:manage", orgOfPath, rbac.WithAudit(l))
		}, http.StatusForbidden, map[string]any{"scope": "organization", "organization": "org_2", "orgRole": "org:admin"}},
		{"an organization permission does not open a global route", &member, "/orgs/org_1/posts", func(l rbac.AuditLogger) func(http.Handler) http.Handler {
			return rbac.Require(rbac.AdminUsers, rbac.WithAudit(l))
		}, http.StatusForbidden, map[string]any{"scope": "global"}},
		{"a route that names no organization", &member, "/orgs/org_1/posts", func(l rbac.AuditLogger) func(http.Handler) http.Handler {
			return rbac.RequireOrg("org:posts:manage", nil, rbac.WithAudit(l))
		}, http.StatusForbidden, map[string]any{"scope": "global"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &recordingLogger{}
			mux := http.NewServeMux()
			mux.Handle("/orgs/{org}/posts", tt.mw(log)(ok))
			req := httptest.NewRequest(http.MethodPost, tt.path, nil)
			if tt.principal != nil {
				req = req.WithContext(rbac.WithPrincipal(req.Context(), *tt.principal))
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantScope == nil {
				if len(log.events) != 0 {
					t.Errorf("audited %d denials, want none", len(log.events))
				}
				return
			}
			if len(log.events) != 1 {
				t.Fatalf("audited %d denials, want 1", len(log.events))
			}
			got := map[string]any{}
			for k := range tt.wantScope {
				got[k] = log.events[0].Details[k]
			}
			if diff := cmp.Diff(tt.wantScope, got); diff != "" {
				t.Errorf("denial details (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequireWithHolderSeesReload(t *testing.T) {
	h := rbac.NewHolder(rbac.Default())
	mw := rbac.Require(rbac.AdminUsers, rbac.WithHolder(h))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(rbac.WithPrincipal(req.Context(), rbac.Principal{Role: rbac.RoleAdmin, EmailVerified: true}))
	serve := func() int { rec := httptest.NewRecorder(); mw.ServeHTTP(rec, req); return rec.Code }
	if got := serve(); got != http.StatusOK {
		t.Fatalf("before reload: %d", got)
	}
	p := rbac.DefaultPolicy()
	p.Roles[1].Denies = []rbac.Permission{rbac.AdminUsers}
	if err := h.Reload(p); err != nil {
		t.Fatal(err)
	}
	if got := serve(); got != http.StatusForbidden {
		t.Fatalf("after reload: %d, want 403", got)
	}
}

func TestRequireAuditFailureStillDenies(t *testing.T) {
	var handled error
	log := &recordingLogger{err: errors.New("sink down")}
	mw := rbac.Require(rbac.AdminUsers, rbac.WithAudit(log), rbac.WithErrorHandler(func(_ *http.Request, err error) { handled = err }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(rbac.WithPrincipal(req.Context(), rbac.Principal{Role: rbac.RoleUser, EmailVerified: true}))
	rec := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || handled == nil {
		t.Fatalf("status %d, handled %v", rec.Code, handled)
	}
}
