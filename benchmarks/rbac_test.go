package benchmarks

import (
	"fmt"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/stewardlabs/steward/rbac"
)

const casbinModel = `
[request_definition]
r = sub, obj
[policy_definition]
p = sub, obj
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj
`

// scenario is one policy expressed for both libraries, with a request
// that is allowed and one that is denied.
type scenario struct {
	name          string
	policy        rbac.Policy
	grants        [][2]string // role, permission
	parents       [][2]string // child, parent
	allow, deny   [2]string   // role, permission
	expectCompile bool
}

func seedScenario() scenario {
	s := scenario{name: "seed", policy: rbac.DefaultPolicy()}
	for _, p := range []string{"chat:access", "chat:send", "profile:view", "profile:edit"} {
		s.grants = append(s.grants, [2]string{"user", p})
	}
	for _, p := range []string{"admin:access", "admin:users"} {
		s.grants = append(s.grants, [2]string{"admin", p})
	}
	s.parents = [][2]string{{"admin", "user"}}
	s.allow = [2]string{"admin", "chat:send"} // through inheritance
	s.deny = [2]string{"user", "admin:users"}
	return s
}

// largeScenario has 100 roles in chains five deep and 1000 permissions,
// 10 granted directly to each role.
func largeScenario() scenario {
	s := scenario{name: "large"}
	for i := 0; i < 1000; i++ {
		s.policy.Permissions = append(s.policy.Permissions, rbac.Permission(fmt.Sprintf("res%d:act%d", i/10, i%10)))
	}
	for r := 0; r < 100; r++ {
		spec := rbac.RoleSpec{Name: rbac.Role(fmt.Sprintf("role%d", r))}
		if r%5 != 0 {
			parent := fmt.Sprintf("role%d", r-1)
			spec.Inherits = []rbac.Role{rbac.Role(parent)}
			s.parents = append(s.parents, [2]string{string(spec.Name), parent})
		}
		for k := 0; k < 10; k++ {
			perm := s.policy.Permissions[r*10+k]
			spec.Grants = append(spec.Grants, perm)
			s.grants = append(s.grants, [2]string{string(spec.Name), string(perm)})
		}
		s.policy.Roles = append(s.policy.Roles, spec)
	}
	s.policy.DefaultRole = "role0"
	// role99 is the end of a chain of five: its root is role95.
	s.allow = [2]string{"role99", string(s.policy.Permissions[950])}
	s.deny = [2]string{"role99", string(s.policy.Permissions[10])}
	return s
}

func newCasbin(tb testing.TB, s scenario) *casbin.SyncedEnforcer {
	m, err := model.NewModelFromString(casbinModel)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		tb.Fatal(err)
	}
	rules := make([][]string, len(s.grants))
	for i, g := range s.grants {
		rules[i] = []string{g[0], g[1]}
	}
	if _, err := e.AddPolicies(rules); err != nil {
		tb.Fatal(err)
	}
	links := make([][]string, len(s.parents))
	for i, p := range s.parents {
		links[i] = []string{p[0], p[1]}
	}
	if len(links) > 0 {
		if _, err := e.AddGroupingPolicies(links); err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

// sink keeps results alive so the compiler cannot drop the calls.
var sink bool

func stewardCan(a *rbac.Authorizer, req [2]string, want bool) func(b *testing.B) {
	role, perm := rbac.Role(req[0]), rbac.Permission(req[1])
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = a.Can(role, perm)
		}
		if sink != want {
			b.Fatalf("Can(%s, %s) = %v, want %v", role, perm, sink, want)
		}
	}
}

func casbinEnforce(e *casbin.SyncedEnforcer, req [2]string, want bool) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := e.Enforce(req[0], req[1])
			if err != nil {
				b.Fatal(err)
			}
			sink = ok
		}
		if sink != want {
			b.Fatalf("Enforce(%s, %s) = %v, want %v", req[0], req[1], sink, want)
		}
	}
}

// interleaved runs both calls in every iteration — inner Steward calls,
// then one casbin call — so the two see the same machine load, and reports
// each one's ns/op and their ratio.
func interleaved(b *testing.B, ours, theirs func() bool, want bool) (oursNs float64) {
	const inner = 1000
	var tOurs, tTheirs time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for i := 0; i < inner; i++ {
			sink = ours()
		}
		t1 := time.Now()
		if sink != want {
			b.Fatalf("Steward answered %v, want %v", sink, want)
		}
		if got := theirs(); got != want {
			b.Fatalf("casbin answered %v, want %v", got, want)
		}
		tOurs += t1.Sub(t0)
		tTheirs += time.Since(t1)
		n++
	}
	oursNs = float64(tOurs.Nanoseconds()) / float64(n*inner)
	theirsNs := float64(tTheirs.Nanoseconds()) / float64(n)
	b.ReportMetric(oursNs, "steward-ns/op")
	b.ReportMetric(theirsNs, "casbin-ns/op")
	b.ReportMetric(theirsNs/oursNs, "casbin/steward")
	return oursNs
}

// BenchmarkCan measures Authorizer.Can against casbin's Enforce on the
// same policy and requests. The steward and casbin sub-benchmarks give the
// raw numbers (and allocations); "ratio" interleaves the two in one loop
// and reports casbin ns/op ÷ Steward ns/op, and for the large policy its
// Can time ÷ the seed policy's.
func BenchmarkCan(b *testing.B) {
	seedNs := map[string]float64{}
	for _, s := range []scenario{seedScenario(), largeScenario()} {
		authz, err := rbac.Compile(s.policy)
		if err != nil {
			b.Fatal(err)
		}
		e := newCasbin(b, s)
		for _, c := range []struct {
			name string
			req  [2]string
			want bool
		}{{"allowed", s.allow, true}, {"denied", s.deny, false}} {
			b.Run(s.name+"/"+c.name+"/steward", stewardCan(authz, c.req, c.want))
			b.Run(s.name+"/"+c.name+"/casbin", casbinEnforce(e, c.req, c.want))
			b.Run(s.name+"/"+c.name+"/ratio", func(b *testing.B) {
				role, perm := rbac.Role(c.req[0]), rbac.Permission(c.req[1])
				ns := interleaved(b,
					func() bool { return authz.Can(role, perm) },
					func() bool { ok, _ := e.Enforce(c.req[0], c.req[1]); return ok },
					c.want)
				if s.name == "seed" {
					seedNs[c.name] = ns
				} else if seedNs[c.name] > 0 {
					b.ReportMetric(ns/seedNs[c.name], "large/seed")
				}
			})
		}
	}
}

// BenchmarkCompile measures compiling the large policy, beside casbin
// loading the same policy and building its role links.
func BenchmarkCompile(b *testing.B) {
	s := largeScenario()
	b.Run("steward", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rbac.Compile(s.policy); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("casbin", func(b *testing.B) {
		for b.Loop() {
			newCasbin(b, s)
		}
	})
}
