package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
)

// rowsOf counts the user's rows in the example tables that hold the user
// ID.
func (fx *fixture) rowsOf(user string) int {
	fx.t.Helper()
	total := 0
	for _, q := range []string{
		"SELECT count(*) FROM user_profiles WHERE clerk_id = ?",
		"SELECT count(*) FROM orders WHERE user_id = ?",
		"SELECT count(*) FROM activity_log WHERE user_id = ?",
	} {
		var n int
		if err := fx.db.QueryRowContext(fx.t.Context(), fx.dialect.Rebind(q), user).Scan(&n); err != nil {
			fx.t.Fatal(err)
		}
		total += n
	}
	return total
}

func TestExport(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		counts := fx.addUser("user_ada", 40)
		res := fx.run("", "export", "user_ada")
		if res.code != exitOK {
			t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
		}
		var doc privacy.ExportDocument
		if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
			t.Fatalf("%v in %.300s", err, res.stdout)
		}
		got := map[string]int{}
		for store, groups := range doc.Data {
			for _, g := range groups {
				got[store+"/"+g.Category] += len(g.Records)
			}
		}
		want := map[string]int{
			"application_database/profile": counts.Profiles, "application_database/orders": counts.Orders,
			"application_database/orderItems": counts.OrderItems, "application_database/preferences": counts.Preferences,
			"application_database/activityLog": counts.Activity,
		}
		if diff := cmp.Diff(want, got); diff != "" || doc.Identity.ID != "user_ada" || !doc.Complete {
			t.Errorf("export of %s, complete %v; records per category (-want +got):\n%s", doc.Identity.ID, doc.Complete, diff)
		}

		// To a file: mode 0600, a summary on standard output.
		file := filepath.Join(t.TempDir(), "ada.json")
		res = fx.run("", "export", "user_ada", "-o", file, "--json")
		var sum struct {
			User  string `json:"user"`
			File  string `json:"file"`
			Bytes int64  `json:"bytes"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil || res.code != exitOK {
			t.Fatalf("export -o: exit %d, %v, stdout %s stderr %s", res.code, err, res.stdout, res.stderr)
		}
		info, err := os.Stat(file)
		if err != nil || info.Size() != sum.Bytes || info.Mode().Perm() != 0o600 || sum.User != "user_ada" {
			t.Errorf("export -o: %+v, file %v (%v); want the file of mode 0600 and its size", sum, info, err)
		}

		// An existing file is kept, an unknown user leaves no file.
		res = fx.run("", "export", "user_ada", "-o", file)
		if res.code != exitUsage || !strings.Contains(res.stderr, "exists") {
			t.Errorf("export over a file: exit %d, stderr %q", res.code, res.stderr)
		}
		missing := filepath.Join(t.TempDir(), "nobody.json")
		res = fx.run("", "export", "user_nobody", "-o", missing)
		entries, _ := os.ReadDir(filepath.Dir(missing))
		if res.code != exitFailure || len(entries) != 0 || !strings.Contains(res.stderr, "not found") {
			t.Errorf("export of an unknown user: exit %d, stderr %q, %d files left", res.code, res.stderr, len(entries))
		}
	})
}

func TestErase(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_ada", 40)

		// Not confirmed: nothing happens.
		for _, answer := range []string{"n\n", ""} {
			res := fx.run(answer, "erase", "user_ada")
			if res.code != exitFailure || !strings.Contains(res.stderr, "Erase user_ada from application_database, consent, identity?") ||
				!strings.Contains(res.stderr, "nothing was done") {
				t.Errorf("erase answered %q: exit %d, stderr %q", answer, res.code, res.stderr)
			}
		}
		if n := fx.rowsOf("user_ada"); n == 0 {
			t.Fatal("an unconfirmed erase erased the user")
		}

		// Confirmed on standard input.
		res := fx.run("y\n", "erase", "user_ada", "--json")
		if res.code != exitOK {
			t.Fatalf("erase: exit %d, stderr %s", res.code, res.stderr)
		}
		var got privacy.DeletionResult
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatal(err)
		}
		want := privacy.DeletionResult{Success: true, DeletedFrom: []string{"application_database", "consent", "identity"},
			Errors: []privacy.StepError{}, RequestID: got.RequestID,
			Erased: map[string]int{"application_database": 40, "consent": 0, "identity": 1}}
		if diff := cmp.Diff(want, got); diff != "" || !strings.HasPrefix(got.RequestID, "req_") {
			t.Errorf("erase result (-want +got):\n%s", diff)
		}
		if _, ok := fx.clerk.User("user_ada"); ok || fx.rowsOf("user_ada") != 0 {
			t.Errorf("after erase: still in Clerk %v, %d rows left", ok, fx.rowsOf("user_ada"))
		}
		req, err := fx.store.Requests().Get(t.Context(), got.RequestID)
		if err != nil || req.Status != privacy.StatusCompleted || req.Actor != "system:cli" {
			t.Errorf("stored request: %+v, %v", req, err)
		}
	})
}

func TestErasePartialThenResume(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_bob", 20)
		// The run's Clerk calls: locking the account as the erasure opens
		// (best effort), then five attempts at deleting it.
		fx.clerk.FailNext(6, http.StatusBadRequest, 0)
		res := fx.run("", "erase", "user_bob", "--yes", "--regime", "ccpa", "--received", "2026-02-20")
		if res.code != exitPartial {
			t.Fatalf("erase with Clerk failing: exit %d, want %d; stdout %s stderr %s", res.code, exitPartial, res.stdout, res.stderr)
		}
		lines := strings.Split(res.stdout, "\n")
		id := strings.TrimSuffix(strings.TrimPrefix(lines[0][strings.Index(lines[0], "(request "):], "(request "), ")")
		if !strings.HasPrefix(lines[0], "erasure of user_bob: partial (request req_") ||
			lines[1] != "deleted from: application_database, consent" || !strings.HasPrefix(lines[2], "  identity: ") ||
			!strings.Contains(res.stderr, "steward resume "+id) {
			t.Errorf("partial erase output:\n%s\nstderr %s", res.stdout, res.stderr)
		}
		req, err := fx.store.Requests().Get(t.Context(), id)
		if err != nil || req.Status != privacy.StatusPartial || req.Regime != privacy.CCPA || !req.ReceivedAt.Equal(day("2026-02-20").Add(-9*3600e9)) {
			t.Errorf("stored request %+v, %v", req, err)
		}

		res = fx.run("", "resume", id, "--json")
		var got privacy.DeletionResult
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK || !got.Success {
			t.Fatalf("resume: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if _, ok := fx.clerk.User("user_bob"); ok {
			t.Error("resume left the user in Clerk")
		}
	})
}

func TestEraseHeld(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_erin", 10)
		res := fx.run("", "hold", "place", "user_erin", "--reason", "litigation")
		if res.code != exitOK || res.stdout != "placed a legal hold on user_erin: litigation\n" {
			t.Fatalf("hold place: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}
		res = fx.run("", "erase", "user_erin", "--yes")
		if res.code != exitFailure || !strings.Contains(res.stdout, "erasure of user_erin: held") || !strings.Contains(res.stderr, "legal hold") {
			t.Errorf("erase of a held user: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		if fx.rowsOf("user_erin") == 0 {
			t.Error("a held user was erased")
		}
	})
}

func TestResumePending(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests() // users carol, dan and gus are not in Clerk: deleting them is done at once
		res := fx.run("", "resume", "--pending", "--json")
		var got struct {
			Completed int      `json:"completed"`
			Failed    []string `json:"failed"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
			t.Fatalf("resume --pending: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if diff := cmp.Diff(struct {
			Completed int      `json:"completed"`
			Failed    []string `json:"failed"`
		}{3, []string{}}, got); diff != "" {
			t.Errorf("resume --pending (-want +got):\n%s", diff)
		}
		res = fx.run("", "requests")
		if res.code != exitOK || res.stdout != "ID          KIND     STATUS  RECEIVED    DUE         DAYS LEFT\nreq_c_held  erasure  held    2026-02-25  2026-03-25  -\n" {
			t.Errorf("requests after resume --pending:\n%s", res.stdout)
		}
	})
}

