package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
)

// Outcome says what a call of Drive left a request at, and so what the
// job engine that called it should do next.
type Outcome string

// Outcomes of Drive. The values appear in logs and job errors, so they
// never change.
const (
	// OutcomeDone: the request is finished (completed, cancelled or
	// expired, by this call or before); nothing is left to do.
	OutcomeDone Outcome = "done"
	// OutcomeRetry: a step failed after its retries and may pass later.
	// Try again after DriveResult.RetryAfter when it is set (the identity
	// provider rate-limited the call and said when), else after the
	// engine's own backoff.
	OutcomeRetry Outcome = "retry"
	// OutcomeHeld: the user is under a legal hold and nothing was
	// erased. Stop: the request waits for a later Erase or Resume.
	OutcomeHeld Outcome = "held"
	// OutcomeClaimed: another worker is running the request. Look again
	// after DriveResult.RetryAfter, when that worker's claim would lapse
	// if it died; by then it has usually completed the request.
	OutcomeClaimed Outcome = "claimed"
	// OutcomeNeedsAttention: a step failed in a way retrying cannot fix
	// (a store that is no longer registered, an invalid user ID). The
	// request is partial and listed by NeedsAttention for a person.
	OutcomeNeedsAttention Outcome = "needs_attention"
	// OutcomeScheduled: the erasure is in its grace period (see
	// WithGracePeriod) and nothing destructive may run yet. Drive it
	// again after DriveResult.RetryAfter, when the period ends.
	OutcomeScheduled Outcome = "scheduled"
)

// DriveResult is the outcome of one Drive call.
type DriveResult struct {
	Outcome Outcome
	// Kind and Status are the request's after the call.
	Kind   Kind
	Status Status
	// RetryAfter is how long to wait before driving the request again,
	// for OutcomeRetry (0: the engine's backoff) and OutcomeClaimed.
	RetryAfter time.Duration
}

// Drive carries the request id forward as far as it can go now: it runs
// the remaining steps of an erasure, or writes a queued export, under a
// claim on the request (see RequestClaimer), and reports where that left
// the request. It never waits for another worker: a request claimed
// elsewhere comes back as OutcomeClaimed at once. Drive is idempotent and
// safe to call from any number of workers at any time, for any request,
// as often as an engine likes; it is the one code path every engine (the
// in-process ResumePending, and the River jobs of package riverjobs) uses
// to move a request.
//
// The error is the run's, as Erase and Resume return it (wrapping
// ErrPartialDeletion, ErrLegalHold, ErrClaimLost, ...), for logging; the
// result says what to do about it. Drive fails with an error wrapping
// ErrRequestNotFound for an unknown ID and ErrInvalidRequest for a
// request of an unknown kind, and with ctx's error when ctx ended mid-way
// (the request then stays pending, to be driven again). No error
// contains the user ID.
func (s *Service) Drive(ctx context.Context, id string) (DriveResult, error) {
	req, err := s.requests.Get(ctx, id)
	if err != nil {
		return DriveResult{}, fmt.Errorf("privacy: drive: %w", err)
	}
	res := DriveResult{Kind: req.Kind, Status: req.Status}
	if req.Status.Finished() {
		res.Outcome = OutcomeDone
		return res, nil
	}
	var runErr error
	var steps []StepError
	switch req.Kind {
	case KindErasure:
		var dr DeletionResult
		dr, runErr = s.run(ctx, req, false)
		steps = dr.Errors
	case KindExport:
		runErr = s.runExport(ctx, req, false)
	default:
		return res, fmt.Errorf("%w: request %q has unknown kind %q", ErrInvalidRequest, id, req.Kind)
	}
	if errors.Is(runErr, ErrScheduled) {
		res.Outcome = OutcomeScheduled
		if fresh, err := s.requests.Get(ctx, id); err == nil {
			res.Status = fresh.Status
			res.RetryAfter = max(fresh.NotBefore.Sub(s.clock()), 0)
		}
		return res, nil
	}
	if errors.Is(runErr, ErrRequestClaimed) || errors.Is(runErr, ErrClaimLost) {
		res.Outcome = OutcomeClaimed
		res.RetryAfter = s.claimTTL
		if fresh, err := s.requests.Get(ctx, id); err == nil {
			res.Status = fresh.Status
			if left := time.Until(fresh.ClaimExpires); fresh.ClaimedBy != "" && left > 0 {
				res.RetryAfter = left
			}
		}
		return res, runErr
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("privacy: drive: request %q: %w", id, context.Cause(ctx))
	}
	fresh, err := s.requests.Get(ctx, id)
	if err != nil {
		return res, errors.Join(runErr, fmt.Errorf("privacy: drive: %w", err))
	}
	res.Status = fresh.Status
	switch {
	case fresh.Status.Finished():
		res.Outcome = OutcomeDone
		return res, nil
	case fresh.Status == StatusHeld || errors.Is(runErr, ErrLegalHold):
		res.Outcome = OutcomeHeld
		return res, runErr
	}
	if runErr == nil {
		runErr = fmt.Errorf("privacy: %s request %q is still %s", fresh.Kind, id, fresh.Status)
	}
	res.Outcome = OutcomeRetry
	for _, st := range steps {
		if st.Err == nil {
			continue
		}
		if wait, ok := throttled(st.Err); ok {
			res.RetryAfter = max(res.RetryAfter, wait)
		}
		if unfixable(st.Err) {
			res.Outcome = OutcomeNeedsAttention
		}
	}
	if res.Outcome == OutcomeNeedsAttention {
		res.RetryAfter = 0
	}
	return res, runErr
}

