package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
)

// rawIDs are the user IDs of the fixture's requests, which no listing may
// show.
var rawIDs = []string{"user_carol", "user_dan", "user_erin", "user_frank", "user_gus", "user_admin"}

func noRawIDs(t *testing.T, out string) {
	t.Helper()
	for _, id := range rawIDs {
		if strings.Contains(out, id) {
			t.Errorf("output shows the raw user ID %s:\n%s", id, out)
		}
	}
}

func TestRequestsTables(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests()
		for _, tc := range []struct {
			golden string
			args   []string
		}{
			{"requests.golden", []string{"requests"}},
			{"requests-overdue.golden", []string{"requests", "--overdue"}},
			{"requests-attention.golden", []string{"requests", "--attention"}},
			{"requests-completed.golden", []string{"requests", "--status", "completed"}},
			{"requests-none.golden", []string{"requests", "--user", "user_nobody"}},
		} {
			res := fx.run("", tc.args...)
			if res.code != exitOK {
				t.Fatalf("steward %v: exit %d, stderr %s", tc.args, res.code, res.stderr)
			}
			golden(t, tc.golden, res.stdout)
			noRawIDs(t, res.stdout)
		}
	})
}

func intp(n int) *int { return &n }

func TestRequestsJSON(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests()
		res := fx.run("", "requests", "--json")
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
		}
		noRawIDs(t, res.stdout)
		var got []requestView
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("%v in %s", err, res.stdout)
		}
		view := func(id string, g privacy.Regime, s privacy.Status, received string, left *int, overdue bool) requestView {
			r := day(received)
			return requestView{ID: id, Kind: privacy.KindErasure, Status: s, Regime: g, Actor: "system:privacy",
				DaysLeft: left, Overdue: overdue, ReceivedAt: r, DueAt: g.Deadline(r), UpdatedAt: r}
		}
		partial := view("req_b_partial", privacy.GDPR, privacy.StatusPartial, "2026-02-20", intp(19), false)
		partial.Actor = "" // a user's ID: shown only as a pseudonym, by show
		held := view("req_c_held", privacy.GDPR, privacy.StatusHeld, "2026-02-25", nil, false)
		held.Reason = "litigation: case 2026-17"
		want := []requestView{
			view("req_a_overdue", privacy.GDPR, privacy.StatusPending, "2026-01-15", intp(-14), true),
			partial,
			held,
			view("req_e_ccpa", privacy.CCPA, privacy.StatusPending, "2026-02-27", intp(43), false),
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("requests --json (-want +got):\n%s", diff)
		}
	})
}

func TestRequestsUsage(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		for _, tc := range []struct {
			args   []string
			stderr string
		}{
			{[]string{"requests", "--status", "lost"}, `--status: "lost" is not`},
			{[]string{"requests", "--overdue", "--attention"}, "none of the others can be"},
			{[]string{"requests", "extra"}, "takes no arguments"},
		} {
			res := fx.run("", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("steward %v: exit %d, stderr %q; want exit %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.stderr)
			}
		}
	})
}

func TestShow(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests()
		res := fx.run("", "show", "req_b_partial")
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
		}
		golden(t, "show-partial.golden", res.stdout)
		noRawIDs(t, res.stdout)

		res = fx.run("", "show", "req_b_partial", "--json")
		var got requestView
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("%v in %s", err, res.stdout)
		}
		if got.Subject != pseudonym(t, "user_dan") || got.Actor != pseudonym(t, "user_admin") {
			t.Errorf("subject %q, actor %q; want the pseudonyms of the user and the admin", got.Subject, got.Actor)
		}
		wantSteps := []string{"application_database done 1", "consent done 1", "identity failed 5", "audit pending 0"}
		var gotSteps []string
		for _, s := range got.Steps {
			gotSteps = append(gotSteps, s.Name+" "+string(s.Status)+" "+strconv.Itoa(s.Attempts))
		}
		if diff := cmp.Diff(wantSteps, gotSteps); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}

		// Without the audit key, no pseudonym and no user at all.
		res = runCLI(t, withoutKey(fx.env()), "", "show", "req_b_partial")
		if res.code != exitOK || strings.Contains(res.stdout, "subject") || strings.Contains(res.stdout, "hmac-sha256:") {
			t.Errorf("show without a key: exit %d, stdout:\n%s", res.code, res.stdout)
		}

		res = fx.run("", "show", "req_missing")
		if res.code != exitFailure || !strings.Contains(res.stderr, "not found") {
			t.Errorf("show req_missing: exit %d, stderr %q; want 1 and not found", res.code, res.stderr)
		}
	})
}

// withoutKey drops the audit key from env.
func withoutKey(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, envAuditKey+"=") && !strings.HasPrefix(kv, envAuditKeyID+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func TestExtend(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests()
		res := fx.run("", "extend", "req_e_ccpa", "--reason", "complex request: many systems", "--json")
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
		}
		var got requestView
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatal(err)
		}
		wantDue := privacy.CCPA.Extend(privacy.CCPA.Deadline(day("2026-02-27")))
		type extension struct {
			ID              string
			DueAt           time.Time
			ExtendedAt      time.Time
			ExtensionReason string
			DaysLeft        *int
		}
		want := extension{"req_e_ccpa", wantDue, fx.now, "complex request: many systems", intp(88)}
		if diff := cmp.Diff(want, extension{got.ID, got.DueAt, got.ExtendedAt, got.ExtensionReason, got.DaysLeft}); diff != "" {
			t.Errorf("extend --json (-want +got):\n%s", diff)
		}
		stored, err := fx.store.Requests().Get(t.Context(), "req_e_ccpa")
		if err != nil || !stored.DueAt.Equal(wantDue) {
			t.Errorf("stored due %v (%v), want %v", stored.DueAt, err, wantDue)
		}
		for _, tc := range []struct {
			args   []string
			code   int
			stderr string
		}{
			{[]string{"extend", "req_e_ccpa", "--reason", "again"}, exitFailure, "already extended"},
			{[]string{"extend", "req_d_done", "--reason", "late"}, exitFailure, "completed"},
			{[]string{"extend", "req_a_overdue"}, exitUsage, `"reason" not set`},
			{[]string{"extend", "req_a_overdue", "--reason", " "}, exitUsage, "--reason is empty"},
		} {
			res := fx.run("", tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("steward %v: exit %d, stderr %q; want %d and %q", tc.args, res.code, res.stderr, tc.code, tc.stderr)
			}
		}
	})
}
