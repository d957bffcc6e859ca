package privacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

// ignoreErr compares StepErrors without their underlying error.
var ignoreErr = cmpopts.IgnoreFields(privacy.StepError{}, "Err")

func requests(t *testing.T, rs privacy.RequestStore, f privacy.RequestFilter) []privacy.Request {
	t.Helper()
	var out []privacy.Request
	for r, err := range rs.List(context.Background(), f) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestEraseCompletes(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	res, err := svc.Erase(context.Background(), testUser)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	want := privacy.DeletionResult{
		Success:     true,
		DeletedFrom: []string{"orders", "preferences", "identity", "email"},
		Errors:      []privacy.StepError{},
		RequestID:   res.RequestID,
		Erased:      map[string]int{"orders": 3, "preferences": 1, "identity": 1, "email": 0},
	}
	if diff := cmp.Diff(want, res, ignoreErr); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if w.orders.Len(testUser) != 0 || w.prefs.Len(testUser) != 0 {
		t.Errorf("stores still hold data")
	}
	if w.orders.Len("user_other") != 1 {
		t.Errorf("another user's data was erased")
	}
	if _, err := w.idp.GetUser(context.Background(), testUser); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("identity still exists: %v", err)
	}
	if w.email.erased[testUser] != 1 {
		t.Errorf("external service erased %d times", w.email.erased[testUser])
	}

	req, err := svc.Request(context.Background(), res.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := privacy.Request{
		// A completed request names the user by pseudonym only.
		ID: res.RequestID, Kind: privacy.KindErasure, UserID: w.log.Pseudonymizer().Pseudonym(testUser), Actor: privacy.SystemActor,
		Regime: privacy.GDPR, Status: privacy.StatusCompleted,
		ReceivedAt: t0, DueAt: time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC), // 31 Jan + one month
		UpdatedAt: t0, CompletedAt: t0,
		Steps: []privacy.Step{
			// The memory identity is a steward.Moderator: locked (1).
			{Name: "fence", Kind: privacy.StepFence, Status: privacy.StepDone, Attempts: 1, Erased: 1, UpdatedAt: t0},
			{Name: "orders", Kind: privacy.StepStore, Status: privacy.StepDone, Attempts: 1, Erased: 3, UpdatedAt: t0},
			{Name: "preferences", Kind: privacy.StepStore, Status: privacy.StepDone, Attempts: 1, Erased: 1, UpdatedAt: t0},
			{Name: "identity", Kind: privacy.StepIdentity, Status: privacy.StepDone, Attempts: 1, Erased: 1, UpdatedAt: t0},
			{Name: "email", Kind: privacy.StepExternal, Status: privacy.StepDone, Attempts: 1, UpdatedAt: t0},
			{Name: "final_pass", Kind: privacy.StepFinal, Status: privacy.StepDone, Attempts: 1, UpdatedAt: t0},
			{Name: "ledger", Kind: privacy.StepLedger, Status: privacy.StepDone, Attempts: 1, UpdatedAt: t0},
			{Name: "audit", Kind: privacy.StepAudit, Status: privacy.StepDone, Attempts: 1, UpdatedAt: t0},
		},
	}
	if diff := cmp.Diff(wantReq, req, cmpopts.IgnoreFields(privacy.Request{}, "Version")); diff != "" {
		t.Errorf("stored request (-want +got):\n%s", diff)
	}

	evs := w.events()
	if diff := cmp.Diff([]string{"started", "completed"}, statuses(evs)); diff != "" {
		t.Fatalf("data_deletion statuses (-want +got):\n%s", diff)
	}
	wantDetails := map[string]any{
		"requestId": res.RequestID, "status": "completed", "regime": "gdpr",
		"receivedAt": "2025-01-31T10:00:00Z", "dueAt": "2025-02-28T10:00:00Z",
		"deletedFrom": []any{"orders", "preferences", "identity", "email"},
		"erased":      map[string]any{"orders": json.Number("3"), "preferences": json.Number("1"), "identity": json.Number("1"), "email": json.Number("0")},
		"finalPass":   json.Number("0"),
	}
	// Read the details back as a sink that stores JSON would return them.
	var back audit.Event
	b, _ := json.Marshal(evs[len(evs)-1])
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Type != audit.DataDeletion || back.Actor != privacy.SystemActor {
		t.Errorf("event type %q actor %q; want data_deletion by %q", back.Type, back.Actor, privacy.SystemActor)
	}
	if diff := cmp.Diff(wantDetails, back.Details); diff != "" {
		t.Errorf("event details (-want +got):\n%s", diff)
	}
	if want := w.log.Pseudonymizer().Pseudonym(testUser); back.Subject != want {
		t.Errorf("event subject %q; want the pseudonym %q", back.Subject, want)
	}
}

