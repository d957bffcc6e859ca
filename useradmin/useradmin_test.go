package useradmin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/useradmin"
)

// backend is an identity provider under test with two admins' worth of
// fixtures: an admin (the actor) and a plain user.
type backend struct {
	idp          steward.IdentityProvider
	admin, plain string
	srv          *clerktest.Server // nil for memory
}

func backends(t *testing.T) map[string]func(t *testing.T) backend {
	verified := []steward.EmailAddress{{Address: "someone@example.com", Verified: true}}
	return map[string]func(t *testing.T) backend{
		"memory": func(t *testing.T) backend {
			idp := steward.NewMemoryIdentity()
			idp.Put(steward.User{ID: "user_admin", EmailAddresses: verified, PublicMetadata: map[string]any{"role": "admin"}})
			idp.Put(steward.User{ID: "user_plain", EmailAddresses: verified})
			return backend{idp: idp, admin: "user_admin", plain: "user_plain"}
		},
		"clerk": func(t *testing.T) backend {
			srv := clerktest.NewServer()
			t.Cleanup(srv.Close)
			// Clerk keeps email addresses unique across an instance.
			a := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "admin@example.com", Verified: true}}, PublicMetadata: map[string]any{"role": "admin"}})
			p := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "plain@example.com", Verified: true}}})
			return backend{idp: clerkadapter.New(srv.ClientConfig()), admin: a.ID, plain: p.ID, srv: srv}
		},
	}
}

