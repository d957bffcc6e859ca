package background

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

// Duty names one kind of background work. The values appear in logs, in
// River job kinds and in periodic job IDs, so they never change.
type Duty string

// The duties a Runner can own.
const (
	// Requests resumes pending and partial erasures and queued exports
	// (privacy.Service.ResumePending, which drives each request with
	// privacy.Service.Drive).
	Requests Duty = "requests"
	// ConsentSync mirrors consent changes to the identity provider
	// (consent.Manager.SyncPending).
	ConsentSync Duty = "consent_sync"
	// Retention runs the retention policies: purges and the inactive-user
	// lifecycle (retention.Engine.Run).
	Retention Duty = "retention"
	// AuditForward sends the stored audit chain to remote sinks
	// (audit.Forwarder.Forward), one task per Forwarder.
	AuditForward Duty = "audit_forward"
	// ExportExpiry deletes finished exports past their expiry
	// (ExportExpirer.ExpireExports).
	ExportExpiry Duty = "export_expiry"
)

// Default intervals between passes, per duty.
const (
	DefaultRequestsInterval     = time.Minute
	DefaultConsentSyncInterval  = 30 * time.Second
	DefaultRetentionInterval    = time.Hour
	DefaultAuditForwardInterval = 5 * time.Second
	DefaultExportExpiryInterval = time.Hour
)

// Default time limits of one pass (and, for riverjobs, of one job), per
// duty. Erasures and exports also have per-request limits in riverjobs.
const (
	DefaultRequestsTimeout     = 10 * time.Minute
	DefaultConsentSyncTimeout  = 5 * time.Minute
	DefaultRetentionTimeout    = 30 * time.Minute
	DefaultAuditForwardTimeout = 2 * time.Minute
	DefaultExportExpiryTimeout = 10 * time.Minute
)

// ExportExpirer deletes finished exports whose time is up, and returns
// how many it deleted. The Runner uses the privacy.Service given to
// WithPrivacy when it has this method, unless WithExportExpiry names
// another.
type ExportExpirer interface {
	ExpireExports(ctx context.Context) (int, error)
}

// ErrInvalidConfig is matched by the errors of New for a bad option; the
// message names it.
var ErrInvalidConfig = errors.New("background: invalid configuration")

// Task is one duty as the Runner does it: one pass of Do every Every,
// each pass bounded by Timeout. Run schedules the tasks in process;
// other engines (package riverjobs) turn each into a periodic job.
type Task struct {
	Duty Duty
	// Name is unique among a Runner's tasks: the duty, and for
	// AuditForward the destination, as "audit_forward/<name>".
	Name    string
	Every   time.Duration
	Timeout time.Duration
	// Do makes one pass and returns how much it did (requests driven,
	// users synced, records purged, events forwarded, exports expired).
	// Outcomes that are normal with several instances (another instance
	// holds the lease or the cursor, a claim moved on) are not errors.
	Do func(ctx context.Context) (int, error)
}

// Option configures a Runner.
type Option func(*Runner) error

// WithPrivacy gives the Runner the Requests duty of svc, and its
// ExportExpiry duty when svc is an ExportExpirer.
func WithPrivacy(svc *privacy.Service) Option {
	return func(r *Runner) error {
		if svc == nil {
			return fmt.Errorf("%w: WithPrivacy: nil service", ErrInvalidConfig)
		}
		r.privacy = svc
		return nil
	}
}

// WithConsent gives the Runner the ConsentSync duty of m.
func WithConsent(m *consent.Manager) Option {
	return func(r *Runner) error {
		if m == nil {
			return fmt.Errorf("%w: WithConsent: nil manager", ErrInvalidConfig)
		}
		r.consent = m
		return nil
	}
}

// WithRetention gives the Runner the Retention duty of e. Give e a
// shared lease (retention.WithLease over sqlstore's Leases) so that one
// instance at a time sweeps.
func WithRetention(e *retention.Engine) Option {
	return func(r *Runner) error {
		if e == nil {
			return fmt.Errorf("%w: WithRetention: nil engine", ErrInvalidConfig)
		}
		r.retention = e
		return nil
	}
}

// WithForwarders gives the Runner an AuditForward task per Forwarder;
// their destination names must differ.
func WithForwarders(fs ...*audit.Forwarder) Option {
	return func(r *Runner) error {
		for i, f := range fs {
			if f == nil {
				return fmt.Errorf("%w: WithForwarders: forwarder %d is nil", ErrInvalidConfig, i)
			}
		}
		r.forwarders = append(r.forwarders, fs...)
		return nil
	}
}

// WithExportExpiry gives the Runner the ExportExpiry duty of e.
func WithExportExpiry(e ExportExpirer) Option {
	return func(r *Runner) error {
		if e == nil {
			return fmt.Errorf("%w: WithExportExpiry: nil expirer", ErrInvalidConfig)
		}
		r.expirer = e
		return nil
	}
}

