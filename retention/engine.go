package retention

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

// NotifiedKey is the private-metadata key that records when a user was
// told about their inactivity (RFC 3339), so nobody is notified twice.
const NotifiedKey = "notifiedAboutInactivity"

// Notifier tells an inactive user that their account will be erased at
// eraseAt unless they come back.
type Notifier interface {
	NotifyInactive(ctx context.Context, u steward.User, eraseAt time.Time) error
}

// Eraser erases a user; *privacy.Service satisfies it.
type Eraser interface {
	Erase(ctx context.Context, userID string, opts ...privacy.EraseOption) (privacy.DeletionResult, error)
}

// AuditLogger records audit events; *audit.Logger satisfies it.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// Engine runs retention policies. It is safe for concurrent use; a Lease
// keeps concurrent runs (in this process or others) from doing the same
// work twice.
type Engine struct {
	policies []Policy
	idp      steward.IdentityProvider
	holds    HoldStore
	eraser   Eraser
	notifier Notifier
	audit    AuditLogger
	now      func() time.Time
	lease    Lease
	owner    string
	leaseTTL time.Duration
}

// Option configures an Engine.
type Option func(*Engine)

// WithIdentity sets the identity provider NotifyThenErase scans.
func WithIdentity(idp steward.IdentityProvider) Option { return func(e *Engine) { e.idp = idp } }

// WithHolds skips users under legal hold.
func WithHolds(h HoldStore) Option { return func(e *Engine) { e.holds = h } }

// WithEraser sets what erases inactive users (a *privacy.Service).
func WithEraser(er Eraser) Option { return func(e *Engine) { e.eraser = er } }

// WithNotifier sets how inactive users are told.
func WithNotifier(n Notifier) Option { return func(e *Engine) { e.notifier = n } }

// WithAudit writes retention_purge events.
func WithAudit(l AuditLogger) Option { return func(e *Engine) { e.audit = l } }

// WithNow sets the clock.
func WithNow(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithLease makes Run take the lease "retention" as owner for ttl first;
// a run that finds it held elsewhere returns ErrLeaseHeld.
func WithLease(l Lease, owner string, ttl time.Duration) Option {
	return func(e *Engine) { e.lease, e.owner, e.leaseTTL = l, owner, ttl }
}

// ErrLeaseHeld reports that another runner holds the retention lease.
var ErrLeaseHeld = errors.New("retention: another run holds the lease")

// NewEngine validates the policies and returns an Engine.
func NewEngine(policies []Policy, opts ...Option) (*Engine, error) {
	e := &Engine{policies: append([]Policy(nil), policies...), now: time.Now}
	for _, o := range opts {
		o(e)
	}
	seen := map[string]bool{}
	for _, p := range e.policies {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("%w: two policies are named %q", ErrInvalidPolicy, p.Name)
		}
		seen[p.Name] = true
		if p.Action == NotifyThenErase && (e.idp == nil || e.notifier == nil || e.eraser == nil) {
			return nil, fmt.Errorf("%w: policy %q: %s needs WithIdentity, WithNotifier and WithEraser", ErrInvalidPolicy, p.Name, p.Action)
		}
	}
	if e.lease != nil && (e.owner == "" || e.leaseTTL <= 0) {
		return nil, errors.New("retention: WithLease needs an owner and a positive ttl")
	}
	return e, nil
}

// RunOptions configure one Run.
type RunOptions struct {
	// DryRun reports what would happen and changes nothing.
	DryRun bool
	// Progress, when set, is called after every batch.
	Progress func(Progress)
}

// Progress describes one finished batch.
type Progress struct {
	Policy string
	Action Action
	// Batch is what this batch did (or, in a dry run, would do).
	Batch int
	// Done is the policy's running total.
	Done int
}

// Report is what a Run did, or in a dry run would do, per policy.
type Report struct {
	DryRun   bool           `json:"dryRun"`
	At       time.Time      `json:"at"`
	Policies []PolicyReport `json:"policies"`
}

