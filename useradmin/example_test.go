package useradmin_test

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// With WithLeases the last-admin guard holds across processes: each
// change takes the administrators lock from the shared Leaser
// (sqlstore's Leases in production), waiting briefly while another
// process holds it.
func ExampleWithLeases() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	verified := []steward.EmailAddress{{Address: "someone@example.com", Verified: true}}
	idp.Put(steward.User{ID: "user_ada", EmailAddresses: verified, PublicMetadata: map[string]any{"role": "admin"}})
	idp.Put(steward.User{ID: "user_bob", EmailAddresses: verified, PublicMetadata: map[string]any{"role": "admin"}})
	leases := steward.NewMemoryLeases(nil)
	m, _ := useradmin.New(idp, rbac.Default(), useradmin.WithLeases(leases), useradmin.WithLockWait(20*time.Millisecond))
	ada := rbac.Principal{UserID: "user_ada", Role: rbac.RoleAdmin, EmailVerified: true}

	// Another process is changing administrators right now.
	other, _ := leases.AcquireLease(ctx, useradmin.LeaseName, "another-process", time.Minute)
	_, err := m.AssignRole(ctx, ada, "user_bob", rbac.RoleUser)
	fmt.Println(errors.Is(err, useradmin.ErrBusy))

	_ = leases.ReleaseLease(ctx, other)
	prev, err := m.AssignRole(ctx, ada, "user_bob", rbac.RoleUser)
	fmt.Println(prev, err)
	// Output:
	// true
	// admin <nil>
}
