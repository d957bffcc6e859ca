package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/sqlstore"
)

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		res := fx.run("", "audit", "verify")
		if res.code != exitOK || res.stdout != "audit chain empty: no event to verify\n" {
			t.Errorf("verify of an empty chain: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}
		fx.logEvents(25, "user_ada")
		type report struct {
			OK       bool   `json:"ok"`
			Verified uint64 `json:"verified"`
			BrokenAt uint64 `json:"brokenAt"`
			Reason   string `json:"reason"`
		}
		res = fx.run("", "audit", "verify", "--json")
		var got report
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
			t.Fatalf("verify: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if diff := cmp.Diff(report{OK: true, Verified: 25}, got); diff != "" {
			t.Errorf("verify --json (-want +got):\n%s", diff)
		}

		// Edit event 7, as someone with the database's owner rights could
		// (the table's triggers refuse updates): the chain breaks there.
		untrigger := []string{"DROP TRIGGER steward_audit_events_no_update"}
		if fx.dialect == sqlstore.Postgres {
			untrigger = []string{"ALTER TABLE steward_audit_events DISABLE TRIGGER USER"}
		}
		for _, q := range untrigger {
			if _, err := fx.db.ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fx.db.ExecContext(t.Context(), fx.dialect.Rebind("UPDATE steward_audit_events SET details = ? WHERE seq = ?"), `{"n":700}`, 7); err != nil {
			t.Fatal(err)
		}
		res = fx.run("", "audit", "verify", "--json")
		got = report{}
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitFailure {
			t.Fatalf("verify of a broken chain: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if diff := cmp.Diff(report{Verified: 6, BrokenAt: 7, Reason: "hash does not match the event's contents"}, got); diff != "" {
			t.Errorf("verify --json of a broken chain (-want +got):\n%s", diff)
		}
		res = fx.run("", "audit", "verify")
		if !strings.HasPrefix(res.stdout, "audit chain broken at event 7: hash does not match the event's contents\n  event ") ||
			!strings.Contains(res.stdout, "data_access at 2026-03-01T12:00:00Z, subject "+pseudonym(t, "user_ada")) ||
			strings.Contains(res.stdout+res.stderr, "user_ada") {
			t.Errorf("verify of a broken chain:\n%s%s", res.stdout, res.stderr)
		}
	})
}

// collector is an HTTP audit collector that keeps what it is sent.
type collector struct {
	mu   sync.Mutex
	seqs []uint64
	auth []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var batch struct {
		Events []audit.Event `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	for _, e := range batch.Events {
		c.seqs = append(c.seqs, e.Sequence)
	}
}

func TestAuditForward(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.logEvents(12, "user_ada")
		c := &collector{}
		srv := httptest.NewServer(c)
		defer srv.Close()
		env := fx.env(envForwardToken + "=s3cret")
		res := runCLI(t, env, "", "audit", "forward", "--to", srv.URL, "--batch", "5")
		if res.code != exitOK || res.stdout != "forwarded 12 events to collector: cursor at 12 of 12\n" {
			t.Fatalf("forward: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}
		fx.logEvents(3, "user_bob")
		res = runCLI(t, env, "", "audit", "forward", "--to", srv.URL, "--json")
		type forwardReport struct {
			Destination string `json:"destination"`
			Forwarded   int    `json:"forwarded"`
			Cursor      uint64 `json:"cursor"`
			Head        uint64 `json:"head"`
		}
		var got forwardReport
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
			t.Fatalf("forward again: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if diff := cmp.Diff(forwardReport{Destination: "collector", Forwarded: 3, Cursor: 15, Head: 15}, got); diff != "" {
			t.Errorf("forward --json, the second time (-want +got):\n%s", diff)
		}
		var want []uint64
		for i := range 15 {
			want = append(want, uint64(i+1))
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if diff := cmp.Diff(want, c.seqs); diff != "" {
			t.Errorf("collector received (-want +got):\n%s", diff)
		}
		if c.auth[0] != "Bearer s3cret" {
			t.Errorf("Authorization %q, want the bearer token", c.auth[0])
		}

		res = runCLI(t, env, "", "audit", "forward", "--to", "http://collector.example.com/events")
		if res.code != exitUsage || !strings.Contains(res.stderr, "refusing to send credentials over plain http") {
			t.Errorf("forward over plain http to another host: exit %d, %q", res.code, res.stderr)
		}
	})
}
