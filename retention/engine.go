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
// told about their inactivity (RFC 3339). The NoticeStore's record, written
// before the notice is sent, is what keeps two runners from both telling
// a user; the metadata shows the notice to the application and spares
// later runs a claim.
const NotifiedKey = "notifiedAboutInactivity"

// Actor is the audit actor of everything the Engine does, and the
// requester of the erasures it starts.
const Actor = "system:retention"

// Notifier tells an inactive user that their account will be erased at
// eraseAt unless they come back.
type Notifier interface {
	NotifyInactive(ctx context.Context, u steward.User, eraseAt time.Time) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, u steward.User, eraseAt time.Time) error

// NotifyInactive implements Notifier.
func (f NotifierFunc) NotifyInactive(ctx context.Context, u steward.User, eraseAt time.Time) error {
	return f(ctx, u, eraseAt)
}

// Eraser erases a user; *privacy.Service satisfies it.
type Eraser interface {
	Erase(ctx context.Context, userID string, opts ...privacy.EraseOption) (privacy.DeletionResult, error)
}

// AuditLogger records audit events; *audit.Logger satisfies it.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

var _ AuditLogger = (*audit.Logger)(nil)
var _ Eraser = (*privacy.Service)(nil)

// Engine runs retention policies. It is safe for concurrent use; a lease
// (WithLease) keeps concurrent runs, in this process or others, from
// doing the same work at once, and a NoticeStore keeps any two runners
// from telling one user twice.
type Engine struct {
	policies []Policy
	idp      steward.IdentityProvider
	holds    HoldStore
	notices  NoticeStore
	eraser   Eraser
	notifier Notifier
	audit    AuditLogger
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	leaser   steward.Leaser
	owner    string
	leaseTTL time.Duration
	tel      telemetry // metrics, traces and log (telemetry.go)
	optErrs  []error   // options given nil
}

// Option configures an Engine.
type Option func(*Engine)

// WithIdentity sets the identity provider NotifyThenErase scans.
func WithIdentity(idp steward.IdentityProvider) Option { return func(e *Engine) { e.idp = idp } }

// WithHolds skips users under legal hold. When h also implements
// NoticeStore (MemoryHolds and sqlstore's Holds do), it records the
// inactivity notices too, unless WithNotices names another store.
func WithHolds(h HoldStore) Option { return func(e *Engine) { e.holds = h } }

// WithNotices sets where inactivity notices are claimed and recorded
// before they are sent. Give every instance the same store (sqlstore's
// Holds) so no user is told twice. Without it and without a HoldStore
// that is a NoticeStore, each Engine keeps its own records in memory,
// which guards only against itself.
func WithNotices(n NoticeStore) Option { return func(e *Engine) { e.notices = n } }

// WithEraser sets what erases inactive users (a *privacy.Service).
func WithEraser(er Eraser) Option { return func(e *Engine) { e.eraser = er } }

// WithNotifier sets how inactive users are told.
func WithNotifier(n Notifier) Option { return func(e *Engine) { e.notifier = n } }

// WithAudit writes retention_purge events.
func WithAudit(l AuditLogger) Option { return func(e *Engine) { e.audit = l } }