// PolicyReport is one policy's share of a Report.
type PolicyReport struct {
	Name   string    `json:"name"`
	Action Action    `json:"action"`
	Cutoff time.Time `json:"cutoff"`
	// Purged counts records deleted or anonymised (Delete, Anonymise).
	Purged int `json:"purged"`
	// Notified, Erased, Waiting and Reactivated count users
	// (NotifyThenErase): told now, erased now, notified and within the
	// grace period, active again since their notice (notice renewed).
	Notified    int `json:"notified"`
	Erased      int `json:"erased"`
	Waiting     int `json:"waiting"`
	Reactivated int `json:"reactivated"`
	// Held counts users skipped because of a legal hold.
	Held    int `json:"held"`
	Batches int `json:"batches"`
	// Failed counts users whose notification or erasure failed; they are
	// retried on the next run.
	Failed int `json:"failed"`
}

// Run applies every policy once, in order. On error it returns the
// report so far: what was done stays done, and the next run continues.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (Report, error) {
	now := e.now().UTC()
	rep := Report{DryRun: opts.DryRun, At: now}
	if e.lease != nil && !opts.DryRun {
		ok, err := e.lease.AcquireLease(ctx, "retention", e.owner, now, e.leaseTTL)
		if err != nil {
			return rep, fmt.Errorf("retention: taking the lease: %w", err)
		}
		if !ok {
			return rep, ErrLeaseHeld
		}
		defer e.lease.ReleaseLease(context.WithoutCancel(ctx), "retention", e.owner)
	}
	held, err := e.heldIDs(ctx)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, p := range e.policies {
		pr := PolicyReport{Name: p.Name, Action: p.Action, Cutoff: now.Add(-p.MaxAge)}
		var err error
		switch p.Action {
		case Delete, Anonymise:
			err = e.purge(ctx, p, &pr, held, opts)
		case NotifyThenErase:
			err = e.inactive(ctx, p, &pr, held, now, opts)
		}
		rep.Policies = append(rep.Policies, pr)
		if err != nil {
			if ctx.Err() != nil {
				return rep, err
			}
			errs = append(errs, fmt.Errorf("policy %q: %w", p.Name, err))
		}
	}
	return rep, errors.Join(errs...)
}

func (e *Engine) heldIDs(ctx context.Context) ([]string, error) {
	if e.holds == nil {
		return nil, nil
	}
	hs, err := e.holds.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: listing holds: %w", err)
	}
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.UserID
	}
	return ids, nil
}

func (e *Engine) purge(ctx context.Context, p Policy, pr *PolicyReport, held []string, opts RunOptions) error {
	an, _ := p.Target.(Anonymiser)
	if opts.DryRun {
		var n int
		var err error
		if p.Action == Anonymise {
			n, err = an.CountIdentified(ctx, pr.Cutoff, held)
		} else {
			n, err = p.Target.Count(ctx, pr.Cutoff, held)
		}
		pr.Purged = n
		if err == nil && opts.Progress != nil {
			opts.Progress(Progress{Policy: p.Name, Action: p.Action, Batch: n, Done: n})
		}
		return err
	}
	for {
		var n int
		var err error
		if p.Action == Anonymise {
			n, err = an.Anonymise(ctx, pr.Cutoff, p.batch(), held)
		} else {
			n, err = p.Target.Purge(ctx, pr.Cutoff, p.batch(), held)
		}
		if err != nil {
			e.summary(ctx, p, pr)
			return err
		}
		if n == 0 {
			break
		}
		pr.Purged += n
		pr.Batches++
		if opts.Progress != nil {
			opts.Progress(Progress{Policy: p.Name, Action: p.Action, Batch: n, Done: pr.Purged})
		}
	}
	return e.summary(ctx, p, pr)
}

