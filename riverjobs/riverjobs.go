package riverjobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/privacy"
)

// Queue is the River queue every Steward job is inserted into. Give it
// workers with Queues (or your own river.QueueConfig under this name).
const Queue = "steward"

// Job kinds. They are stored in River's job rows, so they never change.
const (
	KindErasure      = "steward.erasure"
	KindExport       = "steward.export"
	KindRequests     = "steward." + string(background.Requests)
	KindConsentSync  = "steward." + string(background.ConsentSync)
	KindRetention    = "steward." + string(background.Retention)
	KindAuditForward = "steward." + string(background.AuditForward)
	KindExportExpiry = "steward." + string(background.ExportExpiry)
)

// Attempt limits of request jobs. With River's default retry policy
// (about attempt⁴ seconds between attempts) an erasure job gives up
// after about 11 hours and an export job after about 4, well inside the
// month GDPR allows (45 days for CCPA); the Requests sweep then enqueues
// the request again if it is still open, and a request that keeps
// failing is listed by privacy.Service.NeedsAttention from its first
// failed attempt. A job snoozed on a rate limit or on another worker's
// claim does not use an attempt.
const (
	ErasureMaxAttempts = 12
	ExportMaxAttempts  = 10
	// SweepMaxAttempts is the limit of the periodic jobs: a failed sweep
	// is not retried, since the next period runs it again.
	SweepMaxAttempts = 1
)

// Default time limits of request jobs (River's default is one minute).
// Keep the River client's RescueStuckJobsAfter (default one hour) above
// them.
const (
	DefaultErasureTimeout = 10 * time.Minute
	DefaultExportTimeout  = 30 * time.Minute
	// DefaultMaxWorkers is how many Steward jobs one client works at once.
	DefaultMaxWorkers = 10
)

// ErasureArgs are the arguments of an erasure job: the request's ID only,
// never the user's ID, email or token (River keeps job rows and their
// errors for days).
type ErasureArgs struct {
	RequestID string `json:"request_id"`
}

// Kind implements river.JobArgs.
func (ErasureArgs) Kind() string { return KindErasure }