// WithNow sets the clock Run reads (default time.Now).
func WithNow(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithAfter sets how Schedule waits between runs (default time.After), so
// a fake clock can drive it in tests.
func WithAfter(after func(time.Duration) <-chan time.Time) Option {
	return func(e *Engine) { e.after = after }
}

// WithLease makes every Run but a dry run hold the lease LeaseName from l
// (sqlstore's Leases, shared by every process on the database; expiry is
// judged by the database's clock) for ttl (0 means DefaultLeaseTTL). The
// lease is renewed in the background every third of ttl, so a slow batch
// or notifier does not let another runner in, and confirmed with the
// Leaser before every destructive step (a purge batch, a notice, an
// erasure). A run that finds it held returns ErrLeaseHeld and does
// nothing; one that loses it stops with ErrLeaseLost before its next
// destructive step.
func WithLease(l steward.Leaser, ttl time.Duration) Option {
	return func(e *Engine) { e.leaser, e.leaseTTL = l, ttl }
}

// WithOwner names the Engine in the leases and notice claims it takes.
// The default, steward.NewOwner(), is unique to the Engine; a shared name
// is safe, as a lease or a claim is never granted twice even to one
// owner, but makes the records harder to read.
func WithOwner(owner string) Option { return func(e *Engine) { e.owner = owner } }

// NewEngine validates the policies and returns an Engine. It fails with
// ErrInvalidPolicy for a malformed policy, two policies of one name, or a
// NotifyThenErase policy without WithIdentity, WithNotifier and
// WithEraser, and with an error wrapping steward.ErrInvalidLease for an
// unusable WithOwner name or WithLease ttl.
func NewEngine(policies []Policy, opts ...Option) (*Engine, error) {
	e := &Engine{policies: append([]Policy(nil), policies...), now: time.Now, after: time.After}
	for _, o := range opts {
		o(e)
	}
	if err := errors.Join(e.optErrs...); err != nil {
		return nil, err
	}
	if err := e.tel.start(); err != nil {
		return nil, err
	}
	if e.owner == "" {
		e.owner = steward.NewOwner()
	}
	if e.leaseTTL == 0 {
		e.leaseTTL = DefaultLeaseTTL
	}
	if e.notices == nil {
		if n, ok := e.holds.(NoticeStore); ok {
			e.notices = n
		} else {
			e.notices = &MemoryHolds{}
		}
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
	switch {
	case e.now == nil:
		return nil, errors.New("retention: WithNow: nil clock")
	case e.after == nil:
		return nil, errors.New("retention: WithAfter: nil function")
	}
	if err := steward.ValidateLease(LeaseName, e.owner, e.leaseTTL); err != nil {
		return nil, fmt.Errorf("retention: WithLease or WithOwner: %w", err)
	}
	return e, nil
}

// RunOptions configure one Run.
type RunOptions struct {
	// DryRun reports what would happen and changes nothing: no record,
	// user, metadata, lease, notice claim or audit event is written and
	// nobody is notified. It takes no lease, so it runs, and is safe,
	// beside a real run of another instance.
	DryRun bool
	// Progress, when set, is called after every batch, on the goroutine
	// that called Run.
	Progress func(Progress)
}

// Progress describes one finished batch: for Delete and Anonymise one
// purge statement; for NotifyThenErase one page of users scanned, then
// each batch of erasures. A dry run reports each Delete or Anonymise
// policy as one batch.
type Progress struct {
	Policy string
	Action Action
	// Batch is how many records or users this batch acted on (or, in a
	// dry run, would).
	Batch int
	// Done is the policy's running total of records or users acted on.
	Done int
	// Scanned is how many users NotifyThenErase has looked at so far.
	Scanned int
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
	// Scanned counts users last active before Cutoff (NotifyThenErase).
	Scanned int `json:"scanned"`
	// Notified, Erased, Waiting and Reactivated count users
	// (NotifyThenErase): told now, erased now, notified and within the
	// grace period (or being told by another runner right now), and
	// active again after their notice (their notice no longer counts: it
	// is cleared, or renewed if they have been inactive for MaxAge
	// again).
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

// Run applies every policy once, in order: Delete and Anonymise in
// batches of the policy's BatchSize until no expired record is left;
// NotifyThenErase by scanning the users last active before now−MaxAge
// (paged, never all in memory), notifying those not yet notified and
// erasing, after the scan, those whose grace period has passed. Users
// under legal hold are skipped by all three.
//
// A policy that fails does not stop the next; Run returns the report so
// far and the policies' errors joined. What was done stays done, and the
// next run continues where this one stopped. With WithLease, a run that
// finds the lease held returns an error wrapping ErrLeaseHeld and an empty
// report, and one that loses it stops the policy it is in and skips the
// rest, returning an error wrapping ErrLeaseLost.
//
// Cutoffs and grace periods are reckoned by the Engine's clock (WithNow);
// leases and notice claims by their store's.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (Report, error) {
	ctx, span := e.tel.startRun(ctx, opts.DryRun)
	rep, err := e.run(ctx, opts)
	if errors.Is(err, ErrLeaseHeld) {
		endSpan(span, nil) // another instance is at it: nothing to report
	} else {
		endSpan(span, err)
	}
	return rep, err
}

// run is Run inside its span.
func (e *Engine) run(ctx context.Context, opts RunOptions) (Report, error) {
	now := e.now().UTC()
	rep := Report{DryRun: opts.DryRun, At: now, Policies: []PolicyReport{}}
	r := &run{e: e, opts: opts, now: now}
	if e.leaser != nil && !opts.DryRun {
		h, lctx, err := hold(ctx, e.leaser, e.owner, e.leaseTTL)
		if err != nil {
			return rep, err
		}
		defer h.release(ctx)
		ctx, r.lease = lctx, h
	}
	if err := r.loadHolds(ctx); err != nil {
		return rep, err
	}
	var errs []error
	for _, p := range e.policies {
		pr := PolicyReport{Name: p.Name, Action: p.Action, Cutoff: now.Add(-p.MaxAge)}
		pctx, span := e.tel.startPolicy(ctx, p)
		var err error
		switch p.Action {
		case Delete, Anonymise:
			err = r.purge(pctx, p, &pr)
		case NotifyThenErase:
			err = r.inactive(pctx, p, &pr)
		}
		e.tel.policyDone(ctx, span, opts.DryRun, pr, err)
		rep.Policies = append(rep.Policies, pr)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: policy %q: %w", p.Name, err))
		}
		if ctx.Err() != nil || errors.Is(err, ErrLeaseLost) {
			break
		}
	}
	if lost := r.lease.lostErr(); lost != nil && !errors.Is(errors.Join(errs...), ErrLeaseLost) {
		errs = append(errs, fmt.Errorf("retention: %w", lost))
	}
	return rep, errors.Join(errs...)
}

// run is the state of one Run.
type run struct {
	e       *Engine
	opts    RunOptions
	now     time.Time
	held    map[string]bool
	heldIDs []string
	lease   *holder // nil without a lease (and in a dry run)
}

func (r *run) loadHolds(ctx context.Context) error {
	if r.e.holds == nil {
		return nil
	}
	hs, err := r.e.holds.List(ctx)
	if err != nil {
		return fmt.Errorf("retention: listing holds: %w", err)
	}
	r.held = make(map[string]bool, len(hs))
	r.heldIDs = make([]string, len(hs))
	for i, h := range hs {
		r.held[h.UserID] = true
		r.heldIDs[i] = h.UserID
	}
	return nil
}

// fence confirms the lease before a destructive step.
func (r *run) fence(ctx context.Context) error { return r.lease.fence(ctx) }

func (r *run) progress(p Policy, batch, done, scanned int) {
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{Policy: p.Name, Action: p.Action, Batch: batch, Done: done, Scanned: scanned})
	}
}

