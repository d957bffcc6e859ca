package rbac_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/stewardlabs/steward/rbac"
)

func ExampleCompile() {
	p := rbac.DefaultPolicy()
	// A support role: everything an admin has except managing users.
	p.Roles = append(p.Roles, rbac.RoleSpec{
		Name:     "support",
		Inherits: []rbac.Role{rbac.RoleAdmin},
		Denies:   []rbac.Permission{rbac.AdminUsers},
	})
	authz, err := rbac.Compile(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(authz.Permissions("support"))
	fmt.Println(authz.Explain("support", rbac.AdminUsers))
	// Output:
	// [chat:access chat:send profile:view profile:edit admin:access]
	// support may not admin:users: denied by role "support" rule "admin:users"
}

func ExampleAuthorizer_Can() {
	authz, _ := rbac.Compile(rbac.DefaultPolicy())
	role := rbac.ParseRole("admin") // e.g. user.PublicMetadata["role"]
	fmt.Println(authz.Can(role, rbac.AdminUsers))
	fmt.Println(authz.Can(rbac.ParseRole("superuser"), rbac.AdminUsers))
	// Output:
	// true
	// false
}

func ExampleRequire() {
	mux := http.NewServeMux()
	mux.Handle("GET /admin/users", rbac.Require(rbac.AdminUsers)(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the user list") })))

	for _, p := range []*rbac.Principal{
		nil,
		{UserID: "user_1", Role: rbac.RoleUser, EmailVerified: true},
		{UserID: "user_2", Role: rbac.RoleAdmin, EmailVerified: true},
	} {
		req := httptest.NewRequest(http.MethodGet, "/admin/users", nil)
		if p != nil { // in production the session middleware does this
			req = req.WithContext(rbac.WithPrincipal(req.Context(), *p))
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 401 {"error":"Unauthorized"}
	// 403 {"error":"Forbidden","permission":"admin:users"}
	// 200 the user list
}

// Organization permissions hold in their organization only: the global
// check ignores them, and AllowedInOrg names the organization.
func ExampleAuthorizer_AllowedInOrg() {
	authz := rbac.Default()
	p := rbac.Principal{UserID: "user_1", Role: rbac.RoleUser, EmailVerified: true,
		OrgID: "org_1", OrgRole: "org:admin", OrgPermissions: []rbac.Permission{"org:posts:manage"}}
	fmt.Println(authz.AllowedInOrg(p, "org_1", "org:posts:manage"))
	fmt.Println(authz.AllowedInOrg(p, "org_2", "org:posts:manage"))
	fmt.Println(authz.Allowed(p, "org:posts:manage"))
	// Output:
	// true
	// false
	// false
}