// WithInterval sets how long a duty waits between passes (see the
// Default...Interval constants). River's periodic jobs need at least a
// second.
func WithInterval(d Duty, every time.Duration) Option {
	return func(r *Runner) error {
		if _, ok := r.every[d]; !ok {
			return fmt.Errorf("%w: WithInterval: unknown duty %q", ErrInvalidConfig, d)
		}
		if every < time.Millisecond {
			return fmt.Errorf("%w: WithInterval(%s): %v is under a millisecond", ErrInvalidConfig, d, every)
		}
		r.every[d] = every
		return nil
	}
}

// WithTimeout bounds one pass of a duty (see the Default...Timeout
// constants).
func WithTimeout(d Duty, limit time.Duration) Option {
	return func(r *Runner) error {
		if _, ok := r.timeout[d]; !ok {
			return fmt.Errorf("%w: WithTimeout: unknown duty %q", ErrInvalidConfig, d)
		}
		if limit < time.Millisecond {
			return fmt.Errorf("%w: WithTimeout(%s): %v is under a millisecond", ErrInvalidConfig, d, limit)
		}
		r.timeout[d] = limit
		return nil
	}
}

// WithErrorHandler sets who hears about failed passes (default: the
// logger of WithLogger). Errors never stop the Runner.
func WithErrorHandler(f func(d Duty, err error)) Option {
	return func(r *Runner) error {
		if f == nil {
			return fmt.Errorf("%w: WithErrorHandler: nil function", ErrInvalidConfig)
		}
		r.onError = f
		return nil
	}
}

// WithLogger sets where failed passes are logged when no error handler
// is set (default slog.Default()), and where passes that did something
// are logged at debug level (task, count, duration; never a user ID).
func WithLogger(l *slog.Logger) Option {
	return func(r *Runner) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger: nil logger", ErrInvalidConfig)
		}
		r.logger = l
		return nil
	}
}

// Runner owns every background duty of an application: it is the one
// place they are configured, whichever engine runs them. Run is the
// embedded engine; package riverjobs runs the same tasks as River jobs.
// A Runner is safe for concurrent use.
type Runner struct {
	privacy    *privacy.Service
	consent    *consent.Manager
	retention  *retention.Engine
	forwarders []*audit.Forwarder
	expirer    ExportExpirer
	every      map[Duty]time.Duration
	timeout    map[Duty]time.Duration
	onError    func(Duty, error)
	logger     *slog.Logger
	tasks      []Task

	// WithMeterProvider and WithTracerProvider (telemetry.go).
	mp      metric.MeterProvider
	metrics *passMetrics
	tracer  trace.Tracer
}