func (r *run) purge(ctx context.Context, p Policy, pr *PolicyReport) error {
	an, _ := p.Target.(Anonymiser)
	if r.opts.DryRun {
		var n int
		var err error
		if p.Action == Anonymise {
			n, err = an.CountIdentified(ctx, pr.Cutoff, r.heldIDs)
		} else {
			n, err = p.Target.Count(ctx, pr.Cutoff, r.heldIDs)
		}
		if err != nil {
			return err
		}
		pr.Purged = n
		pr.Batches = (n + p.batch() - 1) / p.batch() // the batches a real run would take
		r.progress(p, n, n, 0)
		return nil
	}
	limit := p.batch()
	for {
		if err := r.fence(ctx); err != nil {
			return errors.Join(err, r.summary(ctx, p, pr))
		}
		var n int
		var err error
		if p.Action == Anonymise {
			n, err = an.Anonymise(ctx, pr.Cutoff, limit, r.heldIDs)
		} else {
			n, err = p.Target.Purge(ctx, pr.Cutoff, limit, r.heldIDs)
		}
		if err != nil {
			return errors.Join(err, r.summary(ctx, p, pr))
		}
		if n == 0 {
			break
		}
		pr.Purged += n
		pr.Batches++
		r.progress(p, n, pr.Purged, 0)
	}
	return r.summary(ctx, p, pr)
}

