package privacy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

// DeletionResult is the outcome of an erasure: JSON {"success",
// "deletedFrom", "errors", "requestId"}, plus "erased" (what each step
// removed, over both passes), "identityNotFound" and, for a request in its
// grace period, "notBefore". DeletedFrom, Errors and Erased are never
// null in JSON.
type DeletionResult struct {
	// Success is true when every step is done and the request completed.
	Success bool `json:"success"`
	// DeletedFrom names the steps done, over every run of the request:
	// DataStores, then the identity provider, then external services.
	// The identity provider is left out when it did not know the user
	// (IdentityNotFound): nothing was deleted there.
	DeletedFrom []string `json:"deletedFrom"`
	// Errors lists the steps that failed in this run, and the steps not
	// attempted because an earlier phase failed.
	Errors []StepError `json:"errors"`
	// RequestID identifies the request for Resume and for polling.
	RequestID string `json:"requestId"`
	// Erased counts what each done step removed: a DataStore's records
	// over the first pass and the final pass, 1 for an identity deleted.
	Erased map[string]int `json:"erased"`
	// IdentityNotFound reports that the identity provider did not know
	// the user: nothing was deleted there.
	IdentityNotFound bool `json:"identityNotFound,omitempty"`
	// NotBefore is when a request in its grace period starts erasing.
	NotBefore time.Time `json:"notBefore,omitzero"`
}

// EraseOption configures one Erase call.
type EraseOption func(*eraseConfig)

