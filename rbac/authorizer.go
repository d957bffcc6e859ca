package rbac

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// ErrInvalidPolicy is wrapped by every error Compile and ParsePolicy
// return. Use errors.As with *PolicyError to learn which entry was wrong.
var ErrInvalidPolicy = errors.New("rbac: invalid policy")

// PolicyError names the policy entry Compile rejected.
type PolicyError struct {
	// Entry locates the bad entry, e.g. `roles[1] "admin" inherits[0]`.
	Entry string
	// Problem says what is wrong with it.
	Problem string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("rbac: invalid policy: %s: %s", e.Entry, e.Problem)
}

// Unwrap lets errors.Is match ErrInvalidPolicy.
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

func policyErr(entry, format string, args ...any) error {
	return &PolicyError{Entry: entry, Problem: fmt.Sprintf(format, args...)}
}

// Authorizer is a compiled, immutable policy. Every role's effective
// permissions (inheritance followed, wildcards expanded, denies removed)
// are precomputed as a bit set, and role and permission names are kept in
// cuckoo hash tables, so Can reads at most two slots per name and one
// word of bits, whatever the policy's size, and never allocates. An
// Authorizer is safe for concurrent use.
type Authorizer struct {
	perms       map[string]int // permission → bit index
	permNames   []Permission
	roles       map[string]int // role → row
	roleNames   []Role
	permTab     symtab   // perms, for the hot path
	roleTab     symtab   // roles, for the hot path
	words       int      // uint64 words per row
	allowed     []uint64 // row-major: effective permissions per role
	beforeVerif []uint64 // one row: permissions usable before verification
	defaultRole Role
	specs       []RoleSpec // the compiled policy, kept for Explain
}

// Compile validates p and builds its Authorizer. It rejects empty or
// malformed names, duplicates, unknown permissions and parents,
// inheritance cycles, wildcards that are malformed or match nothing, and
// a default role that is not declared; the error is a *PolicyError
// naming the offending entry.
func Compile(p Policy) (*Authorizer, error) {
	a := &Authorizer{
		perms: make(map[string]int, len(p.Permissions)),
		roles: make(map[string]int, len(p.Roles)),
	}
	for i, perm := range p.Permissions {
		entry := func() string { return fmt.Sprintf("permissions[%d] %q", i, perm) }
		if err := checkName(string(perm), false); err != nil {
			return nil, policyErr(entry(), "%v", err)
		}
		if _, dup := a.perms[string(perm)]; dup {
			return nil, policyErr(entry(), "duplicate permission")
		}
		a.perms[string(perm)] = i
		a.permNames = append(a.permNames, perm)
	}
	a.words = (len(p.Permissions) + 63) / 64
	for i, r := range p.Roles {
		entry := fmt.Sprintf("roles[%d] %q", i, r.Name)
		if err := checkName(string(r.Name), false); err != nil {
			return nil, policyErr(entry, "%v", err)
		}
		if _, dup := a.roles[string(r.Name)]; dup {
			return nil, policyErr(entry, "duplicate role")
		}
		a.roles[string(r.Name)] = i
		a.roleNames = append(a.roleNames, r.Name)
	}
	// Own grants and denies, and parents, per role.
	n := len(p.Roles)
	grants := make([]uint64, n*a.words)
	denies := make([]uint64, n*a.words)
	parents := make([][]int, n)
	for i, r := range p.Roles {
		entry := fmt.Sprintf("roles[%d] %q", i, r.Name)
		seen := make(map[Role]bool, len(r.Inherits))
		for j, parent := range r.Inherits {
			pi, ok := a.roles[string(parent)]
			switch {
			case !ok:
				return nil, policyErr(fmt.Sprintf("%s inherits[%d]", entry, j), "unknown role %q", parent)
			case seen[parent]:
				return nil, policyErr(fmt.Sprintf("%s inherits[%d]", entry, j), "duplicate parent %q", parent)
			}
			seen[parent] = true
			parents[i] = append(parents[i], pi)
		}
		if err := a.setBits(grants[i*a.words:(i+1)*a.words], r.Grants, entry+" grants"); err != nil {
			return nil, err
		}
		if err := a.setBits(denies[i*a.words:(i+1)*a.words], r.Denies, entry+" denies"); err != nil {
			return nil, err
		}
	}
	// Resolve inheritance depth-first, detecting cycles.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, n)
	var resolve func(i int, path []Role) error
	resolve = func(i int, path []Role) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			cycle := append(path, a.roleNames[i])
			names := make([]string, len(cycle))
			for k, r := range cycle {
				names[k] = string(r)
			}
			return policyErr(fmt.Sprintf("roles[%d] %q", i, a.roleNames[i]), "inheritance cycle %s", strings.Join(names, " → "))
		}
		state[i] = visiting
		for _, pi := range parents[i] {
			if err := resolve(pi, append(path, a.roleNames[i])); err != nil {
				return err
			}
			for w := 0; w < a.words; w++ {
				grants[i*a.words+w] |= grants[pi*a.words+w]
				denies[i*a.words+w] |= denies[pi*a.words+w]
			}
		}
		state[i] = done
		return nil
	}
	for i := range p.Roles {
		if err := resolve(i, nil); err != nil {
			return nil, err
		}
	}
	a.allowed = make([]uint64, n*a.words)
	for k := range a.allowed {
		a.allowed[k] = grants[k] &^ denies[k]
	}
	a.beforeVerif = make([]uint64, a.words)
	if err := a.setBits(a.beforeVerif, p.BeforeVerification, "beforeVerification"); err != nil {
		return nil, err
	}
	if p.DefaultRole == "" {
		return nil, policyErr("defaultRole", "empty")
	}
	if _, ok := a.roles[string(p.DefaultRole)]; !ok {
		return nil, policyErr("defaultRole", "unknown role %q", p.DefaultRole)
	}
	a.defaultRole = p.DefaultRole
	a.specs = append([]RoleSpec(nil), p.Roles...)
	a.permTab = newSymtab(stringsOf(a.permNames))
	a.roleTab = newSymtab(stringsOf(a.roleNames))
	return a, nil
}