// summary audits a bulk purge: one event with counts and no user IDs.
func (e *Engine) summary(ctx context.Context, p Policy, pr *PolicyReport) error {
	if e.audit == nil || pr.Purged == 0 {
		return nil
	}
	return e.audit.Log(ctx, audit.Event{Type: audit.RetentionPurge, Subject: "system:retention", Actor: "system:retention",
		Details: map[string]any{"policy": p.Name, "action": string(p.Action), "purged": pr.Purged,
			"cutoff": pr.Cutoff.Format(time.RFC3339), "batches": pr.Batches}})
}

func (e *Engine) inactive(ctx context.Context, p Policy, pr *PolicyReport, held []string, now time.Time, opts RunOptions) error {
	heldSet := make(map[string]bool, len(held))
	for _, id := range held {
		heldSet[id] = true
	}
	q := steward.UserQuery{LastActiveBefore: pr.Cutoff, PageSize: p.batch()}
	batch := 0
	for u, err := range e.idp.ListUsers(ctx, q) {
		if err != nil {
			return err
		}
		before := pr.Notified + pr.Erased
		if heldSet[u.ID] {
			pr.Held++
			continue
		}
		if err := e.inactiveUser(ctx, p, pr, u, now, opts.DryRun); err != nil {
			if ctx.Err() != nil {
				return err
			}
			pr.Failed++
		}
		if pr.Notified+pr.Erased > before {
			batch++
		}
		if batch == p.batch() {
			pr.Batches++
			if opts.Progress != nil {
				opts.Progress(Progress{Policy: p.Name, Action: p.Action, Batch: batch, Done: pr.Notified + pr.Erased})
			}
			batch = 0
		}
	}
	if batch > 0 {
		pr.Batches++
		if opts.Progress != nil {
			opts.Progress(Progress{Policy: p.Name, Action: p.Action, Batch: batch, Done: pr.Notified + pr.Erased})
		}
	}
	return nil
}

func lastActive(u steward.User) time.Time {
	if !u.LastActiveAt.IsZero() {
		return u.LastActiveAt
	}
	return u.CreatedAt
}

func (e *Engine) inactiveUser(ctx context.Context, p Policy, pr *PolicyReport, u steward.User, now time.Time, dry bool) error {
	notifiedAt, notified := parseNotified(u.PrivateMetadata[NotifiedKey])
	if notified && lastActive(u).After(notifiedAt) {
		// Active again after the notice, inactive again since: the old
		// notice no longer counts; start over.
		pr.Reactivated++
		notified = false
	}
	if !notified {
		pr.Notified++
		if dry {
			return nil
		}
		if err := e.notifier.NotifyInactive(ctx, u, now.Add(p.GracePeriod)); err != nil {
			pr.Notified--
			return err
		}
		return e.idp.UpdateMetadata(ctx, u.ID, steward.MetadataPatch{Private: map[string]any{NotifiedKey: now.Format(time.RFC3339)}})
	}
	if now.Before(notifiedAt.Add(p.GracePeriod)) {
		pr.Waiting++
		return nil
	}
	pr.Erased++
	if dry {
		return nil
	}
	res, err := e.eraser.Erase(ctx, u.ID, privacy.RequestedBy("system:retention"))
	if err != nil || !res.Success {
		pr.Erased--
		if err == nil {
			err = errors.New("erasure incomplete")
		}
		return err
	}
	if e.audit != nil {
		return e.audit.Log(ctx, audit.Event{Type: audit.RetentionPurge, Subject: u.ID, Actor: "system:retention",
			Details: map[string]any{"policy": p.Name, "action": "erase_inactive", "notifiedAt": notifiedAt.Format(time.RFC3339)}})
	}
	return nil
}

func parseNotified(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// Schedule calls Run every interval, plus up to jitter at random so
// several instances do not start together, until ctx ends; it returns
// ctx.Err(). Each run's report and error go to onRun when it is set.
func (e *Engine) Schedule(ctx context.Context, interval, jitter time.Duration, opts RunOptions, onRun func(Report, error)) error {
	for {
		wait := interval
		if jitter > 0 {
			wait += rand.N(jitter)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		rep, err := e.Run(ctx, opts)
		if onRun != nil {
			onRun(rep, err)
		}
	}
}
