package rbac

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Holder holds the current Authorizer and swaps it atomically, so a policy
// can be reloaded while requests are checked: readers never block and
// never see a half-built policy. The zero Holder is not usable; call
// NewHolder.
type Holder struct {
	cur atomic.Pointer[Authorizer]
}

// NewHolder returns a Holder serving a. It panics if a is nil, as that is
// a programming error.
func NewHolder(a *Authorizer) *Holder {
	if a == nil {
		panic("rbac: NewHolder with a nil Authorizer")
	}
	h := &Holder{}
	h.cur.Store(a)
	return h
}

// Load returns the current Authorizer.
func (h *Holder) Load() *Authorizer { return h.cur.Load() }

// Store makes a the current Authorizer. A nil a is ignored.
func (h *Holder) Store(a *Authorizer) {
	if a != nil {
		h.cur.Store(a)
	}
}

// Reload compiles p and, if it is valid, makes it current. On error the
// current Authorizer stays in place.
func (h *Holder) Reload(p Policy) error {
	a, err := Compile(p)
	if err != nil {
		return err
	}
	h.cur.Store(a)
	return nil
}

// Can reports whether role has perm under the current policy.
func (h *Holder) Can(role Role, perm Permission) bool { return h.cur.Load().Can(role, perm) }

// Allowed applies Authorizer.Allowed with the current policy.
func (h *Holder) Allowed(p Principal, perm Permission) bool {
	return h.cur.Load().Allowed(p, perm)
}

// AllowedInOrg applies Authorizer.AllowedInOrg with the current policy.
func (h *Holder) AllowedInOrg(p Principal, orgID string, perm Permission) bool {
	return h.cur.Load().AllowedInOrg(p, orgID, perm)
}

var defaultAuthorizer = sync.OnceValue(func() *Authorizer {
	a, err := Compile(DefaultPolicy())
	if err != nil {
		panic(errors.Join(errors.New("rbac: the default policy does not compile"), err))
	}
	return a
})

// Default returns the compiled DefaultPolicy, built once.
func Default() *Authorizer { return defaultAuthorizer() }

// ParseRole validates a stored role against the default policy: "user"
// and "admin" are themselves, anything else (missing, misspelt, not a
// string) is RoleUser.
func ParseRole(v any) Role { return Default().ParseRole(v) }
