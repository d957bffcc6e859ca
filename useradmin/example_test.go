package useradmin_test

import (
	"context"
	"fmt"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/useradmin"
)

func ExampleManager_AssignRole() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_admin", PublicMetadata: map[string]any{"role": "admin"}})
	idp.Put(steward.User{ID: "user_bob"})

	m, _ := useradmin.New(idp, rbac.Default())
	admin := rbac.Principal{UserID: "user_admin", Role: rbac.RoleAdmin, EmailVerified: true}

	prev, err := m.AssignRole(ctx, admin, "user_bob", rbac.RoleAdmin)
	fmt.Println(prev, err)
	role, _ := m.Role(ctx, "user_bob")
	fmt.Println(role)

	_, err = m.AssignRole(ctx, admin, "user_bob", "superuser")
	fmt.Println(err)
	// Output:
	// user <nil>
	// admin
	// useradmin: unknown role: "superuser" (the policy declares [user admin])
}