func TestEraseResultJSON(t *testing.T) {
	res := privacy.DeletionResult{
		DeletedFrom: []string{"orders"},
		Errors:      []privacy.StepError{{Step: "identity", Code: privacy.CodeIdentityFailed, Message: "503 for ada@example.com", Attempts: 3, Err: errors.New("x")}},
		RequestID:   "req_1",
		Erased:      map[string]int{"orders": 2},
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	// The body carries the stable code and its sentence, never Message.
	want := `{"success":false,"deletedFrom":["orders"],"errors":[{"step":"identity","code":"identity_failed",` +
		`"error":"deleting the account at the identity provider failed; the request is kept for a retry","attempts":3}],` +
		`"requestId":"req_1","erased":{"orders":2}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestEraseRetriesWithBackoff(t *testing.T) {
	w := newWorld(t)
	w.orders.faults.FailNextErase(2, errors.New("deadlock detected"))
	w.idp.failN, w.idp.err = 1, errors.New("clerk: 503")
	res, err := w.service().Erase(context.Background(), testUser)
	if err != nil || !res.Success {
		t.Fatalf("Erase = %+v, %v; want success after retries", res, err)
	}
	req, _ := w.reqs.Get(context.Background(), res.RequestID)
	got := map[string]int{}
	for _, st := range req.Steps {
		got[st.Name] = st.Attempts
	}
	want := map[string]int{"fence": 1, "orders": 3, "preferences": 1, "identity": 2, "email": 1, "final_pass": 1, "ledger": 1, "audit": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempts per step (-want +got):\n%s", diff)
	}
}

func TestErasePartialThenResume(t *testing.T) {
	w := newWorld(t)
	w.prefs.faults.FailNextErase(-1, fmt.Errorf("preferences db: no route to host for %s", testUser))
	svc := w.service()
	ctx := context.Background()

	res, err := svc.Erase(ctx, testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase error = %v; want ErrPartialDeletion", err)
	}
	noUserID(t, "error", err.Error())
	want := privacy.DeletionResult{
		Success:     false,
		DeletedFrom: []string{"orders"},
		Errors: []privacy.StepError{
			{Step: "preferences", Code: privacy.CodeStoreFailed, Message: "preferences db: no route to host for [user]", Attempts: 3},
			{Step: "identity", Code: privacy.CodeNotAttempted, Message: "not attempted: an earlier step failed"},
			{Step: "email", Code: privacy.CodeNotAttempted, Message: "not attempted: an earlier step failed"},
			{Step: "final_pass", Code: privacy.CodeNotAttempted, Message: "not attempted: an earlier step failed"},
			{Step: "ledger", Code: privacy.CodeNotAttempted, Message: "not attempted: an earlier step failed"},
		},
		RequestID: res.RequestID,
		Erased:    map[string]int{"orders": 3},
	}
	if diff := cmp.Diff(want, res, ignoreErr); diff != "" {
		t.Errorf("partial result (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(res)
	noUserID(t, "result JSON", string(b))
	if w.idp.calls != 0 || w.email.calls != 0 {
		t.Errorf("identity (%d calls) or external (%d calls) erased before every store", w.idp.calls, w.email.calls)
	}

	attention := requests(t, w.reqs, privacy.RequestFilter{Statuses: []privacy.Status{privacy.StatusPartial}})
	var listed []string
	for r, err := range svc.NeedsAttention(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, r.ID)
		noUserID(t, "stored step error", r.Step("preferences").Error)
	}
	if diff := cmp.Diff([]string{res.RequestID}, listed); diff != "" || len(attention) != 1 {
		t.Errorf("NeedsAttention (-want +got):\n%s", diff)
	}

	// A second Erase resumes the same request rather than starting another.
	res2, err := svc.Erase(ctx, testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) || res2.RequestID != res.RequestID {
		t.Errorf("second Erase = %q, %v; want the same request, still partial", res2.RequestID, err)
	}

	w.prefs.faults.FailNextErase(0, nil)
	res3, err := svc.Resume(ctx, res.RequestID)
	if err != nil || !res3.Success {
		t.Fatalf("Resume = %+v, %v; want success", res3, err)
	}
	if diff := cmp.Diff([]string{"orders", "preferences", "identity", "email"}, res3.DeletedFrom); diff != "" {
		t.Errorf("DeletedFrom after Resume (-want +got):\n%s", diff)
	}
	if n := len(requests(t, w.reqs, privacy.RequestFilter{})); n != 1 {
		t.Errorf("%d requests stored; want 1", n)
	}
	if diff := cmp.Diff([]string{"started", "partial", "partial", "completed"}, statuses(w.events())); diff != "" {
		t.Errorf("data_deletion statuses (-want +got):\n%s", diff)
	}
	if w.orders.erasing != 1 || w.idp.deleted != 1 {
		t.Errorf("orders erased %d times, identity deleted %d times; want 1 each", w.orders.erasing, w.idp.deleted)
	}
	// Resume of a completed request answers at once.
	if res4, err := svc.Resume(ctx, res.RequestID); err != nil || !res4.Success {
		t.Errorf("Resume of a completed request = %+v, %v", res4, err)
	}
}

func TestExternalFailureAfterIdentity(t *testing.T) {
	w := newWorld(t)
	w.email.failN, w.email.err = -1, errors.New("mailer: 500")
	svc := w.service()
	res, err := svc.Erase(context.Background(), testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase error = %v; want ErrPartialDeletion", err)
	}
	if diff := cmp.Diff([]string{"orders", "preferences", "identity"}, res.DeletedFrom); diff != "" {
		t.Errorf("DeletedFrom (-want +got):\n%s", diff)
	}
	w.email.mu.Lock()
	w.email.failN = 0
	w.email.mu.Unlock()
	n, err := svc.ResumePending(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ResumePending = %d, %v; want 1 completed", n, err)
	}
	if w.idp.calls != 1 {
		t.Errorf("identity DeleteUser called %d times; want once (done steps are not redone)", w.idp.calls)
	}
}

func TestEraseLegalHold(t *testing.T) {
	w := newWorld(t)
	h := &holds{held: map[string]string{testUser: "litigation L-17"}}
	svc := w.service(privacy.WithHoldChecker(h))
	ctx := context.Background()
	res, err := svc.Erase(ctx, testUser)
	if !errors.Is(err, privacy.ErrLegalHold) {
		t.Fatalf("Erase error = %v; want ErrLegalHold", err)
	}
	want := privacy.DeletionResult{
		DeletedFrom: []string{},
		Errors:      []privacy.StepError{{Step: "legal_hold", Code: privacy.CodeLegalHold, Message: "legal hold: litigation L-17"}},
		RequestID:   res.RequestID,
		Erased:      map[string]int{},
	}
	if diff := cmp.Diff(want, res, ignoreErr); diff != "" {
		t.Errorf("held result (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Errors[0], privacy.ErrLegalHold) {
		t.Errorf("the hold StepError does not match ErrLegalHold")
	}
	if w.orders.calls()+w.prefs.calls()+w.idp.calls+w.email.calls != 0 {
		t.Errorf("a held user was touched")
	}
	req, _ := svc.Request(ctx, res.RequestID)
	if req.Status != privacy.StatusHeld || req.Reason != "litigation L-17" {
		t.Errorf("request status %q reason %q; want held with the reason", req.Status, req.Reason)
	}
	// Held requests are answered: not overdue, not needing attention.
	w.clock.Advance(90 * 24 * time.Hour)
	for r := range svc.Overdue(ctx) {
		t.Errorf("held request %s listed as overdue", r.ID)
	}

	h.set(testUser, "")
	res2, err := svc.Erase(ctx, testUser)
	if err != nil || !res2.Success || res2.RequestID != res.RequestID {
		t.Errorf("Erase after the hold was lifted = %+v, %v; want the held request completed", res2, err)
	}
	if diff := cmp.Diff([]string{"held", "started", "completed"}, statuses(w.events())); diff != "" {
		t.Errorf("data_deletion statuses (-want +got):\n%s", diff)
	}
}

func TestEraseConcurrentCallsMakeOneRequest(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := svc.Erase(context.Background(), testUser)
			if err != nil {
				t.Errorf("Erase %d: %v", i, err)
			}
			ids[i] = res.RequestID
		}()
	}
	wg.Wait()
	all := requests(t, w.reqs, privacy.RequestFilter{})
	// Calls that started after the first completed make new (empty) requests;
	// calls that overlapped share one. No two requests are open at once,
	// and the data is erased once.
	for _, r := range all {
		if r.Status != privacy.StatusCompleted {
			t.Errorf("request %s is %s", r.ID, r.Status)
		}
	}
	if w.orders.erasing != 1 || w.idp.deleted != 1 || w.email.erased[testUser] < 1 {
		t.Errorf("orders erased %d times, identity deleted %d times; want 1 each", w.orders.erasing, w.idp.deleted)
	}
}

func TestDeadlines(t *testing.T) {
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name          string
		regime        privacy.Regime
		received      time.Time
		due, extended time.Time
	}{
		{"GDPR mid-month", privacy.GDPR, at(2025, 3, 15), at(2025, 4, 15), at(2025, 6, 15)},
		{"GDPR 31 January ends on the last day of February", privacy.GDPR, at(2025, 1, 31), at(2025, 2, 28), at(2025, 4, 28)},
		{"GDPR leap year", privacy.GDPR, at(2024, 1, 30), at(2024, 2, 29), at(2024, 4, 29)},
		{"GDPR across the year", privacy.GDPR, at(2025, 12, 31), at(2026, 1, 31), at(2026, 3, 31)},
		{"CCPA 45 days, plus 45", privacy.CCPA, at(2025, 1, 1), at(2025, 2, 15), at(2025, 4, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due := tt.regime.Deadline(tt.received)
			if !due.Equal(tt.due) {
				t.Errorf("Deadline = %v; want %v", due, tt.due)
			}
			if ext := tt.regime.Extend(due); !ext.Equal(tt.extended) {
				t.Errorf("Extend = %v; want %v", ext, tt.extended)
			}
		})
	}
}

func TestOverdueAndExtend(t *testing.T) {
	w := newWorld(t)
	w.idp.failN, w.idp.err = -1, errors.New("clerk: 503")
	svc := w.service()
	ctx := context.Background()
	res, _ := svc.Erase(ctx, testUser, privacy.ForRegime(privacy.CCPA), privacy.ReceivedAt(t0.AddDate(0, 0, -40)), privacy.RequestedBy("user_admin1"))
	overdue := func() []string {
		var out []string
		for r, err := range svc.Overdue(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r.ID)
		}
		return out
	}
	if got := overdue(); len(got) != 0 {
		t.Errorf("overdue after 40 days of 45: %v", got)
	}
	w.clock.Advance(6 * 24 * time.Hour)
	if diff := cmp.Diff([]string{res.RequestID}, overdue()); diff != "" {
		t.Errorf("overdue after 46 days (-want +got):\n%s", diff)
	}
	if _, err := svc.Extend(ctx, res.RequestID, ""); !errors.Is(err, privacy.ErrInvalidRequest) {
		t.Errorf("Extend without a reason: %v; want ErrInvalidRequest", err)
	}
	req, err := svc.Extend(ctx, res.RequestID, "identity provider outage")
	if err != nil {
		t.Fatal(err)
	}
	wantDue := t0.AddDate(0, 0, -40+90)
	if !req.DueAt.Equal(wantDue) || !req.ExtendedAt.Equal(w.clock.Now()) || req.ExtensionReason != "identity provider outage" {
		t.Errorf("extended request due %v at %v for %q; want due %v", req.DueAt, req.ExtendedAt, req.ExtensionReason, wantDue)
	}
	if req.Actor != "user_admin1" || req.Regime != privacy.CCPA {
		t.Errorf("actor %q regime %q; want user_admin1, ccpa", req.Actor, req.Regime)
	}
	if got := overdue(); len(got) != 0 {
		t.Errorf("overdue after extension: %v", got)
	}
	if _, err := svc.Extend(ctx, res.RequestID, "again"); !errors.Is(err, privacy.ErrAlreadyExtended) {
		t.Errorf("second Extend: %v; want ErrAlreadyExtended", err)
	}
	var extended []string
	for _, e := range w.events() {
		if e.Details["status"] == "extended" && e.Details["requestId"] == res.RequestID {
			extended = append(extended, fmt.Sprint(e.Details["dueAt"]))
		}
	}
	if diff := cmp.Diff([]string{wantDue.Format(time.RFC3339)}, extended); diff != "" {
		t.Errorf("extension audit events, by new due date (-want +got):\n%s", diff)
	}
}

func TestExtendIsAuditedBeforeEffect(t *testing.T) {
	w := newWorld(t)
	w.idp.failN, w.idp.err = -1, errors.New("clerk: 503")
	ctx := context.Background()
	res, _ := w.service().Erase(ctx, testUser)
	down := w.service(privacy.WithAudit(failingAudit{}))
	if _, err := down.Extend(ctx, res.RequestID, "complex request"); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("Extend with the audit sink down = %v, want ErrNotRecorded", err)
	}
	if req, _ := down.Request(ctx, res.RequestID); !req.ExtendedAt.IsZero() {
		t.Errorf("an extension the audit trail cannot show was made: %+v", req)
	}
}

func TestEraseRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty user ID", func() error { _, err := svc.Erase(ctx, ""); return err }, steward.ErrInvalidUserID},
		{"user ID with a slash", func() error { _, err := svc.Erase(ctx, "user/../x"); return err }, steward.ErrInvalidUserID},
		{"unknown regime", func() error { _, err := svc.Erase(ctx, testUser, privacy.ForRegime("lgpd")); return err }, privacy.ErrInvalidRequest},
		{"Resume of an unknown request", func() error { _, err := svc.Resume(ctx, "req_nope"); return err }, privacy.ErrRequestNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v; want %v", err, tt.want)
			}
		})
	}
	if n := len(requests(t, w.reqs, privacy.RequestFilter{})); n != 0 {
		t.Errorf("%d requests stored after bad input; want 0", n)
	}
}

func TestResumePendingTakesOverStaleRequests(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithResumeAfter(time.Minute))
	ctx := context.Background()
	// A request left pending by a process that died before any step.
	req := privacy.Request{
		ID: "req_orphan", Kind: privacy.KindErasure, UserID: testUser, Regime: privacy.GDPR,
		Status: privacy.StatusPending, ReceivedAt: t0, DueAt: privacy.GDPR.Deadline(t0), UpdatedAt: t0,
	}
	if err := w.reqs.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.ResumePending(ctx); n != 0 || err != nil {
		t.Errorf("ResumePending of a fresh pending request = %d, %v; want it left to its owner", n, err)
	}
	w.clock.Advance(2 * time.Minute)
	if n, err := svc.ResumePending(ctx); n != 1 || err != nil {
		t.Fatalf("ResumePending of a stale request = %d, %v; want 1", n, err)
	}
	got, _ := svc.Request(ctx, "req_orphan")
	// fence, orders, preferences, identity, email, final_pass, ledger, audit
	if got.Status != privacy.StatusCompleted || len(got.Steps) != 8 {
		t.Errorf("orphan is %s with %d steps; want completed with the 8 planned steps", got.Status, len(got.Steps))
	}
}

func TestAuditSinkDownRefusesTheErasure(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithAudit(failingAudit{}))
	res, err := svc.Erase(context.Background(), testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase error = %v; want ErrPartialDeletion", err)
	}
	// Audit before effect: the record that the erasure starts could not
	// be written, so nothing was erased.
	if len(res.DeletedFrom) != 0 || len(res.Errors) == 0 || res.Errors[0].Step != "fence" || res.Errors[0].Code != privacy.CodeAuditFailed {
		t.Errorf("result %+v; want nothing deleted and the fence step failed with %s", res, privacy.CodeAuditFailed)
	}
	if w.orders.calls()+w.prefs.calls()+w.idp.calls+w.email.calls != 0 || w.orders.Len(testUser) == 0 {
		t.Errorf("stores or identity were touched although the audit record was not written")
	}
	req, _ := svc.Request(context.Background(), res.RequestID)
	if req.Status != privacy.StatusPartial {
		t.Errorf("request is %s; want partial, for a retry once the sink is back", req.Status)
	}
}

func TestAuditFailureAtCompletionLeavesRequestPartial(t *testing.T) {
	w := newWorld(t)
	fa := &flakyAudit{next: w.log, failFrom: 2} // the start is recorded, the outcome is not
	svc := w.service(privacy.WithAudit(fa), privacy.WithPseudonymizer(w.log.Pseudonymizer()))
	res, err := svc.Erase(context.Background(), testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase error = %v; want ErrPartialDeletion", err)
	}
	if len(res.DeletedFrom) != 4 || len(res.Errors) != 1 || res.Errors[0].Step != "audit" {
		t.Errorf("result %+v; want everything deleted and the audit step failed", res)
	}
}

// flakyAudit forwards to next until its failFrom-th call, then fails.
type flakyAudit struct {
	mu       sync.Mutex
	next     privacy.AuditLogger
	n        int
	failFrom int
}

func (f *flakyAudit) Log(ctx context.Context, e audit.Event) error {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if n >= f.failFrom {
		return audit.ErrNotRecorded
	}
	return f.next.Log(ctx, e)
}

type failingAudit struct{}

func (failingAudit) Log(context.Context, audit.Event) error { return audit.ErrNotRecorded }

func TestNewServiceValidates(t *testing.T) {
	idp := steward.NewMemoryIdentity()
	a, b := privacy.NewMemoryStore("app"), privacy.NewMemoryStore("app")
	tests := []struct {
		name string
		idp  steward.IdentityProvider
		opts []privacy.Option
	}{
		{"nil identity provider", nil, nil},
		{"duplicate store names", idp, []privacy.Option{privacy.WithStores(a, b)}},
		{"empty store name", idp, []privacy.Option{privacy.WithStores(privacy.NewMemoryStore(""))}},
		{"reserved store name", idp, []privacy.Option{privacy.WithStores(privacy.NewMemoryStore("audit"))}},
		{"store named like the identity provider", idp, []privacy.Option{privacy.WithStores(privacy.NewMemoryStore("identity"))}},
		{"external named like a store", idp, []privacy.Option{privacy.WithStores(a), privacy.WithExternal(&countingExternal{name: "app"})}},
		{"nil store", idp, []privacy.Option{privacy.WithStores(nil)}},
		{"zero attempts", idp, []privacy.Option{privacy.WithRetry(privacy.Retry{})}},
		{"empty sanitizer field", idp, []privacy.Option{privacy.WithSanitizer(privacy.Sanitizer{Drop: map[string][]string{"orders": {""}}})}},
		{"unknown regime", idp, []privacy.Option{privacy.WithRegime("x")}},
		{"zero inline limit", idp, []privacy.Option{privacy.WithInlineExportLimits(0, time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := privacy.NewService(tt.idp, tt.opts...); !errors.Is(err, privacy.ErrInvalidConfig) {
				t.Errorf("NewService error = %v; want ErrInvalidConfig", err)
			}
		})
	}
}
