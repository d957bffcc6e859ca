package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/internal/fleet"
	"github.com/stewardlabs/steward/privacy"
)

// opState is what the journals say of one operation.
type opState struct {
	Op, Type        string
	User            int
	Slot, Inc, Pid  int
	Started, Ended  bool
	OK, Event       bool
	Expected, Leak  bool
	Err, Request    string
	N               int
	StartAt, EndsAt time.Time
}

// eventTypes are the audit event types of the operations that log one,
// found by their actor.
var eventTypes = map[string]audit.Type{
	opExport:  audit.DataExport,
	opConsent: audit.ConsentChange,
	opRole:    audit.RoleChange,
	opBan:     audit.RoleChange,
	opLog:     audit.DataAccess,
}

// journals reads every worker's journal.
func journals(t *testing.T, dir string) (map[string]*opState, map[[2]int][]record) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "w*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*opState{}
	byInc := map[[2]int][]record{}
	for _, f := range files {
		recs, err := fleet.ReadJournal[record](f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			byInc[[2]int{r.Slot, r.Inc}] = append(byInc[[2]int{r.Slot, r.Inc}], r)
			if r.Op == "" {
				continue
			}
			o := ops[r.Op]
			if o == nil {
				o = &opState{Op: r.Op, Type: r.Type, User: r.User, Slot: r.Slot, Inc: r.Inc, Pid: r.Pid}
				ops[r.Op] = o
			}
			switch r.Kind {
			case recStart:
				o.Started, o.StartAt = true, r.At
			case recEnd:
				o.Ended, o.EndsAt = true, r.At
				o.OK, o.Event, o.Expected, o.Leak, o.Err, o.Request, o.N = r.OK, r.Event, r.Expected, r.Leak, r.Err, r.Request, r.N
			}
		}
	}
	return ops, byInc
}

