package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests()

		// Not confirmed: nothing changes.
		res := fx.run("n\n", "cancel", "req_a_overdue", "--reason", "the data subject withdrew the request")
		if res.code != exitFailure || !strings.Contains(res.stderr, "Cancel the erasure request req_a_overdue (pending)?") ||
			!strings.Contains(res.stderr, "nothing was done") {
			t.Errorf("cancel answered no: exit %d, stderr %q", res.code, res.stderr)
		}
		if r, _ := fx.store.Requests().Get(t.Context(), "req_a_overdue"); r.Status != privacy.StatusPending {
			t.Fatalf("an unconfirmed cancel left the request %s", r.Status)
		}

		res = fx.run("", "cancel", "req_a_overdue", "--reason", "the data subject withdrew the request", "--yes", "--json", "--actor", "user_admin")
		if res.code != exitOK {
			t.Fatalf("cancel: exit %d, stderr %s", res.code, res.stderr)
		}
		var got requestView
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("%v in %s", err, res.stdout)
		}
		want := requestView{ID: "req_a_overdue", Kind: privacy.KindErasure, Status: privacy.StatusCancelled, Regime: privacy.GDPR,
			Actor: "system:privacy", ReceivedAt: day("2026-01-15"), DueAt: privacy.GDPR.Deadline(day("2026-01-15")),
			Reason: "the data subject withdrew the request", CompletedAt: fx.now}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(requestView{}, "UpdatedAt")); diff != "" {
			t.Errorf("cancel --json (-want +got):\n%s", diff)
		}
		noRawIDs(t, res.stdout)

		// Stored cancelled, pseudonymised, and audited with the
		// command's actor.
		r, err := fx.store.Requests().Get(t.Context(), "req_a_overdue")
		if err != nil || r.Status != privacy.StatusCancelled || r.UserID != pseudonym(t, "user_carol") {
			t.Errorf("stored request: status %s, user pseudonymised %v, %v", r.Status, r.UserID == pseudonym(t, "user_carol"), err)
		}
		var cancelled []audit.Event
		for e, err := range fx.store.AuditSink().Events(t.Context(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Details["status"] == "cancelled" {
				cancelled = append(cancelled, e)
			}
		}
		if len(cancelled) != 1 || cancelled[0].Type != audit.DataDeletion || cancelled[0].Actor != pseudonym(t, "user_admin") ||
			cancelled[0].Subject != pseudonym(t, "user_carol") || cancelled[0].Details["requestId"] != "req_a_overdue" {
			t.Errorf("cancellation events: %+v", cancelled)
		}

		// The cancelled request is listed by its status.
		res = fx.run("", "requests", "--status", "cancelled", "--json")
		var listed []requestView
		if res.code != exitOK || json.Unmarshal([]byte(res.stdout), &listed) != nil {
			t.Fatalf("requests --status cancelled: exit %d, stdout %s, stderr %s", res.code, res.stdout, res.stderr)
		}
		if diff := cmp.Diff([]string{"req_a_overdue"}, requestIDs(listed)); diff != "" {
			t.Errorf("requests --status cancelled (-want +got):\n%s", diff)
		}

		for _, tc := range []struct {
			name string
			args []string
			code int
			says string
		}{
			{"a finished request", []string{"cancel", "req_d_done", "--reason", "x", "--yes"}, exitFailure, "request req_d_done is completed"},
			{"a cancelled one", []string{"cancel", "req_a_overdue", "--reason", "x", "--yes"}, exitFailure, "is cancelled"},
			{"an unknown one", []string{"cancel", "req_nobody", "--reason", "x", "--yes"}, exitFailure, "not found"},
			{"no reason", []string{"cancel", "req_e_ccpa", "--yes"}, exitUsage, "reason"},
			{"an empty reason", []string{"cancel", "req_e_ccpa", "--reason", " ", "--yes"}, exitUsage, "--reason is empty"},
			{"no ID", []string{"cancel", "--reason", "x"}, exitUsage, "needs one request ID"},
		} {
			res := fx.run("", tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.says) {
				t.Errorf("cancel of %s: exit %d (want %d), stderr %q (want %q)", tc.name, res.code, tc.code, res.stderr, tc.says)
			}
		}
		res = runCLI(t, withoutKey(fx.env()), "", "cancel", "req_e_ccpa", "--reason", "x", "--yes")
		if res.code != exitUsage || !strings.Contains(res.stderr, "cancel writes audit events") {
			t.Errorf("cancel without the audit key: exit %d, %q", res.code, res.stderr)
		}
		if r, _ := fx.store.Requests().Get(t.Context(), "req_e_ccpa"); r.Status != privacy.StatusPending {
			t.Errorf("a refused cancel left req_e_ccpa %s", r.Status)
		}
	})
}

func TestReplay(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_ada", 15)
		fx.addUser("user_bob", 5)
		if res := fx.run("", "erase", "user_ada", "--yes"); res.code != exitOK {
			t.Fatalf("erase: exit %d, %s %s", res.code, res.stdout, res.stderr)
		}

		// Nothing to replay yet.
		res := fx.run("", "replay", "--yes", "--json")
		var got struct {
			Erased int      `json:"erased"`
			Failed []string `json:"failed"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
			t.Fatalf("replay: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if diff := cmp.Diff(struct {
			Erased int      `json:"erased"`
			Failed []string `json:"failed"`
		}{0, []string{}}, got); diff != "" {
			t.Errorf("replay with nobody back (-want +got):\n%s", diff)
		}

		// A restored backup brings user_ada back, in the tables and in
		// Clerk.
		fx.addUser("user_ada", 15)
		res = fx.run("n\n", "replay")
		if res.code != exitFailure || !strings.Contains(res.stderr, "Erase again every erased user") || fx.rowsOf("user_ada") == 0 {
			t.Errorf("replay answered no: exit %d, stderr %q, %d rows", res.code, res.stderr, fx.rowsOf("user_ada"))
		}
		res = fx.run("y\n", "replay")
		if res.code != exitOK || res.stdout != "erased again 1 user a restore brought back\n" {
			t.Errorf("replay: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
		}
		if _, ok := fx.clerk.User("user_ada"); ok || fx.rowsOf("user_ada") != 0 {
			t.Errorf("after replay: user_ada in Clerk %v, %d rows left", ok, fx.rowsOf("user_ada"))
		}
		if _, ok := fx.clerk.User("user_bob"); !ok || fx.rowsOf("user_bob") == 0 {
			t.Errorf("replay touched user_bob, whom the ledger does not hold")
		}
		var replays int
		for r, err := range fx.store.Requests().List(t.Context(), privacy.RequestFilter{Kind: privacy.KindErasure}) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Actor == pseudonym(t, privacy.ReplayActor) || r.Actor == privacy.ReplayActor {
				replays++
				if r.Status != privacy.StatusCompleted {
					t.Errorf("replay request %s is %s", r.ID, r.Status)
				}
			}
		}
		if replays != 1 {
			t.Errorf("%d replay requests, want 1", replays)
		}
		if strings.Contains(res.stdout+res.stderr, "user_") {
			t.Errorf("replay output names a user: %q %q", res.stdout, res.stderr)
		}

		res = runCLI(t, withoutKey(fx.env()), "", "replay", "--yes")
		if res.code != exitUsage {
			t.Errorf("replay without the audit key: exit %d, %q", res.code, res.stderr)
		}
	})
}

// requestIDs returns the IDs of views, in order.
func requestIDs(views []requestView) []string {
	ids := []string{}
	for _, v := range views {
		ids = append(ids, v.ID)
	}
	return ids
}