// InsertOpts implements river.JobArgsWithInsertOpts: the Steward queue,
// ErasureMaxAttempts, one job per request ID.
func (ErasureArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: ErasureMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ExportArgs are the arguments of a queued export's job: its request ID.
type ExportArgs struct {
	RequestID string `json:"request_id"`
}

// Kind implements river.JobArgs.
func (ExportArgs) Kind() string { return KindExport }

// InsertOpts implements river.JobArgsWithInsertOpts: the Steward queue,
// ExportMaxAttempts, one job per request ID.
func (ExportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: ExportMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RequestsArgs are the arguments of the periodic sweep that enqueues a
// job for every request left pending or partial (privacy.Service.Resumable).
type RequestsArgs struct{}

// Kind implements river.JobArgs.
func (RequestsArgs) Kind() string { return KindRequests }

// ConsentSyncArgs are the arguments of the periodic consent sync.
type ConsentSyncArgs struct{}

// Kind implements river.JobArgs.
func (ConsentSyncArgs) Kind() string { return KindConsentSync }

// RetentionArgs are the arguments of the periodic retention sweep.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return KindRetention }

// AuditForwardArgs are the arguments of the periodic forwarding of the
// audit chain to one destination, named as its audit.Forwarder is.
type AuditForwardArgs struct {
	Destination string `json:"destination"`
}

// Kind implements river.JobArgs.
func (AuditForwardArgs) Kind() string { return KindAuditForward }

// ExportExpiryArgs are the arguments of the periodic expiry of finished
// exports.
type ExportExpiryArgs struct{}

// Kind implements river.JobArgs.
func (ExportExpiryArgs) Kind() string { return KindExportExpiry }

// requestArgs returns the job arguments of request r, or nil for a kind
// that has no job.
func requestArgs(r privacy.Request) river.JobArgs {
	switch r.Kind {
	case privacy.KindErasure:
		return ErasureArgs{RequestID: r.ID}
	case privacy.KindExport:
		return ExportArgs{RequestID: r.ID}
	}
	return nil
}

// inserter is a River client with no pool and no workers: it only
// inserts jobs in a caller's transaction (River's insert-only client).
// It holds no configuration, so one serves every caller.
var inserter = sync.OnceValues(func() (*river.Client[*sql.Tx], error) {
	return river.NewClient(riverdatabasesql.New(nil), &river.Config{})
})

// EnqueueTx inserts the job of request r (an erasure or a queued export)
// in tx, the transaction that creates r's row; requests of other kinds
// get no job. Give it to sqlstore's Requests so that every request is
// created with its job, or neither is:
//
//	requests := store.Requests().OnCreate(riverjobs.EnqueueTx)
//	svc, err := privacy.NewService(idp, privacy.WithRequestStore(requests), ...)
//
// The job carries only r's ID. A second job for a request whose job is
// still live (or completed) is not inserted: River's unique jobs, by
// arguments. River's tables must be reachable through tx's search_path.
func EnqueueTx(ctx context.Context, tx *sql.Tx, r privacy.Request) error {
	args := requestArgs(r)
	if args == nil {
		return nil
	}
	c, err := inserter()
	if err != nil {
		return fmt.Errorf("riverjobs: %w", err)
	}
	if _, err := c.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("riverjobs: enqueueing the job of request %q: %w", r.ID, err)
	}
	return nil
}

// Migrate brings River's tables in db (PostgreSQL, River's tables in the
// search_path's schema) up to the version this River release needs. It
// is idempotent; run it next to sqlstore's Store.Migrate, or run River's
// own migrations (the river CLI, rivermigrate) instead.
func Migrate(ctx context.Context, db *sql.DB) error {
	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return fmt.Errorf("riverjobs: migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("riverjobs: migrate: %w", err)
	}
	return nil
}

// ErrInvalidConfig is matched by the errors of New for a bad argument or
// option; the message names it.
var ErrInvalidConfig = errors.New("riverjobs: invalid configuration")

// Option configures Jobs.
type Option func(*Jobs) error

// WithErasureTimeout bounds one run of an erasure job (default
// DefaultErasureTimeout).
func WithErasureTimeout(d time.Duration) Option {
	return func(j *Jobs) error {
		if d < time.Second {
			return fmt.Errorf("%w: WithErasureTimeout: %v is under a second", ErrInvalidConfig, d)
		}
		j.erasureTimeout = d
		return nil
	}
}

// WithExportTimeout bounds one run of an export job (default
// DefaultExportTimeout).
func WithExportTimeout(d time.Duration) Option {
	return func(j *Jobs) error {
		if d < time.Second {
			return fmt.Errorf("%w: WithExportTimeout: %v is under a second", ErrInvalidConfig, d)
		}
		j.exportTimeout = d
		return nil
	}
}

// WithMaxWorkers sets how many Steward jobs a client works at once, in
// the queue config of Queues (default DefaultMaxWorkers).
func WithMaxWorkers(n int) Option {
	return func(j *Jobs) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxWorkers: %d is less than 1", ErrInvalidConfig, n)
		}
		j.maxWorkers = n
		return nil
	}
}

// Jobs runs a background.Runner's duties as River jobs. Register them on
// the River client of your application:
//
//	jobs, err := riverjobs.New(runner, db)
//	workers := river.NewWorkers()
//	err = jobs.AddWorkers(workers)
//	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Workers:      workers,
//		Queues:       jobs.Queues(),
//		PeriodicJobs: jobs.PeriodicJobs(),
//	})
type Jobs struct {
	runner         *background.Runner
	db             *sql.DB
	client         *river.Client[*sql.Tx]
	erasureTimeout time.Duration
	exportTimeout  time.Duration
	maxWorkers     int
	tasks          map[string]background.Task
}

// New returns the River jobs of runner's duties. db is the PostgreSQL
// database holding River's tables (the application's, which also holds
// Steward's); the Requests sweep enqueues jobs through it. New makes no
// query. It fails, wrapping ErrInvalidConfig, on a nil runner or db, a
// bad option, or a task interval under one second (River's periodic
// jobs need at least that).
func New(runner *background.Runner, db *sql.DB, opts ...Option) (*Jobs, error) {
	if runner == nil {
		return nil, fmt.Errorf("%w: nil runner", ErrInvalidConfig)
	}
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidConfig)
	}
	j := &Jobs{runner: runner, db: db, erasureTimeout: DefaultErasureTimeout, exportTimeout: DefaultExportTimeout,
		maxWorkers: DefaultMaxWorkers, tasks: map[string]background.Task{}}
	for _, o := range opts {
		if err := o(j); err != nil {
			return nil, err
		}
	}
	for _, t := range runner.Tasks() {
		if t.Every < time.Second {
			return nil, fmt.Errorf("%w: task %s runs every %v; River's periodic jobs need at least a second", ErrInvalidConfig, t.Name, t.Every)
		}
		j.tasks[t.Name] = t
	}
	c, err := river.NewClient(riverdatabasesql.New(db), &river.Config{})
	if err != nil {
		return nil, fmt.Errorf("riverjobs: %w", err)
	}
	j.client = c
	return j, nil
}