// summary audits a bulk purge: one event with counts and no user IDs.
func (r *run) summary(ctx context.Context, p Policy, pr *PolicyReport) error {
	if r.e.audit == nil || pr.Purged == 0 {
		return nil
	}
	ctx, cancel := recording(ctx) // what was purged is audited even when the run was stopped
	defer cancel()
	err := r.e.audit.Log(ctx, audit.Event{Type: audit.RetentionPurge, Actor: Actor,
		Details: map[string]any{"policy": p.Name, "action": string(p.Action), "purged": pr.Purged,
			"cutoff": pr.Cutoff.Format(time.RFC3339), "batches": pr.Batches, "held": len(r.heldIDs)}})
	if err != nil {
		return fmt.Errorf("auditing the purge: %w", err)
	}
	return nil
}

// due is a user to erase once the scan is over.
type due struct {
	id         string
	notifiedAt time.Time
}

// failures keeps the first error of the users that failed.
type failures struct {
	n     int
	first error
}

func (f *failures) add(pr *PolicyReport, err error) {
	pr.Failed++
	f.n++
	if f.first == nil {
		f.first = err
	}
}

func (f *failures) err() error {
	if f.n == 0 {
		return nil
	}
	return fmt.Errorf("%d users failed and are retried on the next run; the first: %w", f.n, f.first)
}

func (r *run) inactive(ctx context.Context, p Policy, pr *PolicyReport) error {
	q := steward.UserQuery{LastActiveBefore: pr.Cutoff, PageSize: p.batch()}
	var (
		dues  []due // erased after the scan, so no provider's paging is disturbed
		fails failures
		acted int // users notified (or due, in a dry run) in the current page
	)
	page := func() {
		pr.Batches++
		r.progress(p, acted, pr.Notified+pr.Erased, pr.Scanned)
		acted = 0
	}
	for u, err := range r.e.idp.ListUsers(ctx, q) {
		if err != nil {
			if lost := r.lease.lostErr(); lost != nil {
				err = lost
			}
			return errors.Join(fmt.Errorf("listing users: %w", err), fails.err())
		}
		pr.Scanned++
		if r.held[u.ID] {
			pr.Held++
		} else {
			d, out, err := r.inactiveUser(ctx, p, pr, u)
			switch {
			case errors.Is(err, ErrLeaseLost):
				return errors.Join(err, fails.err())
			case ctx.Err() != nil:
				return errors.Join(cause(ctx), fails.err())
			case err != nil:
				fails.add(pr, err)
			case out == notified:
				acted++
			case out == overdue:
				dues = append(dues, d)
				if r.opts.DryRun {
					pr.Erased++
					acted++
				}
			}
		}
		if pr.Scanned%p.batch() == 0 {
			page()
		}
	}
	if pr.Scanned%p.batch() != 0 {
		page()
	}
	if r.opts.DryRun {
		return fails.err()
	}
	erased := 0
	for i, d := range dues {
		if err := r.erase(ctx, p, pr, d); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				return errors.Join(err, fails.err())
			}
			if ctx.Err() != nil {
				return errors.Join(cause(ctx), fails.err())
			}
			fails.add(pr, err)
		}
		if erased++; erased == p.batch() || i == len(dues)-1 {
			pr.Batches++
			r.progress(p, erased, pr.Notified+pr.Erased, pr.Scanned)
			erased = 0
		}
	}
	return fails.err()
}

func lastActive(u steward.User) time.Time {
	if !u.LastActiveAt.IsZero() {
		return u.LastActiveAt
	}
	return u.CreatedAt
}

// activeAfter reports whether u was, or may have been, active after t.
// Identity providers may keep the last activity at day precision (Clerk
// serves last_active_at as the start of its UTC day), so activity on t's
// own day counts as after t: a user told of their inactivity who came
// back later that day is told again next time, not erased on the old
// notice.
func activeAfter(u steward.User, t time.Time) bool {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return !lastActive(u).Before(day)
}

// outcome is what inactiveUser did with a user.
type outcome int

const (
	waiting  outcome = iota // notified, within the grace period
	notified                // told now (or, in a dry run, would be)
	overdue                 // notified and the grace period has passed
)

