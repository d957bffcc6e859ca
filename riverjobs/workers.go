package riverjobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/privacy"
)

// requestArgsType is ErasureArgs or ExportArgs.
type requestArgsType interface {
	river.JobArgs
	ErasureArgs | ExportArgs
}

func requestID[T requestArgsType](args T) string {
	switch a := any(args).(type) {
	case ErasureArgs:
		return a.RequestID
	case ExportArgs:
		return a.RequestID
	}
	return ""
}

// claimSlack is added to a snooze on another worker's claim, so the job
// wakes after the claim has lapsed by the database's clock too.
const claimSlack = time.Second

// requestWorker drives one request per job with privacy.Service.Drive and
// turns its outcome into River's: done completes the job, a legal hold
// or a failure that needs a person cancels it, another worker's claim
// and a rate limit with Retry-After snooze it (no attempt used), other
// failures use an attempt and River's backoff. On its last attempt it
// flags the request for review, so a discarded job is always listed by
// privacy.Service.NeedsAttention.
type requestWorker[T requestArgsType] struct {
	river.WorkerDefaults[T]
	j       *Jobs
	svc     *privacy.Service
	timeout time.Duration
}

func (w *requestWorker[T]) Timeout(*river.Job[T]) time.Duration { return w.timeout }

func (w *requestWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	id := requestID(job.Args)
	// A rate limit snoozes the job for its Retry-After (below) rather
	// than keep this worker asleep in the provider's retries.
	res, err := w.svc.Drive(privacy.DeferRateLimits(ctx), id)
	switch {
	case errors.Is(err, privacy.ErrRequestNotFound), errors.Is(err, privacy.ErrInvalidRequest) && res.Outcome == "":
		return river.JobCancel(err)
	case res.Outcome == privacy.OutcomeDone:
		return nil
	case res.Outcome == privacy.OutcomeHeld:
		return river.JobCancel(err)
	case res.Outcome == privacy.OutcomeNeedsAttention:
		w.j.runner.Report(background.Requests, err)
		return river.JobCancel(err)
	case res.Outcome == privacy.OutcomeClaimed:
		return river.JobSnooze(res.RetryAfter + claimSlack)
	case res.Outcome == privacy.OutcomeRetry && res.RetryAfter > 0:
		return river.JobSnooze(res.RetryAfter)
	}
	if err == nil {
		err = fmt.Errorf("riverjobs: request %q: outcome %q", id, res.Outcome)
	}
	if job.Attempt >= job.MaxAttempts {
		why := fmt.Sprintf("%s job discarded after %d attempts", job.Kind, job.Attempt)
		if merr := w.svc.MarkForReview(context.WithoutCancel(ctx), id, why); merr != nil {
			err = errors.Join(err, merr)
		}
		w.j.runner.Report(background.Requests, err)
	}
	return err
}

// sweepWorker is the periodic Requests duty on River: it enqueues a job
// for every request a worker should pick up (privacy.Service.Resumable),
// each unique by request ID, so requests whose process died, whose job
// was discarded, or that were created without a job are driven again.
type sweepWorker struct {
	river.WorkerDefaults[RequestsArgs]
	j    *Jobs
	svc  *privacy.Service
	task background.Task
}

func (w *sweepWorker) Timeout(*river.Job[RequestsArgs]) time.Duration { return w.task.Timeout }

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[RequestsArgs]) error {
	reqs, err := w.svc.Resumable(ctx)
	if err == nil {
		err = w.j.enqueue(ctx, reqs)
	}
	w.j.runner.Report(background.Requests, err)
	return err
}

// taskWorker runs one pass of a periodic task, the same Task.Do the
// embedded engine runs.
type taskWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	j    *Jobs
	task background.Task
}

func (w *taskWorker[T]) Timeout(*river.Job[T]) time.Duration { return w.task.Timeout }

func (w *taskWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error {
	_, err := w.task.Do(ctx)
	w.j.runner.Report(w.task.Duty, err)
	return err
}

// forwardWorker runs one pass of the forwarder its job names.
type forwardWorker struct {
	river.WorkerDefaults[AuditForwardArgs]
	j *Jobs
}

func (w *forwardWorker) Timeout(job *river.Job[AuditForwardArgs]) time.Duration {
	return w.j.runner.Timeout(background.AuditForward)
}

func (w *forwardWorker) Work(ctx context.Context, job *river.Job[AuditForwardArgs]) error {
	t, ok := w.j.tasks[string(background.AuditForward)+"/"+job.Args.Destination]
	if !ok {
		return river.JobCancel(fmt.Errorf("riverjobs: no audit forwarder to %q", job.Args.Destination))
	}
	_, err := t.Do(ctx)
	w.j.runner.Report(t.Duty, err)
	return err
}