// Queues returns the queue config of the Steward queue, to merge into
// river.Config.Queues.
func (j *Jobs) Queues() map[string]river.QueueConfig {
	return map[string]river.QueueConfig{Queue: {MaxWorkers: j.maxWorkers}}
}

// AddWorkers registers a worker for every Steward job kind on workers,
// the Workers bundle of your River client: erasure and export jobs when
// the runner has a privacy.Service, and one kind per periodic duty. It
// fails when one of the kinds is registered already.
func (j *Jobs) AddWorkers(workers *river.Workers) error {
	if workers == nil {
		return fmt.Errorf("%w: AddWorkers: nil workers", ErrInvalidConfig)
	}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if svc := j.runner.Privacy(); svc != nil {
		add(river.AddWorkerSafely(workers, &requestWorker[ErasureArgs]{j: j, svc: svc, timeout: j.erasureTimeout}))
		add(river.AddWorkerSafely(workers, &requestWorker[ExportArgs]{j: j, svc: svc, timeout: j.exportTimeout}))
		add(river.AddWorkerSafely(workers, &sweepWorker{j: j, svc: svc, task: j.tasks[string(background.Requests)]}))
	}
	if t, ok := j.tasks[string(background.ConsentSync)]; ok {
		add(river.AddWorkerSafely(workers, &taskWorker[ConsentSyncArgs]{j: j, task: t}))
	}
	if t, ok := j.tasks[string(background.Retention)]; ok {
		add(river.AddWorkerSafely(workers, &taskWorker[RetentionArgs]{j: j, task: t}))
	}
	if t, ok := j.tasks[string(background.ExportExpiry)]; ok {
		add(river.AddWorkerSafely(workers, &taskWorker[ExportExpiryArgs]{j: j, task: t}))
	}
	if j.hasDuty(background.AuditForward) {
		add(river.AddWorkerSafely(workers, &forwardWorker{j: j}))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("riverjobs: AddWorkers: %w", err)
	}
	return nil
}

func (j *Jobs) hasDuty(d background.Duty) bool {
	for _, t := range j.tasks {
		if t.Duty == d {
			return true
		}
	}
	return false
}

// PeriodicJobs returns a periodic job per task of the runner, for
// river.Config.PeriodicJobs: River's elected leader inserts each at its
// task's interval, also once when it starts (RunOnStart), and each is
// unique per period (UniqueOpts.ByPeriod), so however many clients run
// and however often the leader changes, a sweep runs once per period.
func (j *Jobs) PeriodicJobs() []*river.PeriodicJob {
	var out []*river.PeriodicJob
	for _, t := range j.runner.Tasks() {
		var args river.JobArgs
		switch t.Duty {
		case background.Requests:
			args = RequestsArgs{}
		case background.ConsentSync:
			args = ConsentSyncArgs{}
		case background.Retention:
			args = RetentionArgs{}
		case background.AuditForward:
			args = AuditForwardArgs{Destination: t.Name[len(background.AuditForward)+1:]}
		case background.ExportExpiry:
			args = ExportExpiryArgs{}
		default:
			continue
		}
		opts := &river.InsertOpts{Queue: Queue, MaxAttempts: SweepMaxAttempts,
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: t.Every}}
		out = append(out, river.NewPeriodicJob(river.PeriodicInterval(t.Every),
			func() (river.JobArgs, *river.InsertOpts) { return args, opts },
			&river.PeriodicJobOpts{ID: "steward." + t.Name, RunOnStart: true}))
	}
	return out
}

// Enqueue inserts the job of request id if it has none live, outside any
// transaction; the Requests sweep does this for every resumable request.
// It fails with an error wrapping privacy.ErrRequestNotFound for an
// unknown ID, and with ErrInvalidConfig without a privacy.Service.
func (j *Jobs) Enqueue(ctx context.Context, id string) error {
	svc := j.runner.Privacy()
	if svc == nil {
		return fmt.Errorf("%w: the runner has no privacy.Service", ErrInvalidConfig)
	}
	r, err := svc.Request(ctx, id)
	if err != nil {
		return fmt.Errorf("riverjobs: enqueue: %w", err)
	}
	return j.enqueue(ctx, []privacy.Request{r})
}

// enqueue inserts the jobs of reqs in one transaction.
func (j *Jobs) enqueue(ctx context.Context, reqs []privacy.Request) error {
	var params []river.InsertManyParams
	for _, r := range reqs {
		if args := requestArgs(r); args != nil {
			params = append(params, river.InsertManyParams{Args: args})
		}
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := j.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("riverjobs: enqueueing %d request jobs: %w", len(params), err)
	}
	return nil
}