func TestHolds(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addRequests() // user_erin is held
		res := fx.run("", "hold", "place", "user_zed", "--reason", "tax audit", "--actor", "user_admin")
		if res.code != exitOK {
			t.Fatalf("hold place: exit %d, %s", res.code, res.stderr)
		}
		res = fx.run("", "hold", "list")
		if res.code != exitOK {
			t.Fatalf("hold list: exit %d, %s", res.code, res.stderr)
		}
		golden(t, "hold-list.golden", res.stdout)
		noRawIDs(t, res.stdout)
		if strings.Contains(res.stdout, "user_zed") {
			t.Errorf("hold list shows a raw user ID:\n%s", res.stdout)
		}

		res = fx.run("", "hold", "list", "--json")
		var got []holdView
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatal(err)
		}
		want := []holdView{
			{Subject: pseudonym(t, "user_erin"), Reason: "litigation: case 2026-17", PlacedBy: "system:legal", PlacedAt: day("2026-02-24")},
			{Subject: pseudonym(t, "user_zed"), Reason: "tax audit", PlacedBy: pseudonym(t, "user_admin"), PlacedAt: fx.now},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("hold list --json (-want +got):\n%s", diff)
		}

		// Release by pseudonym: asks first.
		ps := pseudonym(t, "user_erin")
		res = fx.run("no\n", "hold", "release", ps)
		if res.code != exitFailure || !strings.Contains(res.stderr, "Release the legal hold on "+ps) {
			t.Errorf("hold release, declined: exit %d, stderr %q", res.code, res.stderr)
		}
		res = fx.run("yes\n", "hold", "release", ps)
		if res.code != exitOK || res.stdout != "released the legal hold on "+ps+"\n" {
			t.Errorf("hold release: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}
		res = fx.run("", "hold", "release", "user_zed", "--yes")
		if res.code != exitOK {
			t.Errorf("hold release by ID: exit %d, %s", res.code, res.stderr)
		}
		res = fx.run("", "hold", "release", "user_zed", "--yes")
		if res.code != exitFailure || !strings.Contains(res.stderr, "user_zed has no legal hold") {
			t.Errorf("hold release of nobody: exit %d, %q", res.code, res.stderr)
		}
		res = fx.run("", "hold", "list")
		if res.stdout != "no legal holds\n" {
			t.Errorf("hold list after releases: %q", res.stdout)
		}
		res = runCLI(t, withoutKey(fx.env()), "", "hold", "list")
		if res.code != exitUsage || !strings.Contains(res.stderr, envAuditKey) {
			t.Errorf("hold list without a key: exit %d, %q", res.code, res.stderr)
		}
	})
}
