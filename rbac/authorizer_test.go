package rbac_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/rbac"
)

var allPerms = []rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit, rbac.AdminAccess, rbac.AdminUsers}

func mustCompile(t testing.TB, p rbac.Policy) *rbac.Authorizer {
	t.Helper()
	a, err := rbac.Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return a
}

// TestDefaultPolicyMatchesDataModel checks every role × permission of the
// data model's table.
func TestDefaultPolicyMatchesDataModel(t *testing.T) {
	a := mustCompile(t, rbac.DefaultPolicy())
	want := map[rbac.Role]map[rbac.Permission]bool{
		rbac.RoleUser: {
			rbac.ChatAccess: true, rbac.ChatSend: true, rbac.ProfileView: true, rbac.ProfileEdit: true,
			rbac.AdminAccess: false, rbac.AdminUsers: false,
		},
		rbac.RoleAdmin: {
			rbac.ChatAccess: true, rbac.ChatSend: true, rbac.ProfileView: true, rbac.ProfileEdit: true,
			rbac.AdminAccess: true, rbac.AdminUsers: true,
		},
		"guest": {
			rbac.ChatAccess: false, rbac.ChatSend: false, rbac.ProfileView: false, rbac.ProfileEdit: false,
			rbac.AdminAccess: false, rbac.AdminUsers: false,
		},
	}
	got := map[rbac.Role]map[rbac.Permission]bool{}
	for role := range want {
		got[role] = map[rbac.Permission]bool{}
		for _, perm := range allPerms {
			got[role][perm] = a.Can(role, perm)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Can table mismatch (-want +got):\n%s", diff)
	}
	if a.Can(rbac.RoleAdmin, "admin:unknown") {
		t.Error("an undeclared permission must never be allowed, even under a wildcard")
	}
	if diff := cmp.Diff([]rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit}, a.Permissions(rbac.RoleUser)); diff != "" {
		t.Errorf("Permissions(user) (-want +got):\n%s", diff)
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in   any
		want rbac.Role
	}{
		{"user", rbac.RoleUser},
		{"admin", rbac.RoleAdmin},
		{"Admin", rbac.RoleUser},
		{"superuser", rbac.RoleUser},
		{"", rbac.RoleUser},
		{nil, rbac.RoleUser},
		{42, rbac.RoleUser},
		{[]any{"admin"}, rbac.RoleUser},
		{map[string]any{"role": "admin"}, rbac.RoleUser},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			if got := rbac.ParseRole(tt.in); got != tt.want {
				t.Errorf("ParseRole(%#v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAllowedGates(t *testing.T) {
	a := mustCompile(t, rbac.DefaultPolicy())
	withPre := rbac.DefaultPolicy()
	withPre.BeforeVerification = []rbac.Permission{rbac.ProfileView}
	pre := mustCompile(t, withPre)

	admin := rbac.Principal{UserID: "user_a", Role: rbac.RoleAdmin, EmailVerified: true}
	tests := []struct {
		name string
		a    *rbac.Authorizer
		p    rbac.Principal
		want []rbac.Permission // exactly what is allowed
	}{
		{"a verified admin has everything", a, admin, allPerms},
		{"a verified user has the user permissions", a, rbac.Principal{Role: rbac.RoleUser, EmailVerified: true},
			[]rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit}},
		{"an unknown role counts as the default role", a, rbac.Principal{Role: "root", EmailVerified: true},
			[]rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit}},
		{"a banned admin has nothing", a, rbac.Principal{Role: rbac.RoleAdmin, EmailVerified: true, Banned: true}, nil},
		{"a locked admin has nothing", a, rbac.Principal{Role: rbac.RoleAdmin, EmailVerified: true, Locked: true}, nil},
		{"an unverified admin has nothing by default", a, rbac.Principal{Role: rbac.RoleAdmin}, nil},
		{"an unverified user has only the before-verification permissions", pre, rbac.Principal{Role: rbac.RoleUser},
			[]rbac.Permission{rbac.ProfileView}},
		{"a banned unverified user has nothing, even before verification", pre, rbac.Principal{Role: rbac.RoleUser, Banned: true}, nil},
		{"organization permissions do not pass global checks", a, rbac.Principal{Role: rbac.RoleUser, EmailVerified: true, OrgID: "org_1", OrgPermissions: []rbac.Permission{rbac.AdminAccess}},
			[]rbac.Permission{rbac.ChatAccess, rbac.ChatSend, rbac.ProfileView, rbac.ProfileEdit}},
		{"organization permissions do not pass the ban gate", a, rbac.Principal{Role: rbac.RoleUser, EmailVerified: true, Banned: true, OrgPermissions: []rbac.Permission{rbac.AdminAccess}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []rbac.Permission
			for _, perm := range allPerms {
				if tt.a.Allowed(tt.p, perm) {
					got = append(got, perm)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allowed permissions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInheritanceWildcardsAndDeny(t *testing.T) {
	p := rbac.Policy{
		Permissions: []rbac.Permission{"doc:read", "doc:write", "doc:delete", "billing:view", "billing:refund"},
		Roles: []rbac.RoleSpec{
			{Name: "reader", Grants: []rbac.Permission{"doc:read"}},
			{Name: "writer", Inherits: []rbac.Role{"reader"}, Grants: []rbac.Permission{"doc:write"}},
			{Name: "owner", Inherits: []rbac.Role{"writer"}, Grants: []rbac.Permission{"*"}, Denies: []rbac.Permission{"billing:refund"}},
			{Name: "auditor", Inherits: []rbac.Role{"owner"}, Denies: []rbac.Permission{"doc:*"}},
		},
		DefaultRole: "reader",
	}
	a := mustCompile(t, p)
	got := map[rbac.Role][]rbac.Permission{}
	for _, r := range a.Roles() {
		got[r] = a.Permissions(r)
	}
	want := map[rbac.Role][]rbac.Permission{
		"reader":  {"doc:read"},
		"writer":  {"doc:read", "doc:write"},
		"owner":   {"doc:read", "doc:write", "doc:delete", "billing:view"},
		"auditor": {"billing:view"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("effective permissions (-want +got):\n%s", diff)
	}
}

func TestCompileRejectsInvalidPolicies(t *testing.T) {
	base := func(mod func(*rbac.Policy)) rbac.Policy {
		p := rbac.DefaultPolicy()
		mod(&p)
		return p
	}
	tests := []struct {
		name    string
		policy  rbac.Policy
		wantErr string
	}{
		{"unknown parent", base(func(p *rbac.Policy) { p.Roles[1].Inherits = []rbac.Role{"staff"} }),
			`roles[1] "admin" inherits[0]: unknown role "staff"`},
		{"cycle", base(func(p *rbac.Policy) { p.Roles[0].Inherits = []rbac.Role{rbac.RoleAdmin} }),
			`inheritance cycle`},
		{"empty role name", base(func(p *rbac.Policy) { p.Roles[0].Name = "" }),
			`roles[0] "": empty name`},
		{"empty permission name", base(func(p *rbac.Policy) { p.Permissions[2] = "" }),
			`permissions[2] "": empty name`},
		{"bad wildcard in the middle", base(func(p *rbac.Policy) { p.Roles[1].Grants = []rbac.Permission{"admin:*:x"} }),
			`roles[1] "admin" grants[0] "admin:*:x": '*' is only allowed`},
		{"partial-segment wildcard", base(func(p *rbac.Policy) { p.Roles[1].Grants = []rbac.Permission{"adm*"} }),
			`roles[1] "admin" grants[0] "adm*": '*' is only allowed`},
		{"wildcard matching nothing", base(func(p *rbac.Policy) { p.Roles[1].Grants = []rbac.Permission{"billing:*"} }),
			`wildcard matches no declared permission`},
		{"wildcard in the permission list", base(func(p *rbac.Policy) { p.Permissions[0] = "chat:*" }),
			`permissions[0] "chat:*": '*' is only allowed`},
		{"duplicate role", base(func(p *rbac.Policy) { p.Roles[1].Name = rbac.RoleUser }),
			`roles[1] "user": duplicate role`},
		{"duplicate permission", base(func(p *rbac.Policy) { p.Permissions[1] = rbac.ChatAccess }),
			`permissions[1] "chat:access": duplicate permission`},
		{"duplicate parent", base(func(p *rbac.Policy) { p.Roles[1].Inherits = []rbac.Role{rbac.RoleUser, rbac.RoleUser} }),
			`roles[1] "admin" inherits[1]: duplicate parent "user"`},
		{"unknown granted permission", base(func(p *rbac.Policy) { p.Roles[0].Grants = append(p.Roles[0].Grants, "chat:delete") }),
			`roles[0] "user" grants[4] "chat:delete": unknown permission`},
		{"unknown denied permission", base(func(p *rbac.Policy) { p.Roles[0].Denies = []rbac.Permission{"x:y"} }),
			`roles[0] "user" denies[0] "x:y": unknown permission`},
		{"bad characters", base(func(p *rbac.Policy) { p.Roles[0].Name = "Us er" }),
			`roles[0] "Us er": character 'U' not allowed`},
		{"missing default role", base(func(p *rbac.Policy) { p.DefaultRole = "" }),
			`defaultRole: empty`},
		{"unknown default role", base(func(p *rbac.Policy) { p.DefaultRole = "guest" }),
			`defaultRole: unknown role "guest"`},
		{"unknown before-verification permission", base(func(p *rbac.Policy) { p.BeforeVerification = []rbac.Permission{"x:y"} }),
			`beforeVerification[0] "x:y": unknown permission`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := rbac.Compile(tt.policy)
			if err == nil {
				t.Fatalf("Compile accepted an invalid policy: %v", a.Roles())
			}
			if !errors.Is(err, rbac.ErrInvalidPolicy) {
				t.Errorf("error %v does not wrap ErrInvalidPolicy", err)
			}
			var pe *rbac.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PolicyError", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	p := rbac.DefaultPolicy()
	p.Roles = append(p.Roles, rbac.RoleSpec{Name: "support", Inherits: []rbac.Role{rbac.RoleAdmin}, Denies: []rbac.Permission{rbac.AdminUsers}})
	a := mustCompile(t, p)
	tests := []struct {
		role rbac.Role
		perm rbac.Permission
		want rbac.Decision
		str  string
	}{
		{rbac.RoleAdmin, rbac.AdminUsers,
			rbac.Decision{Allowed: true, Outcome: rbac.Granted, Role: "admin", Permission: "admin:users", Via: "admin", Rule: "admin:*"},
			`admin may admin:users: granted by role "admin" rule "admin:*"`},
		{rbac.RoleAdmin, rbac.ChatSend,
			rbac.Decision{Allowed: true, Outcome: rbac.Granted, Role: "admin", Permission: "chat:send", Via: "user", Rule: "chat:send"},
			`admin may chat:send: granted by role "user" rule "chat:send"`},
		{"support", rbac.AdminUsers,
			rbac.Decision{Outcome: rbac.Denied, Role: "support", Permission: "admin:users", Via: "support", Rule: "admin:users"},
			`support may not admin:users: denied by role "support" rule "admin:users"`},
		{rbac.RoleUser, rbac.AdminAccess,
			rbac.Decision{Outcome: rbac.NotGranted, Role: "user", Permission: "admin:access"},
			`user may not admin:access: no role grants it`},
		{"ghost", rbac.ChatSend,
			rbac.Decision{Outcome: rbac.UnknownRole, Role: "ghost", Permission: "chat:send"},
			`ghost may not chat:send: unknown role`},
		{rbac.RoleUser, "chat:delete",
			rbac.Decision{Outcome: rbac.UnknownPermission, Role: "user", Permission: "chat:delete"},
			`user may not chat:delete: unknown permission`},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			got := a.Explain(tt.role, tt.perm)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Explain (-want +got):\n%s", diff)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if got.Allowed != a.Can(tt.role, tt.perm) {
				t.Errorf("Explain says %v, Can says %v", got.Allowed, a.Can(tt.role, tt.perm))
			}
		})
	}
}

func TestAllowedInOrg(t *testing.T) {
	a := mustCompile(t, rbac.DefaultPolicy())
	pre := rbac.DefaultPolicy()
	pre.BeforeVerification = []rbac.Permission{rbac.ProfileView}
	pv := mustCompile(t, pre)
	member := rbac.Principal{Role: rbac.RoleUser, EmailVerified: true, OrgID: "org_1", OrgRole: "org:member",
		OrgPermissions: []rbac.Permission{"org:posts:read", rbac.ProfileView}}
	with := func(f func(p *rbac.Principal)) rbac.Principal { p := member; f(&p); return p }
	tests := []struct {
		name  string
		a     *rbac.Authorizer
		p     rbac.Principal
		org   string
		perm  rbac.Permission
		want  bool
		wantG bool // what the global Allowed says of the same permission
	}{
		{"a permission the organization grants, in that organization", a, member, "org_1", "org:posts:read", true, false},
		{"the same permission in another organization", a, member, "org_2", "org:posts:read", false, false},
		{"no organization named", a, member, "", "org:posts:read", false, false},
		{"a permission the organization does not grant", a, member, "org_1", "org:posts:manage", false, false},
		{"a global admin's role grants nothing in an organization", a, with(func(p *rbac.Principal) {
			p.Role, p.OrgPermissions = rbac.RoleAdmin, nil
		}), "org_1", rbac.AdminUsers, false, true},
		{"a principal of no organization", a, with(func(p *rbac.Principal) { p.OrgID = "" }), "org_1", "org:posts:read", false, false},
		{"a banned member", a, with(func(p *rbac.Principal) { p.Banned = true }), "org_1", "org:posts:read", false, false},
		{"a locked member", a, with(func(p *rbac.Principal) { p.Locked = true }), "org_1", "org:posts:read", false, false},
		{"an unverified member", a, with(func(p *rbac.Principal) { p.EmailVerified = false }), "org_1", "org:posts:read", false, false},
		{"an unverified member, a before-verification permission", pv, with(func(p *rbac.Principal) { p.EmailVerified = false }), "org_1", rbac.ProfileView, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.AllowedInOrg(tt.p, tt.org, tt.perm); got != tt.want {
				t.Errorf("AllowedInOrg(%q, %q) = %v, want %v", tt.org, tt.perm, got, tt.want)
			}
			if got := rbac.NewHolder(tt.a).AllowedInOrg(tt.p, tt.org, tt.perm); got != tt.want {
				t.Errorf("Holder.AllowedInOrg = %v, want %v", got, tt.want)
			}
			if got := tt.a.Allowed(tt.p, tt.perm); got != tt.wantG {
				t.Errorf("Allowed(%q) = %v, want %v", tt.perm, got, tt.wantG)
			}
			if got := tt.p.InOrg(tt.org); got != (tt.org != "" && tt.org == tt.p.OrgID) {
				t.Errorf("InOrg(%q) = %v", tt.org, got)
			}
		})
	}
}

func TestCanDoesNotAllocate(t *testing.T) {
	a := mustCompile(t, rbac.DefaultPolicy())
	role, perm := rbac.Role("admin"), rbac.Permission("admin:users")
	allocs := testing.AllocsPerRun(1000, func() {
		if !a.Can(role, perm) || a.Can(rbac.RoleUser, perm) {
			panic("wrong answer")
		}
	})
	if allocs != 0 {
		t.Errorf("Can allocates %.1f times per call, want 0", allocs)
	}
	p := rbac.Principal{Role: rbac.RoleAdmin, EmailVerified: true}
	if allocs := testing.AllocsPerRun(1000, func() { a.Allowed(p, perm) }); allocs != 0 {
		t.Errorf("Allowed allocates %.1f times per call, want 0", allocs)
	}
	m := rbac.Principal{EmailVerified: true, OrgID: "org_1", OrgPermissions: []rbac.Permission{"org:posts:read"}}
	if allocs := testing.AllocsPerRun(1000, func() { a.AllowedInOrg(m, "org_1", "org:posts:read") }); allocs != 0 {
		t.Errorf("AllowedInOrg allocates %.1f times per call, want 0", allocs)
	}
}

// TestHolderReloadUnderLoad swaps policies while 8 goroutines check; run
// it with -race. Every answer must come from one whole policy.
func TestHolderReloadUnderLoad(t *testing.T) {
	grantAll := rbac.DefaultPolicy()
	denyAdmin := rbac.DefaultPolicy()
	denyAdmin.Roles[1].Denies = []rbac.Permission{"admin:*"}
	a1, a2 := mustCompile(t, grantAll), mustCompile(t, denyAdmin)
	h := rbac.NewHolder(a1)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := h.Load()
				// Within one policy, admin:access and admin:users agree.
				if a.Can(rbac.RoleAdmin, rbac.AdminAccess) != a.Can(rbac.RoleAdmin, rbac.AdminUsers) {
					errs <- "saw a half-applied policy"
					return
				}
				if !h.Can(rbac.RoleAdmin, rbac.ChatSend) {
					errs <- "chat:send lost during reload"
					return
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		if i%2 == 0 {
			h.Store(a2)
		} else if err := h.Reload(grantAll); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	bad := rbac.DefaultPolicy()
	bad.DefaultRole = "nobody"
	before := h.Load()
	if err := h.Reload(bad); err == nil {
		t.Error("Reload accepted an invalid policy")
	}
	if h.Load() != before {
		t.Error("a failed Reload replaced the current policy")
	}
}

func TestParsePolicy(t *testing.T) {
	js := `{
	  "permissions": ["chat:access", "chat:send", "profile:view", "profile:edit", "admin:access", "admin:users"],
	  "roles": [
	    {"name": "user", "grants": ["chat:access", "chat:send", "profile:view", "profile:edit"]},
	    {"name": "admin", "inherits": ["user"], "grants": ["admin:*"]}
	  ],
	  "defaultRole": "user"
	}`
	p, err := rbac.ParsePolicy([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rbac.DefaultPolicy(), p); diff != "" {
		t.Errorf("JSON policy differs from DefaultPolicy (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"roles": [{"name": "x", "grant": ["a"]}]}`, `{} {}`, `[`, `{"permissions": 3}`} {
		if _, err := rbac.ParsePolicy([]byte(bad)); !errors.Is(err, rbac.ErrInvalidPolicy) {
			t.Errorf("ParsePolicy(%q) = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func FuzzPolicyJSON(f *testing.F) {
	f.Add([]byte(`{"permissions":["a:b"],"roles":[{"name":"r","grants":["a:*"]}],"defaultRole":"r"}`))
	f.Add([]byte(`{"permissions":["a"],"roles":[{"name":"r","inherits":["r"]}],"defaultRole":"r"}`))
	f.Add([]byte(`{"permissions":["a","b"],"roles":[{"name":"x","inherits":["y"]},{"name":"y","inherits":["x"]}],"defaultRole":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rbac.ParsePolicy(data)
		if err != nil {
			return
		}
		a, err := rbac.Compile(p)
		if err != nil {
			if !errors.Is(err, rbac.ErrInvalidPolicy) {
				t.Fatalf("Compile error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		for _, r := range p.Roles {
			for _, perm := range p.Permissions {
				if a.Explain(r.Name, perm).Allowed != a.Can(r.Name, perm) {
					t.Fatalf("Explain and Can disagree on %q %q", r.Name, perm)
				}
			}
		}
	})
}

func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"user", "admin", "", "ADMIN", "admin ", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := rbac.ParseRole(s)
		if r != rbac.RoleUser && r != rbac.RoleAdmin {
			t.Fatalf("ParseRole(%q) = %q, not a known role", s, r)
		}
		if r == rbac.RoleAdmin && s != "admin" {
			t.Fatalf("ParseRole(%q) = admin", s)
		}
	})
}

// TestCanEveryNameLength checks Can against the policy's own grants for
// roles and permissions of every length from 1 to 24 bytes, since Can
// reads short, medium and long names differently, and for absent names
// of each length.
func TestCanEveryNameLength(t *testing.T) {
	const maxLen = 24
	name := func(prefix string, n int) string { return (prefix + strings.Repeat("x", n))[:n] }
	var p rbac.Policy
	for n := 1; n <= maxLen; n++ {
		p.Permissions = append(p.Permissions, rbac.Permission(name("p", n)))
	}
	want := map[[2]string]bool{}
	for n := 1; n <= maxLen; n++ {
		role := rbac.RoleSpec{Name: rbac.Role(name("r", n))}
		for k, perm := range p.Permissions {
			if (n+k)%3 == 0 {
				role.Grants = append(role.Grants, perm)
				want[[2]string{string(role.Name), string(perm)}] = true
			}
		}
		p.Roles = append(p.Roles, role)
	}
	p.DefaultRole = p.Roles[0].Name
	a := mustCompile(t, p)

	got := map[[2]string]bool{}
	for n := 1; n <= maxLen; n++ {
		for _, role := range []string{name("r", n), name("q", n)} { // q…: not a role
			for k := 1; k <= maxLen; k++ {
				for _, perm := range []string{name("p", k), name("o", k)} { // o…: not a permission
					if a.Can(rbac.Role(role), rbac.Permission(perm)) {
						got[[2]string{role, perm}] = true
					}
				}
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Can differs from the grants (-want +got):\n%s", diff)
	}
	if a.Can("", "") || a.Can("", "px") || a.Can("rx", "") {
		t.Error("Can allowed an empty name")
	}
}
