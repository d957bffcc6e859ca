package privacy_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// throttledErr is a rate-limit answer that says when to come back.
type throttledErr struct{ wait time.Duration }

func (e throttledErr) Error() string                    { return "429 Too Many Requests" }
func (e throttledErr) Throttled() (time.Duration, bool) { return e.wait, true }

// refusedErr is an answer that retrying cannot change.
type refusedErr struct{}

func (refusedErr) Error() string   { return "422 Unprocessable Entity" }
func (refusedErr) Temporary() bool { return false }

// TestDrive drives one request in each situation an engine must tell
// apart, and checks what Drive says to do next.
func TestDrive(t *testing.T) {
	type got struct {
		Outcome    privacy.Outcome
		Status     privacy.Status
		RetryAfter time.Duration
		Err        bool
	}
	for _, c := range []struct {
		name  string
		setup func(w *world, svc *privacy.Service) string
		want  got
	}{
		{"a queued erasure is run to the end: done", func(w *world, svc *privacy.Service) string {
			return queue(t, svc)
		}, got{privacy.OutcomeDone, privacy.StatusCompleted, 0, false}},
		{"a completed request is done at once", func(w *world, svc *privacy.Service) string {
			res, err := svc.Erase(t.Context(), testUser)
			if err != nil {
				t.Fatal(err)
			}
			return res.RequestID
		}, got{privacy.OutcomeDone, privacy.StatusCompleted, 0, false}},
		{"a step that keeps failing leaves it partial: retry with the engine's backoff", func(w *world, svc *privacy.Service) string {
			w.email.failN, w.email.err = -1, errors.New("email service down")
			return queue(t, svc)
		}, got{privacy.OutcomeRetry, privacy.StatusPartial, 0, true}},
		{"a rate-limited identity provider: retry after its Retry-After", func(w *world, svc *privacy.Service) string {
			w.idp.failN, w.idp.err = -1, throttledErr{7 * time.Second}
			return queue(t, svc)
		}, got{privacy.OutcomeRetry, privacy.StatusPartial, 7 * time.Second, true}},
		{"an answer retrying cannot change: needs attention", func(w *world, svc *privacy.Service) string {
			w.idp.failN, w.idp.err = -1, refusedErr{}
			return queue(t, svc)
		}, got{privacy.OutcomeNeedsAttention, privacy.StatusPartial, 0, true}},
		{"a store that panics: needs attention, and the process goes on", func(w *world, svc *privacy.Service) string {
			return queue(t, svc)
		}, got{privacy.OutcomeNeedsAttention, privacy.StatusPartial, 0, true}},
		{"a user under legal hold: held", func(w *world, svc *privacy.Service) string {
			return queue(t, svc)
		}, got{privacy.OutcomeHeld, privacy.StatusHeld, 0, true}},
		{"a request another worker holds: claimed, until its claim lapses", func(w *world, svc *privacy.Service) string {
			id := queue(t, svc)
			claimer := w.reqs.(privacy.RequestClaimer)
			if _, err := claimer.ClaimRequest(t.Context(), id, "elsewhere", time.Hour); err != nil {
				t.Fatal(err)
			}
			return id
		}, got{privacy.OutcomeClaimed, privacy.StatusPending, time.Hour, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			var opts []privacy.Option
			if strings.Contains(c.name, "panics") {
				opts = append(opts, privacy.WithStores(panicStore{}))
			}
			if c.want.Outcome == privacy.OutcomeHeld {
				opts = append(opts, privacy.WithHoldChecker(&holds{held: map[string]string{testUser: "litigation 2025-17"}}))
			}
			svc := w.service(opts...)
			id := c.setup(w, svc)
			res, err := svc.Drive(t.Context(), id)
			g := got{res.Outcome, res.Status, res.RetryAfter, err != nil}
			if g.Outcome == privacy.OutcomeClaimed && g.RetryAfter > 59*time.Minute {
				g.RetryAfter = time.Hour // the claim's time left, by the store's clock
			}
			if diff := cmp.Diff(c.want, g); diff != "" {
				t.Errorf("Drive (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil {
				noUserID(t, "Drive's error", err.Error())
			}
			if res.Kind != privacy.KindErasure {
				t.Errorf("Drive's Kind = %q, want %q", res.Kind, privacy.KindErasure)
			}
		})
	}
}

// panicStore is a DataStore with a bug: its Export and Erase panic, with
// the user ID in the panic's value.
type panicStore struct{}

func (panicStore) Name() string { return "buggy" }
func (panicStore) Export(_ context.Context, userID string) iter.Seq2[privacy.Record, error] {
	panic("no row for " + userID)
}
func (panicStore) Erase(_ context.Context, userID string) (privacy.Erased, error) {
	panic("no row for " + userID)
}

func queue(t *testing.T, svc *privacy.Service) string {
	t.Helper()
	id, err := svc.QueueErasure(t.Context(), testUser)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestQueueErasureRunsNothing: QueueErasure records the request and
// returns; nothing is erased until the request is driven, and a second
// call returns the same open request.
func TestQueueErasureRunsNothing(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	id := queue(t, svc)
	if again := queue(t, svc); again != id {
		t.Errorf("a second QueueErasure made request %q, want the open %q", again, id)
	}
	req, err := svc.Request(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{privacy.StatusPending, 0, 0}, []any{req.Status, w.orders.calls(), w.idp.calls}); diff != "" {
		t.Errorf("after QueueErasure: status, store calls, identity calls (-want +got):\n%s", diff)
	}
	if _, err := svc.QueueErasure(t.Context(), "not a user id"); !errors.Is(err, steward.ErrInvalidUserID) {
		t.Errorf("QueueErasure of a malformed ID = %v, want ErrInvalidUserID", err)
	}
	if _, err := svc.Drive(t.Context(), "req_missing"); !errors.Is(err, privacy.ErrRequestNotFound) {
		t.Errorf("Drive of an unknown request = %v, want ErrRequestNotFound", err)
	}
}

// TestMarkForReview: a pending request an engine gave up on becomes
// partial, so NeedsAttention lists it; a completed one is left alone.
func TestMarkForReview(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	id := queue(t, svc)
	if err := svc.MarkForReview(t.Context(), id, "job discarded after 12 attempts"); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for r, err := range svc.NeedsAttention(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, r.ID+": "+r.Reason)
	}
	if diff := cmp.Diff([]string{id + ": job discarded after 12 attempts"}, listed); diff != "" {
		t.Errorf("NeedsAttention (-want +got):\n%s", diff)
	}
	if res, err := svc.Drive(t.Context(), id); err != nil || res.Outcome != privacy.OutcomeDone {
		t.Fatalf("Drive of the flagged request = %+v, %v; want done", res, err)
	}
	if err := svc.MarkForReview(context.Background(), id, "late"); err != nil {
		t.Fatal(err)
	}
	if req, _ := svc.Request(t.Context(), id); req.Status != privacy.StatusCompleted {
		t.Errorf("MarkForReview changed a completed request to %s", req.Status)
	}
}

// TestAQueuedExportWhoseStorePanics: the export fails without retries and
// its request is left partial, the panic named in the step's error
// without the user ID; the process goes on.
func TestAQueuedExportWhoseStorePanics(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithBlobWriter(&memBlobs{}), privacy.WithStores(panicStore{}))
	id, err := svc.StartExport(t.Context(), testUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := svc.Request(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != privacy.StatusPartial || len(r.Steps) != 1 || r.Steps[0].Attempts != 1 || !strings.Contains(r.Steps[0].Error, "panicked") {
		t.Errorf("request %+v, want partial after one attempt, its step's error naming the panic", r)
	}
	noUserID(t, "the step's error", r.Steps[0].Error)
}

// TestDriveDeferRateLimits: under DeferRateLimits a rate-limited step is
// not retried within the run, so a job engine reschedules the request
// after the Retry-After instead of a worker waiting it out.
func TestDriveDeferRateLimits(t *testing.T) {
	type got struct {
		Outcome    privacy.Outcome
		RetryAfter time.Duration
		Calls      int
	}
	for _, c := range []struct {
		name     string
		deferred bool
		err      error
		want     got
	}{
		{"deferred: one call, retry after the Retry-After", true, throttledErr{7 * time.Second}, got{privacy.OutcomeRetry, 7 * time.Second, 1}},
		{"not deferred: the Service retries the call itself", false, throttledErr{7 * time.Second}, got{privacy.OutcomeRetry, 7 * time.Second, 3}},
		{"deferred: other failures are still retried within the run", true, errors.New("identity provider down"), got{privacy.OutcomeRetry, 0, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			svc := w.service(privacy.WithRetry(privacy.Retry{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}))
			id := queue(t, svc)
			w.idp.failN, w.idp.err = -1, c.err
			ctx := t.Context()
			if c.deferred {
				ctx = privacy.DeferRateLimits(ctx)
			}
			res, _ := svc.Drive(ctx, id)
			w.idp.mu.Lock()
			calls := w.idp.calls
			w.idp.mu.Unlock()
			if diff := cmp.Diff(c.want, got{res.Outcome, res.RetryAfter, calls}); diff != "" {
				t.Errorf("Drive (-want +got):\n%s", diff)
			}
		})
	}
}
