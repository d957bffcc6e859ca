package rbac

import (
	"fmt"
	"slices"
	"strings"
)

// Outcome classifies a Decision.
type Outcome string

// The outcomes Explain reports.
const (
	Granted           Outcome = "granted"
	Denied            Outcome = "denied"
	NotGranted        Outcome = "not_granted"
	UnknownRole       Outcome = "unknown_role"
	UnknownPermission Outcome = "unknown_permission"
)

// Decision says whether a role has a permission and which rule decided.
type Decision struct {
	Allowed    bool
	Outcome    Outcome
	Role       Role
	Permission Permission
	// Via is the role whose rule decided: the role itself or an ancestor.
	Via Role
	// Rule is the grant or deny entry that matched, e.g. "admin:*".
	Rule Permission
}

// String renders the decision for logs and debugging, e.g.
// `admin may admin:users: granted by role "admin" rule "admin:*"`.
func (d Decision) String() string {
	verb := "may not"
	if d.Allowed {
		verb = "may"
	}
	head := fmt.Sprintf("%s %s %s", d.Role, verb, d.Permission)
	switch d.Outcome {
	case Granted:
		return fmt.Sprintf("%s: granted by role %q rule %q", head, d.Via, d.Rule)
	case Denied:
		return fmt.Sprintf("%s: denied by role %q rule %q", head, d.Via, d.Rule)
	case UnknownRole:
		return head + ": unknown role"
	case UnknownPermission:
		return head + ": unknown permission"
	default:
		return head + ": no role grants it"
	}
}

// Explain says whether role has perm and why. It agrees with Can; it is
// meant for debugging and audits, not the hot path.
func (a *Authorizer) Explain(role Role, perm Permission) Decision {
	d := Decision{Role: role, Permission: perm, Outcome: NotGranted}
	ri, ok := a.roles[string(role)]
	if !ok {
		d.Outcome = UnknownRole
		return d
	}
	if _, ok := a.perms[string(perm)]; !ok {
		d.Outcome = UnknownPermission
		return d
	}
	// Breadth-first over the role and its ancestors: the nearest deny
	// wins over any grant; otherwise the nearest grant is reported.
	var grantVia Role
	var grantRule Permission
	visited := map[int]bool{ri: true}
	queue := []int{ri}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		spec := a.specs[i]
		if rule, ok := matching(spec.Denies, perm); ok {
			d.Outcome, d.Via, d.Rule = Denied, spec.Name, rule
			return d
		}
		if rule, ok := matching(spec.Grants, perm); ok && grantVia == "" {
			grantVia, grantRule = spec.Name, rule
		}
		for _, parent := range spec.Inherits {
			if pi := a.roles[string(parent)]; !visited[pi] {
				visited[pi] = true
				queue = append(queue, pi)
			}
		}
	}
	if grantVia != "" {
		d.Allowed, d.Outcome, d.Via, d.Rule = true, Granted, grantVia, grantRule
	}
	return d
}

func matching(rules []Permission, perm Permission) (Permission, bool) {
	i := slices.IndexFunc(rules, func(r Permission) bool {
		if isWildcard(r) {
			return strings.HasPrefix(string(perm), strings.TrimSuffix(string(r), "*"))
		}
		return r == perm
	})
	if i < 0 {
		return "", false
	}
	return rules[i], true
}
