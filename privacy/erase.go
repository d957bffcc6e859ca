package privacy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
)

// DeletionResult is the outcome of an erasure, in the data-handling
// guide's shape: JSON {"success", "deletedFrom", "errors", "requestId"}.
// DeletedFrom and Errors are never null in JSON.
type DeletionResult struct {
	// Success is true when every step is done and the request completed.
	Success bool `json:"success"`
	// DeletedFrom names the steps done, over every run of the request:
	// DataStores, then the identity provider, then external services.
	DeletedFrom []string `json:"deletedFrom"`
	// Errors lists the steps that failed in this run, and the steps not
	// attempted because an earlier phase failed.
	Errors []StepError `json:"errors"`
	// RequestID identifies the request for Resume and for polling.
	RequestID string `json:"requestId"`
}

// EraseOption configures one Erase call.
type EraseOption func(*eraseConfig)

type eraseConfig struct {
	regime   Regime
	actor    string
	received time.Time
}

// ForRegime sets the regime whose deadlines a new request follows
// (default: the Service's, GDPR unless WithRegime says otherwise).
func ForRegime(g Regime) EraseOption {
	return func(c *eraseConfig) { c.regime = g }
}

// RequestedBy records who asked for the erasure (default: the principal
// in ctx, else SystemActor).
func RequestedBy(actor string) EraseOption {
	return func(c *eraseConfig) { c.actor = actor }
}

// ReceivedAt sets when a request was received, if before the call (a
// request that arrived by post or email); the deadline runs from it.
func ReceivedAt(t time.Time) EraseOption {
	return func(c *eraseConfig) { c.received = t }
}

// Erase erases userID everywhere, as a durable saga: it stores an erasure
// request (received time, due date), then erases each DataStore in
// order, then the identity provider, then each external service, then
// writes a data_deletion audit event; every step is checkpointed in the
// RequestStore, idempotent, and retried with backoff. If the user already
// has an open erasure request, Erase resumes it instead of starting a
// second one (its options are then ignored).
//
// Stores failing does not stop the other stores, but the identity and
// external services wait until every store is erased, and external
// services until the identity is. When a step still fails after its
// retries the request is left partial and Erase returns the result with
// an error wrapping ErrPartialDeletion; Resume or ResumePending finishes
// it. A user under legal hold is not erased: the request is held and the
// error wraps ErrLegalHold. If ctx ends (or the process dies) mid-way,
// the request stays pending and Resume carries on from the last
// checkpoint.
//
// The data_deletion events carry the request ID. The completion event is
// written at least once: a crash after writing it and before recording
// that it was written writes it again on resume.
//
// Other errors wrap steward.ErrInvalidUserID, ErrInvalidRequest (a bad
// option), ctx's error, or the RequestStore's or HoldChecker's error.
// No error contains the user ID.
func (s *Service) Erase(ctx context.Context, userID string, opts ...EraseOption) (DeletionResult, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return emptyResult(""), fmt.Errorf("privacy: erase: %w", err)
	}
	cfg := eraseConfig{regime: s.regime, actor: actorFrom(ctx)}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.regime.Validate(); err != nil {
		return emptyResult(""), fmt.Errorf("privacy: erase: %w", err)
	}
	req, err := s.openOrCreate(ctx, userID, cfg)
	if err != nil {
		return emptyResult(""), redactErr(fmt.Errorf("privacy: erase: %w", err), userID)
	}
	return s.run(ctx, req, true)
}

// Resume carries on the erasure request id from its last checkpoint and
// returns its result. A completed request returns its result at once.
// Errors are Erase's, or wrap ErrRequestNotFound, or ErrInvalidRequest
// for a request that is not an erasure.
func (s *Service) Resume(ctx context.Context, id string) (DeletionResult, error) {
	req, err := s.requests.Get(ctx, id)
	if err != nil {
		return emptyResult(id), fmt.Errorf("privacy: resume: %w", err)
	}
	if req.Kind != KindErasure {
		return emptyResult(id), fmt.Errorf("%w: request %q is a %s request, not an erasure", ErrInvalidRequest, id, req.Kind)
	}
	return s.run(ctx, req, true)
}

