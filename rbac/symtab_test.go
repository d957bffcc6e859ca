package rbac

import (
	"fmt"
	"testing"
)

// TestSymtab checks that every name resolves to its index and nothing
// else resolves, including names that share their first and last eight
// bytes and so hash alike.
func TestSymtab(t *testing.T) {
	var names []string
	for i := 0; i < 300; i++ {
		names = append(names, fmt.Sprintf("resource%d:act", i))
		names = append(names, fmt.Sprintf("prefix00-%03d-middle-suffix00", i)) // same first/last 8 bytes
	}
	names = append(names, "a", "b:c", "")
	tab := newSymtab(names)
	for want, n := range names {
		got, ok := tab.get(n)
		if !ok || got != want {
			t.Fatalf("get(%q) = %d, %v; want %d, true", n, got, ok, want)
		}
	}
	for _, n := range []string{"resource300:act", "prefix00-999-middle-suffix00", "c", "b:d", "resource1:ac"} {
		if v, ok := tab.get(n); ok {
			t.Errorf("get(%q) = %d, want not found", n, v)
		}
	}
	var empty symtab
	if _, ok := empty.get("x"); ok {
		t.Error("empty table found a name")
	}
}