// setBits sets the bits of row for each permission or wildcard in list.
func (a *Authorizer) setBits(row []uint64, list []Permission, entry string) error {
	for j, perm := range list {
		e := func() string { return fmt.Sprintf("%s[%d] %q", entry, j, perm) }
		if err := checkName(string(perm), true); err != nil {
			return policyErr(e(), "%v", err)
		}
		if !isWildcard(perm) {
			pi, ok := a.perms[string(perm)]
			if !ok {
				return policyErr(e(), "unknown permission")
			}
			row[pi/64] |= 1 << (pi % 64)
			continue
		}
		matched := false
		for _, pi := range a.match(perm) {
			row[pi/64] |= 1 << (pi % 64)
			matched = true
		}
		if !matched {
			return policyErr(e(), "wildcard matches no declared permission")
		}
	}
	return nil
}

// match returns the bit indexes perm (a permission or wildcard) names.
func (a *Authorizer) match(perm Permission) []int {
	s := string(perm)
	if !isWildcard(perm) {
		if pi, ok := a.perms[s]; ok {
			return []int{pi}
		}
		return nil
	}
	prefix := strings.TrimSuffix(s, "*")
	var out []int
	for pi, name := range a.permNames {
		if strings.HasPrefix(string(name), prefix) {
			out = append(out, pi)
		}
	}
	return out
}

func isWildcard(p Permission) bool { return strings.HasSuffix(string(p), "*") }

// checkName accepts lower-case names of letters, digits, '_', '-', '.'
// and ':'-separated segments; with wildcard, a final "*" segment (or "*"
// alone) is allowed too.
func checkName(s string, wildcard bool) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > 128 {
		return fmt.Errorf("name is %d bytes long (max 128)", len(s))
	}
	if wildcard && s == "*" {
		return nil
	}
	segs := strings.Split(s, ":")
	for k, seg := range segs {
		if seg == "" {
			return errors.New("empty segment")
		}
		if seg == "*" {
			if !wildcard || k != len(segs)-1 {
				return errors.New("'*' is only allowed as the whole last segment of a grant or deny")
			}
			continue
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				if c == '*' {
					return errors.New("'*' is only allowed as the whole last segment of a grant or deny")
				}
				return fmt.Errorf("character %q not allowed (use a-z 0-9 _ - . and ':' between segments)", c)
			}
		}
	}
	return nil
}