// ResumePending finishes the requests a worker should pick up: partial
// ones, and pending ones left untouched for WithResumeAfter (their
// process died, or their Erase call gave up). Held requests are left
// alone, and so is every request another worker has claimed: it is safe
// to call ResumePending from every instance, at any frequency. It
// returns how many requests it completed and the errors of the others,
// joined.
func (s *Service) ResumePending(ctx context.Context) (int, error) {
	reqs, err := s.Resumable(ctx)
	if err != nil {
		return 0, fmt.Errorf("privacy: resume pending: %w", err)
	}
	done := 0
	var errs []error
	for _, r := range reqs {
		id := r.ID
		res, err := s.Drive(ctx, id)
		if res.Outcome == OutcomeClaimed {
			continue // another worker has it
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("request %q: %w", id, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}

// NeedsAttention yields the partial requests: a step failed after its
// retries and the cause may need a person (log them for manual review).
func (s *Service) NeedsAttention(ctx context.Context) iter.Seq2[Request, error] {
	return s.requests.List(ctx, RequestFilter{Statuses: []Status{StatusPartial}})
}

// Overdue yields the pending and partial requests whose due date has
// passed.
func (s *Service) Overdue(ctx context.Context) iter.Seq2[Request, error] {
	return s.requests.List(ctx, RequestFilter{Statuses: []Status{StatusPending, StatusPartial}, DueBefore: s.clock()})
}

// Extend extends the request's deadline once, as its regime allows (GDPR
// two months, CCPA 45 days), recording when and why. It fails with
// ErrAlreadyExtended for a second extension and ErrInvalidRequest for an
// empty reason or a completed request.
func (s *Service) Extend(ctx context.Context, id, reason string) (Request, error) {
	if reason == "" {
		return Request{}, fmt.Errorf("%w: extension reason is empty", ErrInvalidRequest)
	}
	req, err := s.requests.Get(ctx, id)
	if err != nil {
		return Request{}, fmt.Errorf("privacy: extend: %w", err)
	}
	if !req.Status.Open() {
		return Request{}, fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, req.ID, req.Status)
	}
	err = s.checkpoint(ctx, &req, nil, func(r *Request) error {
		if !r.ExtendedAt.IsZero() {
			return fmt.Errorf("%w: request %q on %s", ErrAlreadyExtended, r.ID, r.ExtendedAt.Format(time.DateOnly))
		}
		if !r.Status.Open() {
			return fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, r.ID, r.Status)
		}
		r.ExtendedAt, r.ExtensionReason = s.clock(), reason
		r.DueAt = r.Regime.Extend(r.DueAt)
		return nil
	})
	if errors.Is(err, errAlreadyCompleted) {
		return Request{}, fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, req.ID, StatusCompleted)
	}
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

// emptyResult is a result with non-nil slices.
func emptyResult(id string) DeletionResult {
	return DeletionResult{DeletedFrom: []string{}, Errors: []StepError{}, RequestID: id}
}

// openOrCreate returns the user's open erasure request, or a new one.
func (s *Service) openOrCreate(ctx context.Context, userID string, cfg eraseConfig) (Request, error) {
	for range 3 {
		for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindErasure, UserID: userID, Statuses: []Status{StatusPending, StatusPartial, StatusHeld}, Limit: 1}) {
			if err != nil {
				return Request{}, err
			}
			return r, nil
		}
		now := s.clock()
		received := now
		if !cfg.received.IsZero() && cfg.received.Before(now) {
			received = cfg.received.UTC().Round(0)
		}
		req := Request{
			ID: newRequestID(), Kind: KindErasure, UserID: userID, Actor: cfg.actor, Regime: cfg.regime,
			Status: StatusPending, ReceivedAt: received, DueAt: cfg.regime.Deadline(received), UpdatedAt: now,
			Steps: s.plan(nil),
		}
		err := s.requests.Create(ctx, req)
		if err == nil {
			req.Version = 1
			return req, nil
		}
		if !errors.Is(err, ErrActiveRequest) {
			return Request{}, fmt.Errorf("saving request: %w", err)
		}
		// Another call created one first: resume that.
	}
	return Request{}, fmt.Errorf("saving request: %w", ErrConflict)
}