type eraseConfig struct {
	regime          Regime
	actor           string
	received        time.Time
	noGrace         bool
	identityDeleted bool
	replayOf        string
	start           time.Time // when the call began
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

// SkipGracePeriod makes a new request erase at once, whatever
// WithGracePeriod says.
func SkipGracePeriod() EraseOption {
	return func(c *eraseConfig) { c.noGrace = true }
}

// IdentityDeleted says the account is already gone at the identity
// provider (the user deleted it in the provider's own pages, or an
// administrator in its dashboard; a user.deleted webhook reports it): a
// new request records its identity step as done, with
// StepOutcomeDeletedAtProvider, without calling the provider, and skips the
// grace period; an open request of the user gets the same, so one in its
// grace period runs at once. The application's data and external
// services are erased as usual.
func IdentityDeleted() EraseOption {
	return func(c *eraseConfig) { c.identityDeleted, c.noGrace = true, true }
}

// replayOf marks a request made by Replay, naming the request that
// erased the user before.
func replayOf(id string) EraseOption {
	return func(c *eraseConfig) { c.replayOf = id }
}

// Erase erases userID everywhere, as a durable saga: it stores an erasure
// request (received time, due date), then fences the user (see
// CheckFence: writes through Steward and sessions are refused from now
// on; the account is locked at the identity provider when it is a
// steward.Moderator; cached roles are invalidated; the audit record that
// the erasure starts is written first, and nothing is erased when it
// cannot be), erases each DataStore in order and the user's queued
// exports, then the identity provider, then each external service, then
// every DataStore once more (the final pass: rows written mid-way do not
// survive), records the user in the Ledger, and writes a data_deletion
// audit event; the completed request then names the user and the actor
// by pseudonym only. Every step is checkpointed in the RequestStore,
// idempotent, and retried with backoff. If the user already has an open
// erasure request, Erase resumes it instead of starting a second one
// (its options are then ignored).
//
// Before anything is stored, the ID is checked with
// steward.ValidateUserID and, when the provider is a steward.IDValidator,
// with the provider's own rule. An identity the provider does not know is
// recorded as such (StepOutcomeNotFound, DeletionResult.IdentityNotFound),
// never counted as deleted.
//
// Stores failing does not stop the other stores, but the identity and
// external services wait until every store is erased, and external
// services until the identity is. When a step still fails after its
// retries the request is left partial and Erase returns the result with
// an error wrapping ErrPartialDeletion; Resume or ResumePending finishes
// it. A user under legal hold is not erased: the request is held and the
// error wraps ErrLegalHold. With WithGracePeriod, a new request erases
// nothing before its NotBefore and Erase returns an error wrapping
// ErrScheduled. If ctx ends (or the process dies) mid-way, the request
// stays pending and Resume carries on from the last checkpoint.
//
// The data_deletion events carry the request ID. The completion event is
// written at least once: a crash after writing it and before recording
// that it was written writes it again on resume (an audit.Appender keeps
// one, see audit.EventID).
//
// Other errors wrap steward.ErrInvalidUserID, ErrInvalidRequest (a bad
// option), ErrCancelled, ctx's error, or the RequestStore's or
// HoldChecker's error. No error, at any level of its chain, contains the
// user ID.
func (s *Service) Erase(ctx context.Context, userID string, opts ...EraseOption) (DeletionResult, error) {
	if err := steward.ValidateFor(s.idp, userID); err != nil {
		return emptyResult(""), fmt.Errorf("privacy: erase: %w", err)
	}
	cfg := eraseConfig{regime: s.regime, actor: actorFrom(ctx), start: s.clock()}
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
	if cfg.identityDeleted {
		if err := s.identityGone(ctx, &req); err != nil {
			return s.result(req, nil), redactErr(fmt.Errorf("privacy: erase: %w", err), userID)
		}
	}
	return s.run(ctx, req, true)
}

// identityGone records, on an open request found by an Erase with
// IdentityDeleted, that the account is gone at the provider: its grace
// period ends (nobody is left to cancel it) and its identity step is
// done, unless a run already learned the account was there.
func (s *Service) identityGone(ctx context.Context, req *Request) error {
	st := req.Step(s.idpName)
	if req.NotBefore.IsZero() && (st == nil || st.Status == StepDone || st.Outcome == outcomeFound) {
		return nil
	}
	now := s.clock()
	err := s.checkpoint(ctx, req, nil, func(r *Request) error {
		r.NotBefore = time.Time{}
		if p := r.Step(s.idpName); p != nil && p.Status != StepDone && p.Outcome != outcomeFound {
			p.Status, p.Error, p.Outcome, p.UpdatedAt = StepDone, "", StepOutcomeDeletedAtProvider, now
		}
		return nil
	})
	if errors.Is(err, errAlreadyCompleted) {
		return nil
	}
	return err
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
// process died, or their Erase call gave up) whose grace period is over.
// Held requests are left alone, and so is every request another worker
// has claimed: it is safe to call ResumePending from every instance, at
// any frequency. It returns how many requests it completed (an export
// cancelled because its user is being erased counts as settled) and the
// errors of the others, joined.
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
		if res.Outcome == OutcomeClaimed || res.Outcome == OutcomeScheduled {
			continue // another worker has it, or it is not due
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
// two months, CCPA 45 days), recording when and why. The extension is
// audited first (data_deletion or data_export, status "extended", the new
// due date; the reason stays in the request): when the audit record
// cannot be written, nothing changes. It fails with ErrAlreadyExtended for
// a second extension and ErrInvalidRequest for an empty reason or a
// finished request.
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
	if !req.ExtendedAt.IsZero() {
		return Request{}, fmt.Errorf("%w: request %q on %s", ErrAlreadyExtended, req.ID, req.ExtendedAt.Format(time.DateOnly))
	}
	// Audit before effect: an extension the trail cannot show is not made.
	t := audit.DataDeletion
	if req.Kind == KindExport {
		t = audit.DataExport
	}
	if err := s.logEventID(ctx, audit.EventID("privacy/"+string(req.Kind)+"/"+req.ID+"/extended"), t, req.UserID, actorFrom(ctx),
		map[string]any{"requestId": req.ID, "status": "extended", "dueAt": req.Regime.Extend(req.DueAt).Format(time.RFC3339)}); err != nil {
		return Request{}, fmt.Errorf("privacy: extend: nothing changed: %w", err)
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
	if errors.Is(err, errAlreadyCompleted) || errors.Is(err, ErrCancelled) {
		return Request{}, fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, req.ID, req.Status)
	}
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

// Cancel closes the open request id for good, recording reason (which
// must not contain personal data) and who cancelled: an erasure is then
// never carried out, and a queued export never written. It is for
// administrators: the principal in ctx must be allowed AdminPermission by
// the Service's Authorizer (WithAuthorizer). The data subject may cancel
// their own erasure only while its grace period runs (WithGracePeriod).
// A call without a principal in ctx is an operator's (cmd/steward, a
// maintenance job) and is allowed.
//
// The cancellation is audited (data_deletion or data_export, status
// "cancelled") before it takes effect: when the audit record cannot be
// written, nothing changes. A worker running the request stops before its
// next step; what it erased stays erased. The request is finished: it
// names the user and actor by pseudonym only, the user is no longer
// fenced, an account the erasure locked at the provider is unlocked, and
// cached roles are invalidated.
//
// It fails with ErrForbidden, ErrInvalidRequest (an empty reason, or a
// request that is already finished), ErrRequestNotFound, or the audit
// logger's or store's error.
func (s *Service) Cancel(ctx context.Context, id, reason string) (Request, error) {
	if strings.TrimSpace(reason) == "" {
		return Request{}, fmt.Errorf("%w: cancellation reason is empty", ErrInvalidRequest)
	}
	req, err := s.requests.Get(ctx, id)
	if err != nil {
		return Request{}, fmt.Errorf("privacy: cancel: %w", err)
	}
	if !req.Status.Open() {
		return Request{}, fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, req.ID, req.Status)
	}
	actor, err := s.mayCancel(ctx, req)
	if err != nil {
		return Request{}, err
	}
	userID := req.UserID
	t := audit.DataDeletion
	if req.Kind == KindExport {
		t = audit.DataExport
	}
	if err := s.logEventID(ctx, audit.EventID("privacy/"+string(req.Kind)+"/"+req.ID+"/cancelled"), t, userID, actor,
		map[string]any{"requestId": req.ID, "status": "cancelled", "reason": reason}); err != nil {
		return Request{}, fmt.Errorf("privacy: cancel: nothing changed: %w", err)
	}
	locked := false
	if st := req.Step(fenceStepName); st != nil && st.Status == StepDone && st.Erased > 0 {
		locked = true
	}
	now := s.clock()
	err = s.checkpoint(ctx, &req, nil, func(r *Request) error {
		if !r.Status.Open() {
			return fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, r.ID, r.Status)
		}
		if st := r.Step(fenceStepName); st != nil && st.Status == StepDone && st.Erased > 0 {
			locked = true
		}
		r.Status, r.Reason, r.CompletedAt = StatusCancelled, reason, now
		s.pseudonymize(r)
		return nil
	})
	if errors.Is(err, errAlreadyCompleted) || errors.Is(err, ErrCancelled) {
		return Request{}, fmt.Errorf("%w: request %q is %s", ErrInvalidRequest, req.ID, req.Status)
	}
	if err != nil {
		return Request{}, redactErr(fmt.Errorf("privacy: cancel: %w", err), userID)
	}
	if mod, ok := s.idp.(steward.Moderator); ok && locked && req.Kind == KindErasure {
		_ = mod.Unlock(ctx, userID) // best effort: the account may be gone
	}
	s.invalidate(userID)
	s.tel.requestEntered(ctx, req.Kind, StatusCancelled)
	if s.tel.log != nil {
		s.tel.log.LogAttrs(ctx, slog.LevelInfo, "privacy: request cancelled", slog.String("request", req.ID), slog.String("kind", string(req.Kind)))
	}
	return req, nil
}

// mayCancel returns the actor of a cancellation of req, or ErrForbidden.
func (s *Service) mayCancel(ctx context.Context, req Request) (string, error) {
	p, ok := rbac.PrincipalFrom(ctx)
	if !ok || p.UserID == "" {
		return SystemActor, nil
	}
	if s.authz != nil && s.authz.Allowed(p, AdminPermission) {
		return p.UserID, nil
	}
	if p.UserID == req.UserID && req.Kind == KindErasure && !req.NotBefore.IsZero() && s.clock().Before(req.NotBefore) {
		return p.UserID, nil
	}
	return "", fmt.Errorf("%w: cancelling request %q needs %s (or the subject's own request in its grace period)", ErrForbidden, req.ID, AdminPermission)
}

// emptyResult is a result with non-nil slices.
func emptyResult(id string) DeletionResult {
	return DeletionResult{DeletedFrom: []string{}, Errors: []StepError{}, Erased: map[string]int{}, RequestID: id}
}

// openOrCreate returns the user's open erasure request, or a new one.
func (s *Service) openOrCreate(ctx context.Context, userID string, cfg eraseConfig) (Request, error) {
	for range 3 {
		for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindErasure, UserID: userID, Statuses: openStatuses, Limit: 1}) {
			if err != nil {
				return Request{}, err
			}
			return r, nil
		}
		// A request of another caller that completed since this call
		// began answers it too: two Erase calls at once make one request.
		if r, ok, err := s.erasedSince(ctx, userID, cfg); err != nil || ok {
			return r, err
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
		if s.grace > 0 && !cfg.noGrace {
			req.NotBefore = now.Add(s.grace)
		}
		if cfg.identityDeleted {
			if st := req.Step(s.idpName); st != nil {
				st.Status, st.Outcome, st.UpdatedAt = StepDone, StepOutcomeDeletedAtProvider, now
			}
		}
		if cfg.replayOf != "" {
			if st := req.Step(fenceStepName); st != nil {
				st.Outcome = replayPrefix + cfg.replayOf
			}
		}
		err := s.requests.Create(ctx, req)
		if err == nil {
			req.Version = 1
			s.tel.requestEntered(ctx, KindErasure, StatusPending)
			// The other caller may have run its whole request between
			// the look-ups above and this Create (a database whose
			// writers queue, such as SQLite): then this one stands down.
			if done, ok, err := s.erasedSince(ctx, userID, cfg); err == nil && ok && done.ID != req.ID {
				now := s.clock()
				if cerr := s.checkpoint(ctx, &req, nil, func(r *Request) error {
					if r.Status != StatusPending || len(slices.DeleteFunc(slices.Clone(r.Steps), func(st Step) bool { return st.Attempts == 0 })) > 0 {
						return errNotDuplicate
					}
					r.Status, r.Reason, r.CompletedAt = StatusCancelled, "duplicate of "+done.ID+", which erased the user meanwhile", now
					s.pseudonymize(r)
					return nil
				}); cerr == nil {
					return done, nil
				}
			}
			return req, nil
		}
		if !errors.Is(err, ErrActiveRequest) {
			return Request{}, fmt.Errorf("saving request: %w", err)
		}
		// Another call created one first: resume that.
	}
	return Request{}, fmt.Errorf("saving request: %w", ErrConflict)
}

