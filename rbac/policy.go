package rbac

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The two roles of the data model.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// The six permissions of the data model.
const (
	ChatAccess  Permission = "chat:access"
	ChatSend    Permission = "chat:send"
	ProfileView Permission = "profile:view"
	ProfileEdit Permission = "profile:edit"
	AdminAccess Permission = "admin:access"
	AdminUsers  Permission = "admin:users"
)

// Policy declares permissions, roles and what each role may do. It is
// plain data: build it in Go or decode it from JSON with ParsePolicy, then
// Compile it into an Authorizer.
type Policy struct {
	// Permissions is the universe of permissions. Grants and denies may
	// only name these, or wildcards matching at least one of them.
	Permissions []Permission `json:"permissions"`
	// Roles are the roles, each with its grants, denies and parents.
	Roles []RoleSpec `json:"roles"`
	// DefaultRole is the role of a user whose stored role is missing or
	// unknown. It must be one of Roles.
	DefaultRole Role `json:"defaultRole"`
	// BeforeVerification lists the permissions a principal whose email is
	// not yet verified may use (if its role grants them). Empty means an
	// unverified principal may do nothing.
	BeforeVerification []Permission `json:"beforeVerification,omitempty"`
}

// RoleSpec declares one role.
type RoleSpec struct {
	Name Role `json:"name"`
	// Inherits names roles whose grants and denies this role takes on.
	Inherits []Role `json:"inherits,omitempty"`
	// Grants are permissions or wildcards: "admin:*" matches every
	// permission starting with "admin:", "*" matches all.
	Grants []Permission `json:"grants,omitempty"`
	// Denies are permissions or wildcards that this role (and every role
	// inheriting it) never has, whatever any grant says.
	Denies []Permission `json:"denies,omitempty"`
}

// DefaultPolicy returns the data model's policy: "user" (the default) may
// use chat:access, chat:send, profile:view and profile:edit; "admin"
// inherits those and adds admin:access and admin:users. Nothing is allowed
// before email verification.
func DefaultPolicy() Policy {
	return Policy{
		Permissions: []Permission{ChatAccess, ChatSend, ProfileView, ProfileEdit, AdminAccess, AdminUsers},
		Roles: []RoleSpec{
			{Name: RoleUser, Grants: []Permission{ChatAccess, ChatSend, ProfileView, ProfileEdit}},
			{Name: RoleAdmin, Inherits: []Role{RoleUser}, Grants: []Permission{"admin:*"}},
		},
		DefaultRole: RoleUser,
	}
}

// ParsePolicy decodes a JSON policy. Unknown fields are rejected so that a
// misspelt key ("grant" for "grants") is an error, not a silent no-op.
// The result still has to pass Compile.
func ParsePolicy(data []byte) (Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("%w: trailing data after the policy object", ErrInvalidPolicy)
	}
	return p, nil
}