// plan returns the steps of an erasure under the current configuration,
// keeping the state of the existing steps. Steps of stores or services
// registered since the request began join their phase; steps of ones no
// longer registered stay (and fail until they are registered again).
func (s *Service) plan(existing []Step) []Step {
	want := make([]Step, 0, len(s.stores)+len(s.externals)+2)
	for _, st := range s.stores {
		want = append(want, Step{Name: st.Name(), Kind: StepStore, Status: StepPending})
	}
	want = append(want, Step{Name: s.idpName, Kind: StepIdentity, Status: StepPending})
	for _, e := range s.externals {
		want = append(want, Step{Name: e.Name(), Kind: StepExternal, Status: StepPending})
	}
	if s.audit != nil {
		want = append(want, Step{Name: auditStepName, Kind: StepAudit, Status: StepPending})
	}
	out := slices.Clone(existing)
	for _, w := range want {
		if !slices.ContainsFunc(out, func(e Step) bool { return e.Name == w.Name }) {
			out = append(out, w)
		}
	}
	slices.SortStableFunc(out, func(a, b Step) int { return a.Kind.phase() - b.Kind.phase() })
	return out
}

// errAlreadyCompleted stops a checkpoint of a request someone else
// completed meanwhile.
var errAlreadyCompleted = errors.New("privacy: request already completed")

// checkpoint applies mutate to req and stores it. When the stored request
// changed meanwhile (an extension, say), it reloads it, applies mutate
// again and retries; mutations only move steps forward, so nothing is
// undone. Under a claim (c not nil), a reload that shows another worker
// holding the request stops with ErrClaimLost: this run is fenced off.
// A request completed meanwhile is not touched: req becomes the stored
// one and errAlreadyCompleted is returned.
func (s *Service) checkpoint(ctx context.Context, req *Request, c *runClaim, mutate func(*Request) error) error {
	for range 8 {
		if req.Status == StatusCompleted && req.Kind == KindErasure {
			return errAlreadyCompleted
		}
		next := req.Clone()
		if err := mutate(&next); err != nil {
			return err
		}
		next.UpdatedAt = s.clock()
		err := s.requests.Update(ctx, next)
		if err == nil {
			next.Version++
			*req = next
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("saving request: %w", err)
		}
		fresh, gerr := s.requests.Get(ctx, req.ID)
		if gerr != nil {
			return fmt.Errorf("saving request: %w", gerr)
		}
		if c != nil && (c.lost() || s.sharedClaims && fresh.ClaimedBy != c.owner) {
			return ErrClaimLost
		}
		if req.Kind == KindErasure {
			fresh.Steps = s.plan(fresh.Steps)
		}
		*req = fresh
	}
	return fmt.Errorf("saving request: %w", ErrConflict)
}

// retryOptions returns the backoff options of the retry policy.
func (s *Service) retryOptions() []backoff.RetryOption {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.retry.InitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.retry.MaxInterval,
	}
	return []backoff.RetryOption{
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(s.retry.MaxAttempts)),
		backoff.WithMaxElapsedTime(0),
	}
}

// result builds the DeletionResult of req with this run's errors.
func (s *Service) result(req Request, errs []StepError) DeletionResult {
	res := emptyResult(req.ID)
	for _, st := range req.Steps {
		if st.Status == StepDone && st.Kind != StepAudit {
			res.DeletedFrom = append(res.DeletedFrom, st.Name)
		}
	}
	res.Errors = append(res.Errors, errs...)
	res.Success = req.Status == StatusCompleted
	return res
}

// run executes req's remaining steps under a claim; see Erase. With
// wait, it waits while another worker runs the request and then carries
// on from where that one left it (usually: returns the completed
// result); without, it fails with ErrRequestClaimed.
func (s *Service) run(ctx context.Context, req Request, wait bool) (DeletionResult, error) {
	userID := req.UserID
	if req.Status == StatusCompleted {
		return s.result(req, nil), nil
	}
	c, err := s.claim(ctx, &req, wait)
	if errors.Is(err, errAlreadyCompleted) {
		return s.result(req, nil), nil
	}
	if err != nil {
		return s.result(req, nil), redactErr(fmt.Errorf("privacy: erase: %w", err), userID)
	}
	defer c.stop()
	res, err := s.runClaimed(c.ctx, req, c)
	if c.lost() || errors.Is(err, ErrClaimLost) {
		return res, fmt.Errorf("privacy: erase: request %q: %w", req.ID, ErrClaimLost)
	}
	return res, err
}