// Throttler is implemented by errors of a rate-limited call that say when
// to call again (clerkadapter.APIError for Clerk's 429 with Retry-After).
// Drive reports the longest such wait among a run's failed steps as
// DriveResult.RetryAfter, so an engine can wait for it instead of
// counting a failed attempt.
type Throttler interface {
	// Throttled reports whether the call was refused for exceeding a
	// rate limit and, if so, how long the server asked to wait (0 when
	// it did not say).
	Throttled() (wait time.Duration, ok bool)
}

// DeferRateLimits returns a context under which a rate limit is not waited
// out: a step refused with a Throttler error is not retried within the
// run, and an identity provider that honours it (clerkadapter's Provider)
// returns Clerk's 429 at once instead of sleeping for its Retry-After.
// Drive then reports the wait as DriveResult.RetryAfter, so that a job
// engine reschedules the request (riverjobs snoozes its job) rather than
// hold a worker asleep. Without it, the default, the Service and the
// provider retry a rate-limited call themselves, as an in-process caller of
// Erase expects.
func DeferRateLimits(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferRateLimitsKey{}, true)
}

// RateLimitsDeferred reports whether ctx comes from DeferRateLimits: an
// identity provider called under it should return a rate-limit error (a
// Throttler) at once rather than wait for the limit to pass.
func RateLimitsDeferred(ctx context.Context) bool {
	v, _ := ctx.Value(deferRateLimitsKey{}).(bool)
	return v
}

type deferRateLimitsKey struct{}

// deferredThrottle reports whether err is a rate limit that ctx asks not
// to wait out within this run.
func deferredThrottle(ctx context.Context, err error) bool {
	if err == nil || !RateLimitsDeferred(ctx) {
		return false
	}
	_, ok := throttled(err)
	return ok
}

// throttled finds a Throttler in err's chain that reports a rate limit.
func throttled(err error) (time.Duration, bool) {
	var t Throttler
	if errors.As(err, &t) {
		return t.Throttled()
	}
	return 0, false
}

// unfixable reports step errors that no retry can fix.
func unfixable(err error) bool {
	if errors.Is(err, errNotRegistered) || errors.Is(err, ErrInvalidRequest) || isPermanent(err) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// Resumable returns the requests a worker should drive now: the partial
// ones, and the pending ones left untouched for WithResumeAfter (their
// process died, or their Erase call gave up) whose grace period, if any,
// is over. ResumePending drives each of them; a job engine enqueues a job
// per request. Held and finished requests are not included.
func (s *Service) Resumable(ctx context.Context) ([]Request, error) {
	now := s.clock()
	stale := now.Add(-s.resumeAfter)
	var out []Request
	// Collect first: running steps while a store's cursor is open could
	// deadlock a single-connection database.
	for r, err := range s.requests.List(ctx, RequestFilter{Statuses: []Status{StatusPending, StatusPartial}}) {
		if err != nil {
			return nil, fmt.Errorf("privacy: listing resumable requests: %w", err)
		}
		if r.Status == StatusPending && !r.UpdatedAt.Before(stale) && s.resumeAfter > 0 {
			continue
		}
		if !r.NotBefore.IsZero() && now.Before(r.NotBefore) {
			continue // in its grace period
		}
		out = append(out, r)
	}
	return out, nil
}

// QueueErasure records an erasure request for userID, to be run by a
// background worker (Drive), and returns its ID at once; Erase records
// one and runs it. If the user already has an open erasure request, its
// ID is returned and opts are ignored. With a RequestStore that enqueues
// a job in the transaction that creates the request (see package
// riverjobs), the request and its job exist together or not at all.
//
// Errors wrap steward.ErrInvalidUserID, ErrInvalidRequest (a bad option)
// or the RequestStore's error; none contains the user ID.
func (s *Service) QueueErasure(ctx context.Context, userID string, opts ...EraseOption) (string, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return "", fmt.Errorf("privacy: queue erasure: %w", err)
	}
	cfg := eraseConfig{regime: s.regime, actor: actorFrom(ctx)}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.regime.Validate(); err != nil {
		return "", fmt.Errorf("privacy: queue erasure: %w", err)
	}
	req, err := s.openOrCreate(ctx, userID, cfg)
	if err != nil {
		return "", redactErr(fmt.Errorf("privacy: queue erasure: %w", err), userID)
	}
	return req.ID, nil
}

// MarkForReview flags an open request that a job engine gave up on (its
// job ran out of attempts) so that NeedsAttention lists it: a pending
// request becomes partial, with why as its Reason. why must not contain
// personal data. Partial, held and completed requests are left as they
// are. Errors wrap ErrRequestNotFound or the RequestStore's error.
func (s *Service) MarkForReview(ctx context.Context, id, why string) error {
	req, err := s.requests.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("privacy: mark for review: %w", err)
	}
	if req.Status != StatusPending {
		return nil
	}
	err = s.checkpoint(ctx, &req, nil, func(r *Request) error {
		if r.Status == StatusPending {
			r.Status, r.Reason = StatusPartial, why
		}
		return nil
	})
	if errors.Is(err, errAlreadyCompleted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("privacy: mark for review: request %q: %w", id, err)
	}
	return nil
}