// inactiveUser handles one user last active before the cutoff: it
// notifies them if they have no current notice, and reports them overdue
// once their notice's grace period has passed.
func (r *run) inactiveUser(ctx context.Context, p Policy, pr *PolicyReport, u steward.User) (due, outcome, error) {
	notifiedAt, ok := parseNotified(u.PrivateMetadata[NotifiedKey])
	if ok && activeAfter(u, notifiedAt) {
		// Active after the notice, inactive for MaxAge again since: the
		// old notice no longer counts.
		pr.Reactivated++
		ok = false
	}
	if !ok {
		if r.opts.DryRun {
			pr.Notified++
			return due{}, notified, nil
		}
		sentAt, told, err := r.notify(ctx, p, u)
		if told {
			pr.Notified++
		}
		switch {
		case err != nil:
			return due{}, waiting, err
		case told:
			return due{}, notified, nil
		case sentAt.IsZero(): // another runner is telling them now
			pr.Waiting++
			return due{}, waiting, nil
		}
		notifiedAt = sentAt // told before, by another runner or an earlier run
	}
	if r.now.Before(notifiedAt.Add(p.GracePeriod)) {
		pr.Waiting++
		return due{}, waiting, nil
	}
	return due{id: u.ID, notifiedAt: notifiedAt}, overdue, nil
}

// notify claims the user's notice in the NoticeStore and, when this run
// got the claim, sends it and records the outcome there and in the user's
// private metadata. told reports that this run told the user; otherwise
// sentAt is when an earlier notice was sent, or zero when another runner
// holds the claim and is telling them now.
func (r *run) notify(ctx context.Context, p Policy, u steward.User) (sentAt time.Time, told bool, err error) {
	if err := r.fence(ctx); err != nil {
		return time.Time{}, false, err
	}
	n, claimed, err := r.e.notices.ClaimNotice(ctx, u.ID, lastActive(u), r.e.owner, NoticeClaimTTL)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("claiming the notice: %w", err)
	}
	if !claimed {
		if n.State != NoticeSent {
			return time.Time{}, false, nil
		}
		// Told already, and the metadata does not show it yet (the
		// runner that told them has not written it, or that write
		// failed): show it there, and tell nobody.
		if err := r.e.idp.UpdateMetadata(ctx, u.ID, noticePatch(n.SentAt)); err != nil {
			return time.Time{}, false, fmt.Errorf("recording an earlier notice in the metadata: %w", err)
		}
		return n.SentAt, false, nil
	}
	eraseAt := r.now.Add(p.GracePeriod)
	// The notifier has half the claim's life, so the claim cannot run
	// out, and another runner send the notice too, while it works.
	sctx, cancel := context.WithTimeout(ctx, NoticeClaimTTL/2)
	serr := r.e.notifier.NotifyInactive(sctx, u, eraseAt)
	cancel()
	rctx, rcancel := recording(ctx) // what was sent is recorded even when the run was stopped meanwhile
	defer rcancel()
	if serr != nil {
		n.State = NoticeFailed
		if err := r.e.notices.FinishNotice(rctx, n); err != nil {
			// The claim runs out unfinished, and the notice is retried then.
			return time.Time{}, false, errors.Join(fmt.Errorf("notifying: %w", serr), fmt.Errorf("recording the failed notice: %w", err))
		}
		return time.Time{}, false, fmt.Errorf("notifying: %w", serr)
	}
	n.State, n.SentAt = NoticeSent, r.now.Truncate(time.Second) // as NotifiedKey keeps it
	// Either record keeps the user from being told again, so the
	// metadata is written even when the store could not be.
	var errs []error
	if err := r.e.notices.FinishNotice(rctx, n); err != nil {
		errs = append(errs, fmt.Errorf("recording the sent notice: %w", err))
	}
	if err := r.e.idp.UpdateMetadata(rctx, u.ID, noticePatch(n.SentAt)); err != nil {
		errs = append(errs, fmt.Errorf("recording the notice in the metadata: %w", err))
	}
	if err := r.auditUser(rctx, p, u.ID, "notify_inactive", map[string]any{"eraseAfter": eraseAt.Format(time.RFC3339)}); err != nil {
		errs = append(errs, err)
	}
	return n.SentAt, true, errors.Join(errs...)
}