// runClaimed executes req's remaining steps while c holds it.
func (s *Service) runClaimed(ctx context.Context, req Request, c *runClaim) (DeletionResult, error) {
	userID := req.UserID
	fail := func(err error) (DeletionResult, error) {
		if errors.Is(err, errAlreadyCompleted) {
			return s.result(req, nil), nil
		}
		return s.result(req, nil), redactErr(fmt.Errorf("privacy: erase: %w", err), userID)
	}
	if req.Status == StatusCompleted {
		return s.result(req, nil), nil
	}
	req.Steps = s.plan(req.Steps)

	if s.holds != nil {
		held, reason, err := s.holds.Held(ctx, userID)
		if err != nil {
			return fail(fmt.Errorf("legal hold check: %w", err))
		}
		if held {
			if err := s.checkpoint(ctx, &req, c, func(r *Request) error {
				r.Status, r.Reason = StatusHeld, reason
				return nil
			}); err != nil {
				return fail(err)
			}
			res := s.result(req, []StepError{{Step: holdStepName, Message: redact("legal hold: "+reason, userID), Err: ErrLegalHold}})
			if err := s.logDeletion(ctx, req, "held", nil); err != nil {
				res.Errors = append(res.Errors, StepError{Step: auditStepName, Message: redact(err.Error(), userID), Attempts: 1, Err: err})
			}
			return res, fmt.Errorf("%w: request %q", ErrLegalHold, req.ID)
		}
	}
	if req.Status != StatusPending {
		if err := s.checkpoint(ctx, &req, c, func(r *Request) error {
			r.Status, r.Reason = StatusPending, ""
			return nil
		}); err != nil {
			return fail(err)
		}
	}

	var errs []StepError
	failedPhase := -1
	for i := 0; i < len(req.Steps); i++ {
		st := req.Steps[i]
		if st.Status == StepDone || st.Kind == StepAudit {
			continue
		}
		if failedPhase >= 0 && st.Kind.phase() > failedPhase {
			errs = append(errs, StepError{Step: st.Name, Message: "not attempted: an earlier step failed"})
			continue
		}
		erased, attempts, err := s.runStep(ctx, req, st)
		if ctx.Err() != nil {
			// The process is stopping: record nothing more; Resume
			// carries on from the last checkpoint.
			return s.result(req, errs), fmt.Errorf("privacy: erase: interrupted: %w", context.Cause(ctx))
		}
		now := s.clock()
		if cerr := s.checkpoint(ctx, &req, c, func(r *Request) error {
			p := r.Step(st.Name)
			if p == nil {
				return nil
			}
			p.Attempts += attempts
			p.UpdatedAt = now
			switch {
			case err == nil:
				p.Status, p.Error, p.Erased = StepDone, "", max(p.Erased, erased)
			case p.Status != StepDone:
				p.Status, p.Error = StepFailed, redact(err.Error(), userID)
			}
			return nil
		}); cerr != nil {
			return fail(cerr)
		}
		if err != nil {
			errs = append(errs, StepError{Step: st.Name, Message: redact(err.Error(), userID), Attempts: attempts, Err: redactErr(err, userID)})
			if failedPhase < 0 {
				failedPhase = st.Kind.phase()
			}
		}
	}

	if failedPhase >= 0 {
		if err := s.checkpoint(ctx, &req, c, func(r *Request) error {
			r.Status = StatusPartial
			return nil
		}); err != nil {
			return fail(err)
		}
		failed := make([]any, 0, len(errs))
		for _, e := range errs {
			failed = append(failed, e.Step)
		}
		if err := s.logDeletion(ctx, req, "partial", map[string]any{"failed": failed}); err != nil {
			errs = append(errs, StepError{Step: auditStepName, Message: redact(err.Error(), userID), Attempts: 1, Err: err})
		}
		return s.result(req, errs), fmt.Errorf("%w: request %q: %d step(s) not done", ErrPartialDeletion, req.ID, len(errs))
	}

	// Every erasure step is done: record the outcome, then complete.
	attempts := 0
	var auditErr error
	if st := req.Step(auditStepName); st != nil && st.Status != StepDone {
		_, auditErr = backoff.Retry(ctx, func() (struct{}, error) {
			attempts++
			return struct{}{}, s.logDeletionOnce(ctx, req, "completed")
		}, s.retryOptions()...)
		if ctx.Err() != nil {
			return s.result(req, errs), fmt.Errorf("privacy: erase: interrupted: %w", context.Cause(ctx))
		}
	}
	now := s.clock()
	if err := s.checkpoint(ctx, &req, c, func(r *Request) error {
		if p := r.Step(auditStepName); p != nil && p.Status != StepDone {
			p.Attempts += attempts
			p.UpdatedAt = now
			if auditErr != nil {
				p.Status, p.Error = StepFailed, redact(auditErr.Error(), userID)
				r.Status = StatusPartial
				return nil
			}
			p.Status, p.Error = StepDone, ""
		}
		r.Status, r.CompletedAt = StatusCompleted, now
		return nil
	}); err != nil {
		return fail(err)
	}
	if auditErr != nil {
		errs = append(errs, StepError{Step: auditStepName, Message: redact(auditErr.Error(), userID), Attempts: attempts, Err: auditErr})
		return s.result(req, errs), fmt.Errorf("%w: request %q: audit record not written", ErrPartialDeletion, req.ID)
	}
	return s.result(req, errs), nil
}