func checkAll(t *testing.T, w *world) {
	ctx := context.Background()
	ops, byInc := journals(t, w.cfg.Dir)
	userIndex := map[string]int{}
	bySubject := map[string]int{}
	for i, id := range w.cfg.Users {
		userIndex[id] = i
		bySubject[w.pseudo.Pseudonym(id)] = i
	}
	at := func(x time.Time) string { return fmt.Sprintf("+%.3fs", x.Sub(w.cfg.Start).Seconds()) }

	t.Run("every worker was killed by the harness or drained and exited 0", func(t *testing.T) {
		for _, in := range w.h.all {
			out, _ := os.ReadFile(in.output)
			if s := string(out); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
				t.Errorf("worker %d incarnation %d (pid %d) raced or panicked:\n%s", in.slot, in.inc, in.proc.Pid(), tail(s, 4000))
			}
			if in.proc.Killed() {
				continue
			}
			var began, drainedAt time.Time
			for _, r := range byInc[[2]int{in.slot, in.inc}] {
				switch {
				case r.Kind == recNote && r.Note == "draining":
					began = r.At
				case r.Kind == recDrained:
					drainedAt = r.At
				}
			}
			for _, r := range byInc[[2]int{in.slot, in.inc}] {
				if r.Kind == recNote && r.Note == "syncs queued for later" && r.N > 0 {
					t.Logf("worker %d: at the drain, %d consent syncs were due later than now: the queue grace of an Update killed mid-way, or a retry's backoff; the drain syncs them as if that time had passed", in.slot, r.N)
				}
			}
			if !began.IsZero() && !drainedAt.IsZero() {
				t.Logf("worker %d: drain began at %s and ended at %s", in.slot, at(began), at(drainedAt))
			}
			state, err := in.proc.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			drained := slices.ContainsFunc(byInc[[2]int{in.slot, in.inc}], func(r record) bool { return r.Kind == recDrained })
			if state.ExitCode() != 0 || !drained {
				var notes []string
				for _, r := range byInc[[2]int{in.slot, in.inc}] {
					if r.Kind == recNote {
						notes = append(notes, r.Note)
					}
				}
				t.Errorf("worker %d incarnation %d (pid %d) ended by itself: %v, drained %v; notes %q; output:\n%s",
					in.slot, in.inc, in.proc.Pid(), state, drained, notes, tail(string(out), 4000))
			}
		}
	})

	t.Run("no operation failed unexpectedly and no error named a user", func(t *testing.T) {
		type tally struct{ attempted, ok, expected, failed, cut int }
		tallies := map[string]*tally{}
		kinds := map[string]int{}
		var failed []string
		for _, o := range ops {
			tl := tallies[o.Type]
			if tl == nil {
				tl = &tally{}
				tallies[o.Type] = tl
			}
			tl.attempted++
			switch {
			case !o.Ended:
				tl.cut++
			case o.OK:
				tl.ok++
			case o.Expected:
				tl.expected++
				kinds[o.Type+": "+errKind(o.Err)]++
			default:
				tl.failed++
				failed = append(failed, fmt.Sprintf("%s %s (user %d) at %s: %s", o.Op, o.Type, o.User, at(o.EndsAt), o.Err))
			}
			if o.Leak {
				t.Errorf("%s %s: the error names a user ID: %s", o.Op, o.Type, o.Err)
			}
		}
		var lines []string
		for _, typ := range []string{opExport, opConsent, opRole, opBan, opLog, opErase, opResume, opSync} {
			if tl := tallies[typ]; tl != nil {
				lines = append(lines, fmt.Sprintf("%s %d (ok %d, expected errors %d, failed %d, killed %d)", typ, tl.attempted, tl.ok, tl.expected, tl.failed, tl.cut))
			}
		}
		t.Logf("operations: %s", strings.Join(lines, "; "))
		var expected []string
		for k, n := range kinds {
			expected = append(expected, fmt.Sprintf("%d× %s", n, k))
		}
		sort.Strings(expected)
		t.Logf("expected errors: %s", strings.Join(expected, "; "))
		sort.Strings(failed)
		if len(failed) > 0 {
			t.Errorf("%d operations failed with an error a fleet should not cause:\n%s", len(failed), strings.Join(first(failed, 20), "\n"))
		}
	})

	var events []audit.Event
	t.Run("the audit chain verifies over the whole table", func(t *testing.T) {
		sink := w.store.AuditSink()
		if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
			t.Errorf("Verify: %v", err)
		}
		for e, err := range sink.Events(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
		for i, e := range events {
			if e.Sequence != uint64(i+1) {
				t.Fatalf("event %d has sequence %d: the chain has a gap", i+1, e.Sequence)
			}
		}
	})

	// deletions: the statuses of the data_deletion events per request.
	deletions := map[string][]string{}
	t.Run("each acknowledged operation's event is stored once, and every event comes from an attempted operation", func(t *testing.T) {
		byActor := map[string]*opState{}
		for _, o := range ops {
			if _, ok := eventTypes[o.Type]; ok {
				byActor[w.pseudo.Pseudonym(actorID(o.Op))] = o
			}
		}
		count := map[string]int{}
		access := map[string]int{} // data_access events of export operations
		var strays []string
		for _, e := range events {
			if e.Type == audit.DataDeletion {
				rid, _ := e.Details["requestId"].(string)
				st, _ := e.Details["status"].(string)
				deletions[rid] = append(deletions[rid], st)
				continue
			}
			o := byActor[e.Actor]
			if e.Type == audit.DataAccess && o != nil && o.Type == opExport && e.Subject == w.pseudo.Pseudonym(w.cfg.Users[o.User]) {
				access[o.Op]++ // an administrator reading another user's data
				continue
			}
			if e.Details["status"] == "failed" && o != nil && e.Subject == w.pseudo.Pseudonym(w.cfg.Users[o.User]) {
				// A change audited before it was made, then refused by the
				// provider: the trail says it failed.
				if o.OK {
					strays = append(strays, fmt.Sprintf("event %d says %s failed, but it succeeded", e.Sequence, o.Op))
				}
				continue
			}
			switch {
			case o == nil:
				strays = append(strays, fmt.Sprintf("event %d (%s) has an actor no operation acted as", e.Sequence, e.Type))
				continue
			case e.Type != eventTypes[o.Type]:
				strays = append(strays, fmt.Sprintf("event %d is %s, but %s is a %s operation", e.Sequence, e.Type, o.Op, o.Type))
			case e.Subject != w.pseudo.Pseudonym(w.cfg.Users[o.User]):
				strays = append(strays, fmt.Sprintf("event %d of %s is about another user than %d", e.Sequence, o.Op, o.User))
			case o.Type == opLog && e.ID != rawEventID(o.Op):
				strays = append(strays, fmt.Sprintf("event %d of %s has ID %s, not the one it was logged with", e.Sequence, o.Op, e.ID))
			}
			count[o.Op]++
		}
		acked, attempted, stored := 0, 0, 0
		var wrong []string
		for _, o := range ops {
			if _, ok := eventTypes[o.Type]; !ok {
				continue
			}
			attempted++
			n := count[o.Op]
			stored += n
			switch {
			case o.OK && o.Event:
				acked++
				if n != 1 {
					wrong = append(wrong, fmt.Sprintf("%s %s (user %d) succeeded and its event is stored %d times, want once", o.Op, o.Type, o.User, n))
				}
				if o.Type == opExport && access[o.Op] != 1 {
					wrong = append(wrong, fmt.Sprintf("%s export (user %d) by an administrator succeeded with %d data_access events, want one", o.Op, o.User, access[o.Op]))
				}
			case o.OK && n != 0:
				wrong = append(wrong, fmt.Sprintf("%s %s (user %d) changed nothing but %d events are stored for it", o.Op, o.Type, o.User, n))
			case n > 1:
				wrong = append(wrong, fmt.Sprintf("%s %s (user %d) did not succeed and %d events are stored for it, want at most one", o.Op, o.Type, o.User, n))
			}
		}
		sort.Strings(wrong)
		t.Logf("audit: %d events; %d from operations (acknowledged %d <= stored <= attempted %d); %d data_deletion events for %d requests",
			len(events), stored, acked, attempted, len(events)-stored, len(deletions))
		if stored < acked || stored > attempted {
			t.Errorf("stored operation events %d, want between the acknowledged %d and the attempted %d", stored, acked, attempted)
		}
		if len(strays) > 0 {
			t.Errorf("%d events match no operation:\n%s", len(strays), strings.Join(first(strays, 20), "\n"))
		}
		if len(wrong) > 0 {
			t.Errorf("%d operations have the wrong number of events:\n%s", len(wrong), strings.Join(first(wrong, 20), "\n"))
		}
	})

	// userOf is the index of a request's user: finished requests name
	// their user by the audit key's pseudonym, open ones by ID.
	userOf := func(r privacy.Request) int {
		if r.Pseudonymous() {
			return bySubject[r.UserID]
		}
		return userIndex[r.UserID]
	}
	var requests []privacy.Request
	for r, err := range w.store.Requests().List(ctx, privacy.RequestFilter{Kind: privacy.KindErasure}) {
		if err != nil {
			t.Fatal(err)
		}
		requests = append(requests, r)
	}
	calls := w.rec.snapshot()
	done := map[string]map[string]int{externalName: {}, "clerk": {}} // service → request → calls done
	for _, c := range calls {
		if c.done() {
			done[c.Service][c.Request]++
		}
	}

	t.Run("every erasure completed: the user is gone from Clerk, the tables and the external service, with a completion event", func(t *testing.T) {
		completed := map[int]bool{}
		known := map[string]bool{}
		for _, r := range requests {
			u := userOf(r)
			known[r.ID] = true
			if r.Status != privacy.StatusCompleted {
				t.Errorf("request %s (user %d) is %s after the drain; steps %s", r.ID, u, r.Status, steps(r))
				continue
			}
			completed[u] = true
			id := w.cfg.Users[u]
			if _, ok := w.clerk.User(id); ok {
				t.Errorf("request %s completed, but user %d is still in Clerk", r.ID, u)
			}
			if n := w.rows(t, id); n != 0 {
				t.Errorf("request %s completed, but user %d still owns %d rows in the application's tables", r.ID, u, n)
			}
			if done[externalName][r.ID] == 0 {
				t.Errorf("request %s (user %d) completed, but the external service has no erase call for it", r.ID, u)
			}
			// A request opened after another erased the user finds no
			// account: its identity step is recorded as not found.
			if done["clerk"][r.ID] == 0 && !identityNotFound(r) {
				t.Errorf("request %s (user %d) completed, but Clerk has no user deletion for it", r.ID, u)
			}
			if !slices.Contains(deletions[r.ID], "completed") {
				t.Errorf("request %s (user %d) completed without a completed data_deletion event (events: %q)", r.ID, u, deletions[r.ID])
			}
		}
		for _, v := range w.cfg.Victims {
			if !completed[v.User] {
				t.Errorf("victim %d (due at +%v, slots %v) has no completed erasure request", v.User, v.At, v.Slots)
			}
		}
		for _, o := range ops {
			if o.Type == opErase && o.OK && !known[o.Request] {
				t.Errorf("%s acknowledged erasure request %q of user %d, which the store does not hold", o.Op, o.Request, o.User)
			}
		}
		for rid := range deletions {
			if !known[rid] {
				t.Errorf("a data_deletion event names request %q, which the store does not hold", rid)
			}
		}
		for _, i := range w.cfg.Regular {
			id := w.cfg.Users[i]
			if _, ok := w.clerk.User(id); !ok {
				t.Errorf("user %d, never erased, is gone from Clerk", i)
			}
			if n := w.rows(t, id); n == 0 {
				t.Errorf("user %d, never erased, has lost their rows", i)
			}
		}
		// The proxy saw every deletion clerktest saw: those it had an
		// answer to, and at most those whose caller was killed first.
		answered, proxied := map[int]int{}, map[int]int{}
		for _, c := range calls {
			if c.Service == "clerk" {
				proxied[bySubject[c.Subject]]++
				if c.Status != http.StatusBadGateway {
					answered[bySubject[c.Subject]]++
				}
			}
		}
		for i, id := range w.cfg.Users {
			if served := w.clerk.CountRequests(http.MethodDelete, "/v1/users/"+id); served < answered[i] || served > proxied[i] {
				t.Errorf("user %d: clerktest served %d deletions, the proxy recorded %d (%d answered)", i, served, proxied[i], answered[i])
			}
		}
		t.Logf("erasure: %d requests for %d victims; %d external calls (%d done), %d Clerk deletions (%d done)",
			len(requests), len(w.cfg.Victims), count(calls, externalName, false), count(calls, externalName, true),
			count(calls, "clerk", false), count(calls, "clerk", true))
	})

	t.Run("every erasure step was done once and the completion event written once", func(t *testing.T) {
		var findings []string
		var renewals []record // failed claim renewals
		for _, recs := range byInc {
			for _, r := range recs {
				if r.Kind == recClaim {
					renewals = append(renewals, r)
					if r.Leak {
						findings = append(findings, fmt.Sprintf("a failed claim renewal's error named a user: %s", r.Err))
					}
				}
			}
		}
		t.Logf("%d failed claim renewals", len(renewals))
		findings = append(findings, repeats(calls, w.h.kills, renewals, bySubject, at)...)
		findings = append(findings, overlaps(calls, bySubject, at)...)
		for _, r := range requests {
			if n := countOf(deletions[r.ID], "completed"); r.Status == privacy.StatusCompleted && n != 1 {
				findings = append(findings, fmt.Sprintf("request %s (user %d) has %d completed data_deletion events, want one", r.ID, userOf(r), n))
			}
		}
		if len(findings) > 0 {
			t.Errorf("%d erasure steps or completion events were repeated:\n%s", len(findings), strings.Join(first(findings, 20), "\n"))
		}
	})

	t.Run("every consent mirror in Clerk equals the store's latest state, and no sync is left queued", func(t *testing.T) {
		mirror, err := consent.NewManager(w.store.Consent(), steward.NewMemoryIdentity())
		if err != nil {
			t.Fatal(err)
		}
		users := w.clerk.Users()
		for _, u := range users {
			st, err := w.store.Consent().Current(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if len(st) > 0 {
				want = mirror.Mirror(st)
			}
			if diff := cmp.Diff(want, u.PublicMetadata[consent.MetadataKey]); diff != "" {
				t.Errorf("user %d: Clerk's consent mirror differs from the store (-store +Clerk):\n%s", userIndex[u.ID], diff)
			}
		}
		queued, err := w.store.Consent().Queued(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queued {
			t.Errorf("user %d's sync is still queued after the drain (attempts %d, last error %q, held by %q)", userIndex[q.UserID], q.Attempts, q.LastErr, q.Owner)
		}
		// The fence refuses an erased user's consent changes, and removes
		// one that raced the erasure: nothing is left of a victim.
		for _, v := range w.cfg.Victims {
			st, err := w.store.Consent().Current(ctx, w.cfg.Users[v.User])
			if err != nil {
				t.Fatal(err)
			}
			if len(st) > 0 {
				t.Errorf("erased user %d has consent records: %v", v.User, st)
			}
		}
		t.Logf("consent: %d users in Clerk checked; %d erased users have no consent records", len(users), len(w.cfg.Victims))
	})

	t.Run("at least one active admin remains", func(t *testing.T) {
		var active, admins []int
		for _, u := range w.clerk.Users() {
			if u.PublicMetadata["role"] != "admin" {
				continue
			}
			admins = append(admins, userIndex[u.ID])
			if u.EmailVerified() && !u.Banned && !u.Locked {
				active = append(active, userIndex[u.ID])
			}
		}
		sort.Ints(active)
		sort.Ints(admins)
		t.Logf("admins %v, of whom active %v", admins, active)
		if len(active) == 0 {
			t.Errorf("no active admin is left (admins: %v, all banned or locked)", admins)
		}
	})
}

// rows counts the rows userID owns in the application's tables.
func (w *world) rows(t *testing.T, userID string) int {
	t.Helper()
	var n int
	q := w.store.Dialect().Rebind(`SELECT
		(SELECT COUNT(*) FROM user_profiles WHERE clerk_id = ?) +
		(SELECT COUNT(*) FROM orders WHERE user_id = ?) +
		(SELECT COUNT(*) FROM user_preferences WHERE user_id = ?) +
		(SELECT COUNT(*) FROM activity_log WHERE user_id = ?)`)
	if err := w.db.QueryRowContext(context.Background(), q, userID, userID, userID, userID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// repeats finds calls done again for one request without a kill of the
// process that made an earlier one in between (a process killed after
// its call and before its checkpoint makes a resume repeat the call,
// which is allowed), and calls made with no open request to name.
func repeats(calls []call, kills []kill, renewals []record, bySubject map[string]int, at func(time.Time) string) []string {
	// A step is done again only after its earlier caller was killed, or
	// failed to renew its claim on the request (it may then have lost it
	// while it lived), between the two calls.
	killed := func(pid int, from, to time.Time) bool {
		return slices.ContainsFunc(kills, func(k kill) bool { return k.Pid == pid && !k.At.Before(from) && !k.At.After(to) })
	}
	lostClaim := func(pid int, request string, from, to time.Time) bool {
		return slices.ContainsFunc(renewals, func(r record) bool {
			return r.Pid == pid && r.Request == request && !r.At.Before(from) && !r.At.After(to)
		})
	}
	groups := map[[2]string][]call{}
	var out []string
	for _, c := range calls {
		if !c.done() {
			continue
		}
		if c.Request == "" {
			out = append(out, fmt.Sprintf("%s: pid %d erased user %d at %s while the user had no open request (a run that went on after its request completed)",
				c.Service, c.Pid, bySubject[c.Subject], at(c.Start)))
			continue
		}
		k := [2]string{c.Service, c.Request}
		groups[k] = append(groups[k], c)
	}
	for k, cs := range groups {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		for i := 1; i < len(cs); i++ {
			explained := false
			for j := range i {
				explained = explained || killed(cs[j].Pid, cs[j].Start, cs[i].Start) || lostClaim(cs[j].Pid, k[1], cs[j].Start, cs[i].Start)
			}
			if !explained {
				out = append(out, fmt.Sprintf("%s: request %s (user %d) done again by pid %d at %s after pid %d at %s, with no kill of the earlier caller, nor a failed renewal of its claim, in between",
					k[0], k[1], bySubject[cs[i].Subject], cs[i].Pid, at(cs[i].Start), cs[i-1].Pid, at(cs[i-1].Start)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// overlaps finds two calls for one subject at one service in flight at
// the same time.
func overlaps(calls []call, bySubject map[string]int, at func(time.Time) string) []string {
	groups := map[[2]string][]call{}
	for _, c := range calls {
		if c.done() {
			k := [2]string{c.Service, c.Subject}
			groups[k] = append(groups[k], c)
		}
	}
	var out []string
	for k, cs := range groups {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
		for i := range cs {
			for j := i + 1; j < len(cs) && cs[j].Start.Before(cs[i].End); j++ {
				out = append(out, fmt.Sprintf("%s: two calls for user %d overlap: pid %d %s–%s and pid %d from %s",
					k[0], bySubject[k[1]], cs[i].Pid, at(cs[i].Start), at(cs[i].End), cs[j].Pid, at(cs[j].Start)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// errKind names an expected error by the sentinel its message holds.
func errKind(msg string) string {
	for _, k := range []string{"would remove the last active admin", "another administrator change holds the lock", "user not found", "partial deletion", "lease lost", "the user is being erased", "the user was erased"} {
		if strings.Contains(msg, k) {
			return k
		}
	}
	return tail(msg, 80)
}

func steps(r privacy.Request) string {
	var parts []string
	for _, s := range r.Steps {
		parts = append(parts, fmt.Sprintf("%s=%s(%d)", s.Name, s.Status, s.Attempts))
	}
	return strings.Join(parts, " ")
}

func count(calls []call, service string, onlyDone bool) int {
	n := 0
	for _, c := range calls {
		if c.Service == service && (!onlyDone || c.done()) {
			n++
		}
	}
	return n
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

func first(ss []string, n int) []string {
	if len(ss) > n {
		return append(ss[:n:n], fmt.Sprintf("... and %d more", len(ss)-n))
	}
	return ss
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// identityNotFound reports a request whose identity step found no account.
func identityNotFound(r privacy.Request) bool {
	for _, st := range r.Steps {
		if st.Kind == privacy.StepIdentity && st.Outcome == privacy.StepOutcomeNotFound {
			return true
		}
	}
	return false
}