// errNotDuplicate stops the stand-down of a request another worker
// already started.
var errNotDuplicate = errors.New("privacy: the request has started")

// erasedSince returns the completed request that erased userID since
// the Erase call of cfg began, if the Ledger holds one.
func (s *Service) erasedSince(ctx context.Context, userID string, cfg eraseConfig) (Request, bool, error) {
	if s.ledger == nil || cfg.replayOf != "" {
		return Request{}, false, nil
	}
	e, ok, err := s.ledger.FindErased(ctx, s.pseudo.Pseudonyms(userID)...)
	if err != nil || !ok || e.ErasedAt.Before(cfg.start.Truncate(time.Microsecond)) {
		return Request{}, false, err
	}
	r, err := s.requests.Get(ctx, e.RequestID)
	if err != nil || r.Status != StatusCompleted {
		return Request{}, false, nil
	}
	return r, true, nil
}

// plan returns the steps of an erasure under the current configuration,
// keeping the state of the existing steps. Steps of stores or services
// registered since the request began join their phase; steps of ones no
// longer registered stay (and fail until they are registered again).
func (s *Service) plan(existing []Step) []Step {
	want := make([]Step, 0, len(s.stores)+len(s.externals)+6)
	want = append(want, Step{Name: fenceStepName, Kind: StepFence, Status: StepPending})
	for _, st := range s.stores {
		want = append(want, Step{Name: st.Name(), Kind: StepStore, Status: StepPending})
	}
	if s.blobs != nil {
		want = append(want, Step{Name: exportsStepName, Kind: StepExports, Status: StepPending})
	}
	want = append(want, Step{Name: s.idpName, Kind: StepIdentity, Status: StepPending})
	for _, e := range s.externals {
		want = append(want, Step{Name: e.Name(), Kind: StepExternal, Status: StepPending})
	}
	want = append(want, Step{Name: finalStepName, Kind: StepFinal, Status: StepPending})
	if s.ledger != nil {
		want = append(want, Step{Name: ledgerStepName, Kind: StepLedger, Status: StepPending})
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
// A request finished meanwhile is not touched: req becomes the stored
// one and errAlreadyCompleted (an erasure completed) or ErrCancelled is
// returned.
func (s *Service) checkpoint(ctx context.Context, req *Request, c *runClaim, mutate func(*Request) error) error {
	for range 8 {
		switch {
		case req.Status == StatusCancelled:
			return fmt.Errorf("%w: request %q", ErrCancelled, req.ID)
		case req.Status == StatusCompleted && req.Kind == KindErasure:
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
		if req.Kind == KindErasure && fresh.Status.Open() {
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

// reported reports whether a done step appears in DeletedFrom and
// Erased: the stores, the identity, the external services.
func reported(st Step) bool {
	switch st.Kind {
	case StepStore, StepIdentity, StepExternal:
		return true
	}
	return false
}

// result builds the DeletionResult of req with this run's errors.
func (s *Service) result(req Request, errs []StepError) DeletionResult {
	res := emptyResult(req.ID)
	for _, st := range req.Steps {
		if st.Status != StepDone || !reported(st) {
			continue
		}
		if st.Kind == StepIdentity && st.Outcome == StepOutcomeNotFound {
			res.IdentityNotFound = true
			continue
		}
		res.DeletedFrom = append(res.DeletedFrom, st.Name)
		res.Erased[st.Name] = st.Erased
	}
	res.Errors = append(res.Errors, errs...)
	res.Success = req.Status == StatusCompleted
	if req.Status.Open() && !req.NotBefore.IsZero() && s.clock().Before(req.NotBefore) {
		res.NotBefore = req.NotBefore
	}
	return res
}

// run executes req's remaining steps under a claim; see Erase. With
// wait, it waits while another worker runs the request and then carries
// on from where that one left it (usually: returns the completed
// result); without, it fails with ErrRequestClaimed. Both engines that
// drive requests forward (ResumePending here, the job runners elsewhere)
// come through run, so the grace period, cancellation and fencing hold
// for each.
func (s *Service) run(ctx context.Context, req Request, wait bool) (DeletionResult, error) {
	switch req.Status {
	case StatusCompleted:
		return s.result(req, nil), nil
	case StatusCancelled:
		return s.result(req, nil), fmt.Errorf("privacy: erase: %w: request %q", ErrCancelled, req.ID)
	}
	ctx, obs := s.tel.startErasure(ctx, req)
	res, err := s.runObserved(ctx, req, wait)
	obs.end(ctx, res, err)
	return res, err
}

// runObserved is run inside the run's span.
func (s *Service) runObserved(ctx context.Context, req Request, wait bool) (DeletionResult, error) {
	userID := req.UserID
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
	switch req.Status {
	case StatusCompleted:
		return s.result(req, nil), nil
	case StatusCancelled:
		return s.result(req, nil), fmt.Errorf("privacy: erase: %w: request %q", ErrCancelled, req.ID)
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
			res := s.result(req, []StepError{{Step: holdStepName, Code: CodeLegalHold, Message: redact("legal hold: "+reason, userID), Err: ErrLegalHold}})
			if err := s.logDeletion(ctx, req, "held", nil); err != nil {
				res.Errors = append(res.Errors, s.stepError(auditStepName, CodeAuditFailed, 1, err, userID))
			}
			return res, fmt.Errorf("%w: request %q", ErrLegalHold, req.ID)
		}
	}
	if now := s.clock(); !req.NotBefore.IsZero() && now.Before(req.NotBefore) {
		return s.result(req, nil), fmt.Errorf("privacy: erase: %w: request %q until %s", ErrScheduled, req.ID, req.NotBefore.Format(time.RFC3339))
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
	failed := false
	failedPhase := 0
	// obs observes the step under way (telemetry.go): ended when the
	// next one starts, after the last, or when the run returns.
	var obs *erasureStep
	defer func() { obs.end(ctx, &req, errs) }()
	for i := 0; i < len(req.Steps); i++ {
		obs.end(ctx, &req, errs)
		st := req.Steps[i]
		if st.Status == StepDone || st.Kind == StepAudit {
			continue
		}
		if failed && st.Kind.phase() > failedPhase {
			errs = append(errs, StepError{Step: st.Name, Code: CodeNotAttempted, Message: "not attempted: an earlier step failed"})
			continue
		}
		var stepCtx context.Context
		stepCtx, obs = s.tel.startStep(ctx, st, obs)
		ctx := stepCtx
		if st.Kind == StepIdentity && st.Name == s.idpName && st.Outcome != outcomeFound {
			// Learn first whether the provider knows the user, and
			// record it before deleting: a run resumed after a crash
			// that followed the delete then knows the account was there.
			found, attempts, err := s.probeIdentity(ctx, userID)
			if err == nil {
				attempts-- // Attempts counts the deletes, and the reads that failed
			}
			if ctx.Err() != nil {
				return s.result(req, errs), fmt.Errorf("privacy: erase: interrupted: %w", context.Cause(ctx))
			}
			if err == nil {
				now := s.clock()
				if cerr := s.checkpoint(ctx, &req, c, func(r *Request) error {
					if p := r.Step(st.Name); p != nil && p.Status != StepDone {
						p.Attempts += attempts
						p.UpdatedAt = now
						if found {
							p.Outcome = outcomeFound
						} else {
							p.Status, p.Error, p.Erased, p.Outcome = StepDone, "", 0, StepOutcomeNotFound
						}
					}
					return nil
				}); cerr != nil {
					return fail(cerr)
				}
				if !found {
					continue
				}
				st = *req.Step(st.Name)
			} else {
				now := s.clock()
				if cerr := s.checkpoint(ctx, &req, c, func(r *Request) error {
					if p := r.Step(st.Name); p != nil && p.Status != StepDone {
						p.Attempts += attempts
						p.UpdatedAt = now
						p.Status, p.Error = StepFailed, redact(err.Error(), userID)
					}
					return nil
				}); cerr != nil {
					return fail(cerr)
				}
				errs = append(errs, s.stepError(st.Name, CodeIdentityFailed, attempts, err, userID))
				if !failed {
					failed, failedPhase = true, st.Kind.phase()
				}
				continue
			}
		}
		out, attempts, err := s.runStep(ctx, req, st)
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
			for name, n := range out.perStore { // the final pass counts into each store
				if q := r.Step(name); q != nil && q.Kind == StepStore {
					q.Erased += n
				}
			}
			switch {
			case err == nil && st.Kind == StepFinal:
				p.Status, p.Error, p.Erased = StepDone, "", p.Erased+out.erased
			case err == nil && st.Kind == StepIdentity:
				p.Status, p.Error, p.Erased, p.Outcome = StepDone, "", max(p.Erased, out.erased), ""
			case err == nil:
				p.Status, p.Error, p.Erased, p.Outcome = StepDone, "", max(p.Erased, out.erased), cmp.Or(out.outcome, p.Outcome)
			case p.Status != StepDone:
				p.Status, p.Error = StepFailed, redact(err.Error(), userID)
			}
			return nil
		}); cerr != nil {
			return fail(cerr)
		}
		if err != nil {
			code := stepCode(st.Kind)
			if errors.Is(err, errNotRegistered) {
				code = CodeNotRegistered
			} else if st.Kind == StepFence {
				code = CodeAuditFailed
			}
			errs = append(errs, s.stepError(st.Name, code, attempts, err, userID))
			if !failed {
				failed, failedPhase = true, st.Kind.phase()
			}
		}
	}
	obs.end(ctx, &req, errs)

	if failed {
		if err := s.checkpoint(ctx, &req, c, func(r *Request) error {
			r.Status = StatusPartial
			return nil
		}); err != nil {
			return fail(err)
		}
		failedNames := make([]any, 0, len(errs))
		for _, e := range errs {
			failedNames = append(failedNames, e.Step)
		}
		if err := s.logDeletion(ctx, req, "partial", map[string]any{"failed": failedNames}); err != nil {
			errs = append(errs, s.stepError(auditStepName, CodeAuditFailed, 1, err, userID))
		}
		return s.result(req, errs), fmt.Errorf("%w: request %q: %d step(s) not done", ErrPartialDeletion, req.ID, len(errs))
	}

	// Every erasure step is done: record the outcome, then complete.
	attempts := 0
	var auditErr error
	if st := req.Step(auditStepName); st != nil && st.Status != StepDone {
		actx := ctx
		actx, obs = s.tel.startStep(ctx, *st, obs)
		_, auditErr = backoff.Retry(actx, func() (struct{}, error) {
			attempts++
			return struct{}{}, s.logDeletionOnce(actx, req, "completed")
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
		r.Status, r.CompletedAt, r.Reason = StatusCompleted, now, ""
		s.pseudonymize(r)
		return nil
	}); err != nil {
		return fail(err)
	}
	if auditErr != nil {
		errs = append(errs, s.stepError(auditStepName, CodeAuditFailed, attempts, auditErr, userID))
		return s.result(req, errs), fmt.Errorf("%w: request %q: audit record not written", ErrPartialDeletion, req.ID)
	}
	return s.result(req, errs), nil
}

// stepError builds a StepError whose message and chain never name the
// user.
func (s *Service) stepError(step, code string, attempts int, err error, userID string) StepError {
	return StepError{Step: step, Code: code, Message: redact(err.Error(), userID), Attempts: attempts, Err: redactErr(err, userID)}
}

// outcomeFound is the Outcome of an identity step whose user the
// provider knew, recorded before the delete.
const outcomeFound = "found"

// probeIdentity asks the provider whether it knows userID, with the
// step's retries.
func (s *Service) probeIdentity(ctx context.Context, userID string) (found bool, attempts int, err error) {
	found, err = backoff.Retry(ctx, func() (bool, error) {
		attempts++
		err := guard("the identity provider's GetUser", func() error { _, err := s.idp.GetUser(ctx, userID); return err })
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, steward.ErrUserNotFound):
			return false, nil
		case isPermanent(err), deferredThrottle(ctx, err):
			return false, backoff.Permanent(err)
		}
		return false, err
	}, s.retryOptions()...)
	return found, attempts, err
}

// replayPrefix starts the Outcome of the fence step of a request made by
// Replay; the rest is the ID of the request that erased the user before.
const replayPrefix = "replay_of:"

// stepOutput is what one step did.
type stepOutput struct {
	erased   int
	outcome  string
	perStore map[string]int // the final pass: what it found in each store
}

// runStep runs one erasure step with retries and returns what it did and
// how many calls it made.
func (s *Service) runStep(ctx context.Context, req Request, st Step) (stepOutput, int, error) {
	attempts := 0
	var out stepOutput
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := guard("step "+strconv.Quote(st.Name), func() error { return s.doStep(ctx, req, st, &out) })
		if err != nil && (isPermanent(err) || deferredThrottle(ctx, err)) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, s.retryOptions()...)
	return out, attempts, err
}

// errNotRegistered reports a step whose store or service is gone.
var errNotRegistered = errors.New("not registered with the Service")

func (s *Service) doStep(ctx context.Context, req Request, st Step, out *stepOutput) error {
	userID := req.UserID
	switch st.Kind {
	case StepFence:
		return s.openFence(ctx, req, out)
	case StepStore:
		ds := s.storeByName[st.Name]
		if ds == nil {
			return backoff.Permanent(fmt.Errorf("store %q: %w", st.Name, errNotRegistered))
		}
		er, err := ds.Erase(ctx, userID)
		out.erased = er.Count
		return err
	case StepExports:
		n, err := s.closeExports(ctx, userID, "the user's erasure began")
		out.erased += n
		return err
	case StepIdentity:
		if st.Name != s.idpName {
			return backoff.Permanent(fmt.Errorf("identity provider %q: %w", st.Name, errNotRegistered))
		}
		// probeIdentity found the user (outcomeFound is checkpointed):
		// a 404 now means an earlier run deleted it.
		if err := s.idp.DeleteUser(ctx, userID); err != nil {
			return err
		}
		out.erased, out.outcome = 1, ""
		return nil
	case StepExternal:
		e := s.externalByName[st.Name]
		if e == nil {
			return backoff.Permanent(fmt.Errorf("external service %q: %w", st.Name, errNotRegistered))
		}
		return e.Erase(ctx, userID)
	case StepFinal:
		return s.finalPass(ctx, userID, out)
	case StepLedger:
		return s.ledger.RecordErased(ctx, LedgerEntry{
			Subject: s.pseudo.Pseudonym(userID), KeyID: s.pseudo.KeyID(), RequestID: req.ID, ErasedAt: s.clock(),
		})
	}
	return backoff.Permanent(fmt.Errorf("step %q: unknown kind %q", st.Name, st.Kind))
}

// openFence writes the audit record that the erasure starts (when it
// cannot be written nothing is erased), locks the account at the
// provider where it can be (out.erased is 1 when it did) and invalidates
// cached roles. From the request's creation (or the end of its grace
// period) CheckFence already refuses the user; this step adds what the
// provider and the caches can do.
func (s *Service) openFence(ctx context.Context, req Request, out *stepOutput) error {
	if err := s.logDeletionID(ctx, audit.EventID("privacy/erasure/"+req.ID+"/started"), req, "started", nil); err != nil {
		return err
	}
	userID := req.UserID
	s.invalidate(userID)
	if st := req.Step(s.idpName); st != nil && st.Status == StepDone {
		return nil // the account is gone already
	}
	if mod, ok := s.idp.(steward.Moderator); ok {
		if err := mod.Lock(ctx, userID); err == nil {
			out.erased = 1
		}
		// A provider that cannot lock now leaves the fence to Steward:
		// sessions and writes are refused from the request store.
	}
	s.invalidate(userID)
	return nil
}

// finalPass erases every DataStore and the user's exports once more.
func (s *Service) finalPass(ctx context.Context, userID string, out *stepOutput) error {
	if out.perStore == nil {
		out.perStore = map[string]int{}
	}
	var errs []error
	for _, ds := range s.stores {
		er, err := ds.Erase(ctx, userID)
		if err != nil {
			errs = append(errs, fmt.Errorf("store %q: %w", ds.Name(), err))
			continue
		}
		out.perStore[ds.Name()] += er.Count
		out.erased += er.Count
	}
	if s.blobs != nil {
		if _, err := s.closeExports(ctx, userID, "the user's erasure began"); err != nil {
			errs = append(errs, fmt.Errorf("exports: %w", err))
		}
	}
	return errors.Join(errs...)
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
		if st.Status != StepDone || !reported(st) {
			continue
		}
		if st.Kind == StepIdentity && st.Outcome == StepOutcomeNotFound {
			erased[st.Name] = 0
			continue
		}
		deleted = append(deleted, st.Name)
		erased[st.Name] = st.Erased
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
	for _, st := range req.Steps {
		switch {
		case st.Kind == StepIdentity && st.Outcome != "":
			details["identity"] = st.Outcome
		case st.Kind == StepFinal && st.Status == StepDone:
			details["finalPass"] = st.Erased
		}
	}
	if st := req.Step(fenceStepName); st != nil {
		if rest, ok := strings.CutPrefix(st.Outcome, replayPrefix); ok {
			details["replayOf"] = rest
		}
	}
	for k, v := range extra {
		details[k] = v
	}
	return s.logEventID(ctx, id, audit.DataDeletion, req.UserID, req.Actor, details)
}