// runStep runs one erasure step with retries and returns what it erased
// and how many calls it made.
func (s *Service) runStep(ctx context.Context, req Request, st Step) (erased, attempts int, err error) {
	erased, err = backoff.Retry(ctx, func() (int, error) {
		attempts++
		n, err := s.doStep(ctx, req.UserID, st)
		if err != nil && isPermanent(err) {
			return n, backoff.Permanent(err)
		}
		return n, err
	}, s.retryOptions()...)
	return erased, attempts, err
}

// errNotRegistered reports a step whose store or service is gone.
var errNotRegistered = errors.New("not registered with the Service")

func (s *Service) doStep(ctx context.Context, userID string, st Step) (int, error) {
	switch st.Kind {
	case StepStore:
		ds := s.storeByName[st.Name]
		if ds == nil {
			return 0, backoff.Permanent(fmt.Errorf("store %q: %w", st.Name, errNotRegistered))
		}
		er, err := ds.Erase(ctx, userID)
		return er.Count, err
	case StepIdentity:
		if st.Name != s.idpName {
			return 0, backoff.Permanent(fmt.Errorf("identity provider %q: %w", st.Name, errNotRegistered))
		}
		if err := s.idp.DeleteUser(ctx, userID); err != nil {
			return 0, err
		}
		return 1, nil
	case StepExternal:
		e := s.externalByName[st.Name]
		if e == nil {
			return 0, backoff.Permanent(fmt.Errorf("external service %q: %w", st.Name, errNotRegistered))
		}
		return 0, e.Erase(ctx, userID)
	}
	return 0, backoff.Permanent(fmt.Errorf("step %q: unknown kind %q", st.Name, st.Kind))
}

// logDeletionOnce writes the data_deletion event of req's outcome under
// an ID made from the request's, so that writing it again after a crash
// (before its step was checkpointed) stores nothing new in an
// audit.Appender: one completion event per request.
func (s *Service) logDeletionOnce(ctx context.Context, req Request, status string) error {
	return s.logDeletionID(ctx, audit.EventID("privacy/erasure/"+req.ID+"/"+status), req, status, nil)
}

// logDeletion writes a data_deletion event about req.
func (s *Service) logDeletion(ctx context.Context, req Request, status string, extra map[string]any) error {
	return s.logDeletionID(ctx, "", req, status, extra)
}

func (s *Service) logDeletionID(ctx context.Context, id string, req Request, status string, extra map[string]any) error {
	if s.audit == nil {
		return nil
	}
	deleted := []any{}
	erased := map[string]any{}
	for _, st := range req.Steps {
		if st.Status == StepDone && st.Kind != StepAudit {
			deleted = append(deleted, st.Name)
			erased[st.Name] = st.Erased
		}
	}
	details := map[string]any{
		"requestId":   req.ID,
		"status":      status,
		"regime":      string(req.Regime),
		"receivedAt":  req.ReceivedAt.Format(time.RFC3339),
		"dueAt":       req.DueAt.Format(time.RFC3339),
		"deletedFrom": deleted,
		"erased":      erased,
	}
	for k, v := range extra {
		details[k] = v
	}
	return s.logEventID(ctx, id, audit.DataDeletion, req.UserID, req.Actor, details)
}
