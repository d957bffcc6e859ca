package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestLedgerApart: with --ledger-db the command records erased users in
// the ledger the application keeps apart from the database a restore
// brings back (privacy.WithLedger), so that replay after a restore finds
// them; migrate prepares that database too.
func TestLedgerApart(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, sqltest.Open(t, sqlstore.SQLite), sqlstore.SQLite)
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	withLedger := func(stdin string, args ...string) result {
		t.Helper()
		return runCLI(t, fx.env(envLedgerDB+"="+ledger), stdin, args...)
	}

	res := withLedger("", "migrate", "--json")
	var versions struct {
		Ledger *struct{ From, To int }
	}
	if err := json.Unmarshal([]byte(res.stdout), &versions); err != nil || res.code != exitOK || versions.Ledger == nil || versions.Ledger.From != 0 || versions.Ledger.To == 0 {
		t.Fatalf("migrate --ledger-db: exit %d, %v, %q %q", res.code, err, res.stdout, res.stderr)
	}

	fx.addUser("user_ada", 3)
	if res := withLedger("", "erase", "user_ada", "--yes"); res.code != exitOK {
		t.Fatalf("erase: exit %d, %s", res.code, res.stderr)
	}
	// A restore of the main database brings the user back, at Clerk and in
	// the application's tables; the ledger database was not restored.
	fx.addUser("user_ada", 3)

	type replayed struct {
		Erased int      `json:"erased"`
		Failed []string `json:"failed"`
	}
	for _, tc := range []struct {
		name string
		run  func(stdin string, args ...string) result
		want replayed
	}{
		{"the main database's ledger never held the user", fx.run, replayed{0, []string{}}},
		{"the ledger database holds them", withLedger, replayed{1, []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.run("", "replay", "--yes", "--json")
			var got replayed
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
				t.Fatalf("replay: exit %d, %v, %q %q", res.code, err, res.stdout, res.stderr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("replay (-want +got):\n%s", diff)
			}
		})
	}

}