// Can reports whether role has perm under the policy. Unknown roles and
// permissions have nothing. Can does not allocate.
func (a *Authorizer) Can(role Role, perm Permission) bool {
	if len(a.allowed) == 0 { // no permissions, or not made by Compile
		return false
	}
	// Each name sits in one of its two candidate slots. Both names'
	// candidates are computed side by side so the processor overlaps the
	// two lookups.
	rt, pt := &a.roleTab, &a.permTab
	r, p := string(role), string(perm)
	if len(r) > 16 || len(p) > 16 { // the key of a long name needs a full hash
		ri, rok := rt.get(r)
		pi, pok := pt.get(p)
		return rok && pok && a.has(ri, pi)
	}
	// words, spelled out for the usual lengths (a role of four to seven
	// bytes, a permission of eight to sixteen) to save two calls.
	var ra, rb, pa, pb uint64
	if n := len(r); n >= 4 && n < 8 {
		ra = uint64(load32(r[:4])) | uint64(load32(r[n-4:]))<<32
	} else {
		ra, rb = words(r)
	}
	if n := len(p); n >= 8 {
		pa, pb = load64(p[:8]), load64(p[n-8:])
	} else {
		pa, pb = words(p)
	}
	r1, r2 := rt.candidates(ra, rb, len(r))
	p1, p2 := pt.candidates(pa, pb, len(p))
	rs, ps := &rt.slots[r1], &pt.slots[p1]
	if !rt.holds(rs, r, ra, rb) {
		if rs = &rt.slots[r2]; !rt.holds(rs, r, ra, rb) {
			return false
		}
	}
	if !pt.holds(ps, p, pa, pb) {
		if ps = &pt.slots[p2]; !pt.holds(ps, p, pa, pb) {
			return false
		}
	}
	return a.has(int(rs.val), int(ps.val))
}

// has tests the bit of permission pi in role ri's row.
func (a *Authorizer) has(ri, pi int) bool {
	return a.allowed[ri*a.words+pi>>6]&(1<<(uint(pi)&63)) != 0
}

// Allowed reports whether the principal may use perm: banned and locked
// principals may do nothing; a principal whose email is not verified may
// only use the policy's BeforeVerification permissions; otherwise the
// role decides (an unknown role counts as the default role).
//
// Allowed is the global check: the principal's organization permissions
// (OrgPermissions) never count here, since an organization grants them
// within that organization only. Check them with AllowedInOrg.
func (a *Authorizer) Allowed(p Principal, perm Permission) bool {
	if !a.gates(p, perm) {
		return false
	}
	return a.Can(a.roleOrDefault(p.Role), perm)
}

// gates applies the account gates: banned and locked principals may do
// nothing, unverified ones only the BeforeVerification permissions.
func (a *Authorizer) gates(p Principal, perm Permission) bool {
	if p.Banned || p.Locked {
		return false
	}
	if !p.EmailVerified {
		pi, ok := a.permTab.get(string(perm))
		if !ok || a.beforeVerif[pi>>6]&(1<<(uint(pi)&63)) == 0 {
			return false
		}
	}
	return true
}

// AllowedInOrg reports whether the principal may use perm within the
// organization orgID: the principal's session must be scoped to that
// organization (OrgID, never empty), the account gates of Allowed apply
// (banned and locked principals may do nothing, unverified ones only the
// policy's BeforeVerification permissions), and perm must be one of the
// permissions the organization grants the principal (OrgPermissions,
// such as "org:posts:read"). The principal's global role does not count:
// a global admin has no organization permission it was not granted.
func (a *Authorizer) AllowedInOrg(p Principal, orgID string, perm Permission) bool {
	if orgID == "" || p.OrgID != orgID || !a.gates(p, perm) {
		return false
	}
	for _, op := range p.OrgPermissions {
		if op == perm {
			return true
		}
	}
	return false
}

func (a *Authorizer) roleOrDefault(r Role) Role {
	if _, ok := a.roleTab.get(string(r)); ok {
		return r
	}
	return a.defaultRole
}

// ParseRole turns a stored role value (typically publicMetadata["role"],
// of any type) into a role of this policy: a string naming a declared
// role is that role; anything else is the policy's default role.
func (a *Authorizer) ParseRole(v any) Role {
	if s, ok := v.(string); ok {
		if _, known := a.roles[s]; known {
			return Role(s)
		}
	}
	return a.defaultRole
}

// DefaultRole returns the policy's default role.
func (a *Authorizer) DefaultRole() Role { return a.defaultRole }

// HasRole reports whether the policy declares role.
func (a *Authorizer) HasRole(role Role) bool {
	_, ok := a.roles[string(role)]
	return ok
}

// Roles returns the declared roles in policy order.
func (a *Authorizer) Roles() []Role { return append([]Role(nil), a.roleNames...) }

// Permissions returns the permissions role has, in policy order.
func (a *Authorizer) Permissions(role Role) []Permission {
	ri, ok := a.roles[string(role)]
	if !ok {
		return nil
	}
	var out []Permission
	row := a.allowed[ri*a.words : (ri+1)*a.words]
	for w, word := range row {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, a.permNames[w*64+b])
			word &^= 1 << b
		}
	}
	return out
}

func stringsOf[S ~string](names []S) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	return out
}