func newManager(t *testing.T, b backend, opts ...useradmin.Option) (*useradmin.Manager, *audit.MemorySink) {
	t.Helper()
	sink := audit.NewMemorySink()
	log, err := audit.NewLogger(sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	m, err := useradmin.New(b.idp, rbac.Default(), append([]useradmin.Option{useradmin.WithAudit(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, sink
}

func principalOf(t *testing.T, m *useradmin.Manager, idp steward.IdentityProvider, id string) rbac.Principal {
	t.Helper()
	u, err := idp.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Principal(u)
}

func TestManager(t *testing.T) {
	ctx := context.Background()
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("assign a role and read it back", func(t *testing.T) {
				b := mk(t)
				m, sink := newManager(t, b)
				admin := principalOf(t, m, b.idp, b.admin)
				prev, err := m.AssignRole(ctx, admin, b.plain, rbac.RoleAdmin)
				if err != nil || prev != rbac.RoleUser {
					t.Fatalf("AssignRole = %q, %v", prev, err)
				}
				if r, _ := m.Role(ctx, b.plain); r != rbac.RoleAdmin {
					t.Errorf("Role = %q, want admin", r)
				}
				var admins []string
				for u, err := range m.UsersWithRole(ctx, rbac.RoleAdmin) {
					if err != nil {
						t.Fatal(err)
					}
					admins = append(admins, u.ID)
				}
				if len(admins) != 2 {
					t.Errorf("UsersWithRole(admin) = %v", admins)
				}
				events := sink.Snapshot()
				if len(events) != 1 || events[0].Type != audit.RoleChange {
					t.Fatalf("events = %+v", events)
				}
				if diff := cmp.Diff(map[string]any{"action": "assign_role", "oldRole": "user", "newRole": "admin"}, events[0].Details); diff != "" {
					t.Errorf("details (-want +got):\n%s", diff)
				}
				raw, _ := json.Marshal(events)
				for _, id := range []string{b.admin, b.plain} {
					if bytes.Contains(raw, []byte(id)) {
						t.Errorf("audit events carry the raw ID %s", id)
					}
				}
			})
			t.Run("the last active admin cannot be demoted, banned or locked", func(t *testing.T) {
				b := mk(t)
				m, sink := newManager(t, b, useradmin.AllowSelf(useradmin.AssignRole, useradmin.Ban, useradmin.Lock))
				admin := principalOf(t, m, b.idp, b.admin)
				if _, err := m.AssignRole(ctx, admin, b.admin, rbac.RoleUser); !errors.Is(err, useradmin.ErrLastAdmin) {
					t.Errorf("demoting the last admin = %v", err)
				}
				if err := m.SetBanned(ctx, admin, b.admin, true); !errors.Is(err, useradmin.ErrLastAdmin) {
					t.Errorf("banning the last admin = %v", err)
				}
				if err := m.SetLocked(ctx, admin, b.admin, true); !errors.Is(err, useradmin.ErrLastAdmin) {
					t.Errorf("locking the last admin = %v", err)
				}
				if r, _ := m.Role(ctx, b.admin); r != rbac.RoleAdmin {
					t.Error("the refused demotion changed the role")
				}
				// With a second admin, demotion is fine.
				if _, err := m.AssignRole(ctx, admin, b.plain, rbac.RoleAdmin); err != nil {
					t.Fatal(err)
				}
				if _, err := m.AssignRole(ctx, admin, b.admin, rbac.RoleUser); err != nil {
					t.Errorf("demoting one of two admins = %v", err)
				}
				if n := len(sink.Snapshot()); n != 2 {
					t.Errorf("%d audit events, want 2 (refusals write none)", n)
				}
			})
			t.Run("ban makes every permission denied", func(t *testing.T) {
				b := mk(t)
				m, _ := newManager(t, b)
				admin := principalOf(t, m, b.idp, b.admin)
				if err := m.SetBanned(ctx, admin, b.plain, true); err != nil {
					t.Fatal(err)
				}
				p := principalOf(t, m, b.idp, b.plain)
				for _, perm := range []rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit, rbac.AdminAccess, rbac.AdminUsers} {
					if rbac.Default().Allowed(p, perm) {
						t.Errorf("a banned user is allowed %s", perm)
					}
				}
				if err := m.SetBanned(ctx, admin, b.plain, false); err != nil {
					t.Fatal(err)
				}
				if !rbac.Default().Allowed(principalOf(t, m, b.idp, b.plain), rbac.ChatSend) {
					t.Error("unban did not restore access")
				}
				if err := m.SetLocked(ctx, admin, b.plain, true); err != nil {
					t.Fatal(err)
				}
				if rbac.Default().Allowed(principalOf(t, m, b.idp, b.plain), rbac.ChatSend) {
					t.Error("a locked user is allowed chat:send")
				}
			})
			t.Run("guard rails", func(t *testing.T) {
				b := mk(t)
				m, _ := newManager(t, b)
				admin := principalOf(t, m, b.idp, b.admin)
				plain := principalOf(t, m, b.idp, b.plain)
				tests := []struct {
					name string
					err  error
					want error
				}{
					{"a user without admin:users may not assign roles", second(m.AssignRole(ctx, plain, b.admin, rbac.RoleUser)), useradmin.ErrForbidden},
					{"a user without admin:users may not ban", m.SetBanned(ctx, plain, b.admin, true), useradmin.ErrForbidden},
					{"a banned admin may not act", second(m.AssignRole(ctx, rbac.Principal{UserID: b.admin, Role: rbac.RoleAdmin, EmailVerified: true, Banned: true}, b.plain, rbac.RoleAdmin)), useradmin.ErrForbidden},
					{"an admin may not demote themselves by default", second(m.AssignRole(ctx, admin, b.admin, rbac.RoleUser)), useradmin.ErrSelfAction},
					{"an admin may not lock themselves by default", m.SetLocked(ctx, admin, b.admin, true), useradmin.ErrSelfAction},
					{"unknown roles are refused", second(m.AssignRole(ctx, admin, b.plain, "root")), useradmin.ErrUnknownRole},
					{"unknown users are not found", second(m.AssignRole(ctx, admin, "user_nobody", rbac.RoleAdmin)), steward.ErrUserNotFound},
					{"malformed IDs are refused", m.SetBanned(ctx, admin, "user'--", true), steward.ErrInvalidUserID},
				}
				for _, tt := range tests {
					if !errors.Is(tt.err, tt.want) {
						t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
					}
				}
			})
		})
	}
}

func second[T any](_ T, err error) error { return err }

type noModeration struct{ steward.IdentityProvider }

func TestBanNeedsModerator(t *testing.T) {
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_admin", PublicMetadata: map[string]any{"role": "admin"}})
	idp.Put(steward.User{ID: "user_b"})
	m, _ := useradmin.New(noModeration{idp}, rbac.Default())
	admin := rbac.Principal{UserID: "user_admin", Role: rbac.RoleAdmin, EmailVerified: true}
	if err := m.SetBanned(context.Background(), admin, "user_b", true); !errors.Is(err, useradmin.ErrUnsupported) {
		t.Errorf("SetBanned = %v, want ErrUnsupported", err)
	}
}

// TestRoleChangeAppliesWithoutNewToken: the session middleware with the
// live role source sees an assigned role on the next request carrying
// the same token.
func TestRoleChangeAppliesWithoutNewToken(t *testing.T) {
	b := backends(t)["clerk"](t)
	live := clerkadapter.NewLiveRoles(b.idp, &clerkadapter.LiveRolesOptions{TTL: time.Hour})
	m, _ := newManager(t, b, useradmin.WithRoleCache(live))
	auth := clerkadapter.NewSessionAuth(b.srv.ClientConfig(), &clerkadapter.SessionOptions{Roles: live})
	h := auth.Handler(rbac.Require(rbac.AdminUsers)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	token := b.srv.SessionToken(b.plain)
	call := func() int {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := call(); got != http.StatusForbidden {
		t.Fatalf("before: %d, want 403", got)
	}
	admin := principalOf(t, m, b.idp, b.admin)
	if _, err := m.AssignRole(context.Background(), admin, b.plain, rbac.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if got := call(); got != http.StatusOK {
		t.Fatalf("after assigning admin, same token: %d, want 200", got)
	}
	if err := m.SetBanned(context.Background(), admin, b.plain, true); err != nil {
		t.Fatal(err)
	}
	if got := call(); got != http.StatusForbidden {
		t.Fatalf("after a ban, same token: %d, want 403", got)
	}
}

func TestHandler(t *testing.T) {
	b := backends(t)["memory"](t)
	m, _ := newManager(t, b)
	h := m.Handler()
	admin := principalOf(t, m, b.idp, b.admin)
	plain := principalOf(t, m, b.idp, b.plain)
	tests := []struct {
		name       string
		method     string
		path, body string
		principal  *rbac.Principal
		wantStatus int
		wantBody   map[string]any
	}{
		{"no principal", "GET", "/users/user_plain/role", "", nil, 401, map[string]any{"error": "Unauthorized"}},
		{"not an admin", "GET", "/users/user_plain/role", "", &plain, 403, map[string]any{"error": "Forbidden", "permission": "admin:users"}},
		{"read a role", "GET", "/users/user_plain/role", "", &admin, 200, map[string]any{"role": "user"}},
		{"unknown user", "GET", "/users/user_ghost/role", "", &admin, 404, map[string]any{"error": "user not found"}},
		{"malformed ID", "PUT", "/users/user%27x/role", `{"role":"admin"}`, &admin, 400, nil},
		{"bad body", "PUT", "/users/user_plain/role", `{"rol":"admin"}`, &admin, 400, map[string]any{"error": `body must be {"role": "<role>"}`}},
		{"unknown role", "PUT", "/users/user_plain/role", `{"role":"root"}`, &admin, 400, map[string]any{"error": `useradmin: unknown role: "root" (the policy declares [user admin])`}},
		{"assign", "PUT", "/users/user_plain/role", `{"role":"admin"}`, &admin, 200, map[string]any{"role": "admin", "previousRole": "user"}},
		{"self action", "POST", "/users/user_admin/ban", "", &admin, 403, map[string]any{"error": "useradmin: action on one's own account not allowed: ban"}},
		{"ban", "POST", "/users/user_plain/ban", "", &admin, 200, map[string]any{"action": "ban"}},
		{"unlock", "POST", "/users/user_plain/unlock", "", &admin, 200, map[string]any{"action": "unlock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.principal != nil {
				req = req.WithContext(rbac.WithPrincipal(req.Context(), *tt.principal))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body not JSON: %s", rec.Body)
			}
			if tt.wantBody == nil {
				if got["error"] == nil {
					t.Errorf("no error in %v", got)
				}
				return
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	// Last-admin conflict: demote the only other admin, then try the last.
	m2, _ := newManager(t, backends(t)["memory"](t), useradmin.AllowSelf(useradmin.AssignRole))
	req := httptest.NewRequest("PUT", "/users/user_admin/role", strings.NewReader(`{"role":"user"}`))
	req = req.WithContext(rbac.WithPrincipal(req.Context(), admin))
	rec := httptest.NewRecorder()
	m2.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict {
		t.Errorf("demoting the last admin over HTTP = %d, want 409", rec.Code)
	}
}

// sharedCache is a SharedRoleCache whose InvalidateContext fails with
// err; it records the users it was asked about.
type sharedCache struct {
	err   error
	calls []string
}

func (c *sharedCache) Invalidate(userID string) {
	c.calls = append(c.calls, "Invalidate "+userID)
}

func (c *sharedCache) InvalidateContext(_ context.Context, userID string) error {
	c.calls = append(c.calls, "InvalidateContext "+userID)
	return c.err
}

// TestSharedRoleCacheFailureIsReported: a change whose invalidation could
// not be told to the other processes is made and audited, and the error
// says so, wrapping the cache's.
func TestSharedRoleCacheFailureIsReported(t *testing.T) {
	down := errors.New("invalidation log unreachable")
	for _, tt := range []struct {
		name string
		err  error
	}{{"the log answers", nil}, {"the log is down", down}} {
		t.Run(tt.name, func(t *testing.T) {
			b := backends(t)["memory"](t)
			cache := &sharedCache{err: tt.err}
			m, sink := newManager(t, b, useradmin.WithRoleCache(cache))
			admin := principalOf(t, m, b.idp, b.admin)
			_, err := m.AssignRole(t.Context(), admin, b.plain, rbac.RoleAdmin)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("AssignRole = %v, want %v", err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), b.plain) {
				t.Errorf("error %q holds the user ID", err)
			}
			if r, _ := m.Role(t.Context(), b.plain); r != rbac.RoleAdmin {
				t.Errorf("role %q, want the change made anyway", r)
			}
			if diff := cmp.Diff([]string{"InvalidateContext " + b.plain}, cache.calls); diff != "" {
				t.Errorf("cache calls (-want +got):\n%s", diff)
			}
			if n := len(sink.Snapshot()); n != 1 {
				t.Errorf("%d audit events, want the change's one", n)
			}
		})
	}
}
