package sqldialect_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/sqldialect"
)

// FuzzRebind checks that Postgres.Rebind only ever turns ? into $1, $2, ...
// in order, and that SQLite.Rebind changes nothing.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{
		"SELECT ?", "'?'", `"?"`, "-- ?\n?", "/* ? */?", "'it''s' ?", "?'", "/*", "--", "", "?????",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if got := sqldialect.SQLite.Rebind(q); got != q {
			t.Fatalf("SQLite.Rebind(%q) = %q, want it unchanged", q, got)
		}
		if strings.Contains(q, "$") {
			return // the input's own $n would confuse the check below
		}
		// With no $ in q, every $ in the output is a placeholder, and
		// the k-th must be $k standing where the k-th rebound ? was.
		got := sqldialect.Postgres.Rebind(q)
		var back strings.Builder
		rest := got
		for k := 1; ; k++ {
			i := strings.IndexByte(rest, '$')
			if i < 0 {
				back.WriteString(rest)
				break
			}
			n := strconv.Itoa(k)
			if !strings.HasPrefix(rest[i+1:], n) {
				t.Fatalf("Postgres.Rebind(%q) = %q: placeholder %d is not $%s", q, got, k, n)
			}
			back.WriteString(rest[:i])
			back.WriteByte('?')
			rest = rest[i+1+len(n):]
		}
		if back.String() != q {
			t.Fatalf("Postgres.Rebind(%q) = %q: changed more than placeholders", q, got)
		}
	})
}