// New returns a Runner of the duties its options name. It fails,
// wrapping ErrInvalidConfig, on a bad option, two Forwarders of one
// destination, or no duty at all.
func New(opts ...Option) (*Runner, error) {
	r := &Runner{
		every: map[Duty]time.Duration{
			Requests: DefaultRequestsInterval, ConsentSync: DefaultConsentSyncInterval, Retention: DefaultRetentionInterval,
			AuditForward: DefaultAuditForwardInterval, ExportExpiry: DefaultExportExpiryInterval,
		},
		timeout: map[Duty]time.Duration{
			Requests: DefaultRequestsTimeout, ConsentSync: DefaultConsentSyncTimeout, Retention: DefaultRetentionTimeout,
			AuditForward: DefaultAuditForwardTimeout, ExportExpiry: DefaultExportExpiryTimeout,
		},
		logger: slog.Default(),
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	if err := r.startMetrics(); err != nil {
		return nil, err
	}
	if r.expirer == nil && r.privacy != nil {
		if e, ok := any(r.privacy).(ExportExpirer); ok {
			r.expirer = e
		}
	}
	task := func(d Duty, name string, do func(context.Context) (int, error)) {
		r.tasks = append(r.tasks, Task{Duty: d, Name: name, Every: r.every[d], Timeout: r.timeout[d], Do: r.observe(d, name, do)})
	}
	if svc := r.privacy; svc != nil {
		task(Requests, string(Requests), func(ctx context.Context) (int, error) {
			n, err := svc.ResumePending(ctx)
			return n, normal(err, privacy.ErrLegalHold, privacy.ErrClaimLost, privacy.ErrRequestClaimed)
		})
	}
	if m := r.consent; m != nil {
		task(ConsentSync, string(ConsentSync), func(ctx context.Context) (int, error) {
			n, err := m.SyncPending(ctx)
			return n, normal(err, steward.ErrLeaseLost)
		})
	}
	if e := r.retention; e != nil {
		task(Retention, string(Retention), func(ctx context.Context) (int, error) {
			rep, err := e.Run(ctx, retention.RunOptions{})
			n := 0
			for _, p := range rep.Policies {
				n += p.Purged + p.Notified + p.Erased
			}
			return n, normal(err, retention.ErrLeaseHeld, steward.ErrLeaseHeld)
		})
	}
	seen := map[string]bool{}
	for _, f := range r.forwarders {
		if seen[f.Name()] {
			return nil, fmt.Errorf("%w: WithForwarders: two forwarders to %q", ErrInvalidConfig, f.Name())
		}
		seen[f.Name()] = true
		task(AuditForward, string(AuditForward)+"/"+f.Name(), func(ctx context.Context) (int, error) {
			n, err := f.Forward(ctx)
			return n, normal(err, audit.ErrCursorHeld)
		})
	}
	if e := r.expirer; e != nil {
		task(ExportExpiry, string(ExportExpiry), e.ExpireExports)
	}
	if len(r.tasks) == 0 {
		return nil, fmt.Errorf("%w: no duty: give at least one of WithPrivacy, WithConsent, WithRetention, WithForwarders, WithExportExpiry", ErrInvalidConfig)
	}
	return r, nil
}

// Tasks returns the Runner's tasks, in a fixed order: requests, consent
// sync, retention, audit forwarding, export expiry.
func (r *Runner) Tasks() []Task { return append([]Task(nil), r.tasks...) }

// Privacy returns the Service given to WithPrivacy, or nil. Job engines
// drive its requests one by one (privacy.Service.Drive).
func (r *Runner) Privacy() *privacy.Service { return r.privacy }

// Timeout returns the time limit of one pass of d.
func (r *Runner) Timeout(d Duty) time.Duration { return r.timeout[d] }

// Report hands err, from a pass of d, to the error handler or the
// logger; nil is ignored. Job engines call it too, so errors reach one
// place whichever engine runs.
func (r *Runner) Report(d Duty, err error) {
	if err == nil {
		return
	}
	if r.onError != nil {
		r.onError(d, err)
		return
	}
	r.logger.Error("background duty failed", slog.String("duty", string(d)), slog.String("error", err.Error()))
}

// Run is the embedded engine: it runs every task in its own goroutine in
// this process until ctx ends, then waits for the passes under way and
// returns ctx's error. Each task's first pass starts after a random
// delay below its interval (at most five seconds), and each next one its
// interval, plus up to a tenth of it at random, after the last ended,
// so instances started together spread out. A pass is bounded by its
// task's Timeout.
//
// Run is correct with any number of instances, each running its own
// Runner over one database: every duty works under claims or leases in
// the database (request claims, consent outbox claims, the retention
// lease, the forwarder's cursor), so two passes never do the same work.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range r.tasks {
		wg.Go(func() { r.loop(ctx, t) })
	}
	wg.Wait()
	return ctx.Err()
}

func (r *Runner) loop(ctx context.Context, t Task) {
	wait := rand.N(min(t.Every, 5*time.Second) + 1)
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		r.Pass(ctx, t)
		wait = t.Every + rand.N(t.Every/10+1)
	}
}

// Pass makes one pass of t within its Timeout and reports its error, and
// returns how much it did. A pass that panics (a bug in an application's
// store or notifier, say) is reported as a failed pass naming the task,
// and the Runner goes on: with the embedded engine a panic would
// otherwise end the process, and every replica in turn as each picks the
// same work up.
func (r *Runner) Pass(ctx context.Context, t Task) int {
	pctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	start := time.Now()
	n, err := do(pctx, t)
	if ctx.Err() == nil {
		r.Report(t.Duty, err)
	}
	r.logPass(ctx, t, n, time.Since(start))
	return n
}

// do runs one pass of t, turning a panic into an error. The error names
// the task and, for a runtime error, what went wrong; other panic values
// only by type, since they may hold what the application put there (a
// user ID) and the error is logged.
func do(ctx context.Context, t Task) (n int, err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if re, ok := v.(runtime.Error); ok {
			err = fmt.Errorf("background: a pass of %s panicked: %w", t.Name, re)
		} else {
			err = fmt.Errorf("background: a pass of %s panicked with a %T", t.Name, v)
		}
	}()
	return t.Do(ctx)
}

// normal removes from err the errors that are ordinary outcomes with
// several instances: those matching one of targets, also inside joined
// errors. It returns nil when nothing else is left.
func normal(err error, targets ...error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var keep []error
		for _, e := range j.Unwrap() {
			if e = normal(e, targets...); e != nil {
				keep = append(keep, e)
			}
		}
		switch len(keep) {
		case 0:
			return nil
		case len(j.Unwrap()):
			return err
		}
		return errors.Join(keep...)
	}
	for _, t := range targets {
		if errors.Is(err, t) {
			return nil
		}
	}
	// A wrapper around joined errors (fmt.Errorf("...: %w", errors.Join(...))).
	if inner := errors.Unwrap(err); inner != nil {
		if _, ok := inner.(interface{ Unwrap() []error }); ok && normal(inner, targets...) == nil {
			return nil
		}
	}
	return err
}
