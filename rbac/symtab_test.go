package rbac

import (
	"fmt"
	"strings"
	"testing"
)

// TestSymtab checks that every name resolves to its index and nothing
// else resolves, for name sets that stress the hashing: names sharing
// their first and last eight bytes (so their words are equal), names of
// every length, names differing in one byte, and tiny tables.
func TestSymtab(t *testing.T) {
	sets := map[string][]string{
		"empty": nil,
		"one":   {"a"},
		"seed":  {"chat:access", "chat:send", "profile:view", "profile:edit", "admin:access", "admin:users"},
	}
	var mixed []string
	for i := 0; i < 300; i++ {
		mixed = append(mixed, fmt.Sprintf("resource%d:act", i))
		mixed = append(mixed, fmt.Sprintf("prefix00-%03d-middle-suffix00", i)) // equal words
	}
	sets["mixed"] = append(mixed, "a", "b:c", "")
	var lengths []string
	for n := 0; n <= 40; n++ {
		lengths = append(lengths, strings.Repeat("x", n))
	}
	sets["every length"] = lengths
	var roles []string
	for i := 0; i < 1000; i++ {
		roles = append(roles, fmt.Sprintf("role%d", i))
	}
	sets["numbered"] = roles

	absent := []string{"resource300:act", "prefix00-999-middle-suffix00", "c", "b:d", "resource1:ac",
		strings.Repeat("x", 41), "role1000", "chat:sen", "chat:sendd", "Chat:send"}
	for name, names := range sets {
		t.Run(name, func(t *testing.T) {
			tab := newSymtab(names)
			for want, n := range names {
				got, ok := tab.get(n)
				if !ok || got != want {
					t.Fatalf("get(%q) = %d, %v; want %d, true", n, got, ok, want)
				}
			}
			for _, n := range absent {
				if v, ok := tab.get(n); ok {
					t.Errorf("get(%q) = %d, want not found", n, v)
				}
			}
		})
	}
	var zero symtab
	if _, ok := zero.get("x"); ok {
		t.Error("zero table found a name")
	}
}

// TestSymtabBuildFails shows that build reports names it cannot place
// (three names with one key share their two candidate slots) rather than
// looping or dropping one.
func TestSymtabBuildFails(t *testing.T) {
	tab := symtab{salt: 1, names: []string{"same", "same", "same"}}
	if tab.build(4) {
		t.Fatal("build placed three names in two slots")
	}
}

// FuzzSymtab builds a table from newline-separated names and checks that
// each resolves to its first index and that a name not in the set does
// not resolve.
func FuzzSymtab(f *testing.F) {
	f.Add("chat:send\nadmin:users\nprofile:view", "chat:sen")
	f.Add("prefix00-1-middle-suffix00\nprefix00-2-middle-suffix00", "prefix00-3-middle-suffix00")
	f.Add("\na\nab", "abc")
	f.Fuzz(func(t *testing.T, list, probe string) {
		var names []string
		first := map[string]int{}
		for _, n := range strings.Split(list, "\n") {
			if _, dup := first[n]; !dup {
				first[n] = len(names)
				names = append(names, n)
			}
		}
		tab := newSymtab(names)
		for n, want := range first {
			if got, ok := tab.get(n); !ok || got != want {
				t.Fatalf("get(%q) = %d, %v; want %d, true", n, got, ok, want)
			}
		}
		if _, in := first[probe]; !in {
			if v, ok := tab.get(probe); ok {
				t.Fatalf("get(%q) = %d, want not found", probe, v)
			}
		}
	})
}