func noticePatch(at time.Time) steward.MetadataPatch {
	return steward.MetadataPatch{Private: map[string]any{NotifiedKey: at.UTC().Format(time.RFC3339)}}
}

// erase re-reads the user (they may have come back since the scan read
// them), then erases them through the Eraser.
func (r *run) erase(ctx context.Context, p Policy, pr *PolicyReport, d due) error {
	u, err := r.e.idp.GetUser(ctx, d.id)
	if errors.Is(err, steward.ErrUserNotFound) {
		// Erased already, by someone else.
		if err := r.e.notices.ForgetNotice(ctx, d.id); err != nil {
			return fmt.Errorf("forgetting the notice of an erased user: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("re-reading the user before erasure: %w", err)
	}
	if activeAfter(u, d.notifiedAt) || !lastActive(u).Before(r.now.Add(-p.MaxAge)) {
		if err := r.fence(ctx); err != nil {
			return err
		}
		pr.Reactivated++
		patch := steward.MetadataPatch{Private: map[string]any{NotifiedKey: nil}}
		if err := r.e.idp.UpdateMetadata(ctx, d.id, patch); err != nil {
			return fmt.Errorf("clearing the notice of a user active again: %w", err)
		}
		return nil
	}
	if r.e.holds != nil {
		if _, held, err := r.e.holds.Get(ctx, d.id); err != nil {
			return fmt.Errorf("checking for a legal hold: %w", err)
		} else if held {
			pr.Held++ // placed during the run
			return nil
		}
	}
	if err := r.fence(ctx); err != nil {
		return err
	}
	// The record goes first: the metadata keeps the notice until the
	// user is gone, so a failed erasure is retried without it, and no
	// record of an erased user is left behind.
	if err := r.e.notices.ForgetNotice(ctx, d.id); err != nil {
		return fmt.Errorf("forgetting the notice before erasure: %w", err)
	}
	res, err := r.e.eraser.Erase(ctx, d.id, privacy.RequestedBy(Actor))
	if errors.Is(err, privacy.ErrLegalHold) {
		pr.Held++ // placed during the run
		return nil
	}
	if err != nil {
		return fmt.Errorf("erasing: %w", err)
	}
	if !res.Success {
		return fmt.Errorf("erasing: incomplete, request %s is queued for retry", res.RequestID)
	}
	pr.Erased++
	return r.auditUser(ctx, p, d.id, "erase_inactive", map[string]any{
		"notifiedAt": d.notifiedAt.Format(time.RFC3339), "requestId": res.RequestID})
}

// cause is why ctx is done: the lost lease, or ctx.Err().
func cause(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return ctx.Err()
}

// auditUser writes a retention_purge event about one user, whose ID the
// audit logger pseudonymises.
func (r *run) auditUser(ctx context.Context, p Policy, userID, action string, details map[string]any) error {
	if r.e.audit == nil {
		return nil
	}
	details["policy"] = p.Name
	details["action"] = action
	if err := r.e.audit.Log(ctx, audit.Event{Type: audit.RetentionPurge, Subject: userID, Actor: Actor, Details: details}); err != nil {
		return fmt.Errorf("auditing %s: %w", action, err)
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

// Schedule runs the policies until ctx ends, and then returns ctx.Err():
// the first run after a random delay below jitter, each next one interval
// plus a random delay below jitter after the last ended, so instances
// started together spread out. Each run's report and error go to onRun
// when it is set; a run that finds the lease held (ErrLeaseHeld) is an
// ordinary outcome when several instances schedule. WithAfter sets how it
// waits.
func (e *Engine) Schedule(ctx context.Context, interval, jitter time.Duration, opts RunOptions, onRun func(Report, error)) error {
	if interval <= 0 || jitter < 0 {
		return fmt.Errorf("retention: Schedule: interval must be positive (got %v) and jitter not negative (got %v)", interval, jitter)
	}
	spread := func() time.Duration {
		if jitter == 0 {
			return 0
		}
		return rand.N(jitter)
	}
	wait := spread()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.after(wait):
		}
		rep, err := e.Run(ctx, opts)
		if onRun != nil {
			onRun(rep, err)
		}
		wait = interval + spread()
	}
}
