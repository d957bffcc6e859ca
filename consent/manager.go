package consent

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

// AuditLogger records audit events; *audit.Logger satisfies it and
// pseudonymises the user IDs it is given.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// Fence tells whether a user may still be written for: an erasure of the
// user has not begun. *privacy.Service satisfies it (Service.CheckFence).
type Fence interface {
	// CheckFence returns nil when userID may be written for, an error
	// matching privacy.ErrFenced (or privacy.ErrErased) when not, and any
	// other error when it cannot tell; Update refuses on every error.
	CheckFence(ctx context.Context, userID string) error
}

// MaxSourceLen is the longest Meta.Source that Update accepts, in bytes.
const MaxSourceLen = 64

// Meta describes a change: under which policy version, from where, by
// whom.
type Meta struct {
	// PolicyVersion is the policy version the user was shown.
	PolicyVersion int
	// Source is where the change was made ("banner", "settings", "api").
	// Empty means "api".
	Source string
	// Actor is who made the change; empty means the user themselves.
	Actor string
}

// LogValue implements slog.LogValuer without the actor.
func (m Meta) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("policyVersion", m.PolicyVersion), slog.String("source", m.Source), slog.Bool("byOperator", m.Actor != ""))
}

// Manager records consent changes, answers Allowed, and mirrors each
// user's current consent to the identity provider's public metadata.
// It is safe for concurrent use, and any number of Managers, in any
// number of processes, may share one store: they coordinate through the
// outbox's claims alone.
type Manager struct {
	store    Store
	outbox   Outbox
	idp      steward.IdentityProvider
	purposes map[Purpose]int // purpose → minimum policy version
	audit    AuditLogger
	now      func() time.Time

	retryInitial, retryMax time.Duration
	retryTries             uint
	batch                  int

	owner    string        // names this Manager's outbox claims
	claimTTL time.Duration // how long a claim lasts unless renewed

	fence Fence
	// proof is the KeepProof pseudonymizer of the DataStore, so that a
	// change undone because an erasure began is erased as the erasure
	// would erase it.
	proof atomic.Pointer[proofHolder]

	tel telemetry // metrics, traces and log (telemetry.go)
}

type proofHolder struct{ p Pseudonymizer }

// DefaultClaimTTL is how long a Manager's claim on a user's sync lasts,
// by the store's clock, unless renewed. The Manager renews it every third
// of that while the identity provider is being called.
const DefaultClaimTTL = 30 * time.Second

// queueGrace is how long after Update queues a sync, before recording
// the change, the entry comes due if Update stops in between: long enough
// that no runner syncs the unchanged state while Update is recording.
const queueGrace = time.Minute

// Option configures a Manager.
type Option func(*Manager) error

// WithPurpose registers an application-defined purpose, or changes the
// minimum policy version of a built-in one: consent given under an older
// version counts as not given.
func WithPurpose(p Purpose, minPolicyVersion int) Option {
	return func(m *Manager) error {
		if err := p.Validate(); err != nil {
			return err
		}
		if minPolicyVersion < 0 {
			return fmt.Errorf("consent: WithPurpose(%q): negative minimum policy version", p)
		}
		m.purposes[p] = minPolicyVersion
		return nil
	}
}

// WithAudit writes a consent_change event for every change.
func WithAudit(l AuditLogger) Option {
	return func(m *Manager) error { m.audit = l; return nil }
}

// WithFence refuses changes for users whose erasure has begun: give it
// the privacy.Service that erases them (privacy.Service.CheckFence).
// Update checks the fence before recording anything and again after
// recording: a change recorded while the erasure opened is removed and
// refused, so an erased user's consent never comes back. Build the
// Service over NewDataStore(store) first, then the Manager with
// WithFence(svc).
func WithFence(f Fence) Option {
	return func(m *Manager) error {
		if f == nil {
			return errors.New("consent: WithFence: nil fence")
		}
		m.fence = f
		return nil
	}
}

// WithOutbox keeps pending syncs in o instead of the store (which must
// otherwise implement Outbox itself).
func WithOutbox(o Outbox) Option {
	return func(m *Manager) error { m.outbox = o; return nil }
}

// WithNow sets the clock.
func WithNow(now func() time.Time) Option {
	return func(m *Manager) error { m.now = now; return nil }
}

// WithRetry sets the exponential backoff of syncs: the first interval,
// the largest, and how many attempts one SyncPending makes per user
// before leaving it for the next run. Defaults: 200ms, 30s, 4.
func WithRetry(initial, max time.Duration, tries uint) Option {
	return func(m *Manager) error {
		if initial <= 0 || max < initial || tries == 0 {
			return fmt.Errorf("consent: WithRetry(%v, %v, %d): want 0 < initial <= max and tries > 0", initial, max, tries)
		}
		m.retryInitial, m.retryMax, m.retryTries = initial, max, tries
		return nil
	}
}

// WithOwner names this Manager in the outbox claims it takes. The default,
// steward.NewOwner(), is unique per process and Manager; give two Managers
// one name only if they must not sync at the same time.
func WithOwner(owner string) Option {
	return func(m *Manager) error {
		if err := ValidateClaim(owner, time.Second); err != nil {
			return fmt.Errorf("consent: WithOwner: %w", err)
		}
		m.owner = owner
		return nil
	}
}

// WithClaimTTL sets how long a claim on a user's sync lasts by the
// store's clock before another instance may take it over (default
// DefaultClaimTTL). While the identity provider is called, the claim is
// renewed every third of ttl; a sync that cannot renew it for a whole ttl
// is cancelled. Keep ttl well above the store's usual round trip.
func WithClaimTTL(ttl time.Duration) Option {
	return func(m *Manager) error {
		if err := ValidateClaim("owner", ttl); err != nil {
			return fmt.Errorf("consent: WithClaimTTL: %w", err)
		}
		m.claimTTL = ttl
		return nil
	}
}

// NewManager returns a Manager over store, mirroring to idp. The built-in
// purposes are registered with minimum policy version 0.
func NewManager(store Store, idp steward.IdentityProvider, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, errors.New("consent: NewManager: store is nil")
	}
	if idp == nil {
		return nil, errors.New("consent: NewManager: identity provider is nil")
	}
	m := &Manager{
		store:        store,
		idp:          idp,
		purposes:     map[Purpose]int{Marketing: 0, Analytics: 0, ThirdParty: 0},
		now:          time.Now,
		retryInitial: 200 * time.Millisecond,
		retryMax:     30 * time.Second,
		retryTries:   4,
		batch:        DefaultClaimLimit,
		claimTTL:     DefaultClaimTTL,
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.outbox == nil {
		o, ok := store.(Outbox)
		if !ok {
			return nil, errors.New("consent: NewManager: the store is not an Outbox; pass WithOutbox")
		}
		m.outbox = o
	}
	if m.owner == "" {
		m.owner = steward.NewOwner()
	}
	if err := m.startTelemetry(); err != nil {
		return nil, err
	}
	return m, nil
}

// Purposes returns the registered purposes and their minimum policy
// versions.
func (m *Manager) Purposes() map[Purpose]int {
	out := make(map[Purpose]int, len(m.purposes))
	for p, v := range m.purposes {
		out[p] = v
	}
	return out
}

func (m *Manager) checkPurpose(p Purpose) error {
	if _, ok := m.purposes[p]; !ok {
		if err := p.Validate(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q", ErrUnknownPurpose, p)
	}
	return nil
}

// Update records changes (purpose → granted) for userID, writes a
// consent_change audit event, and mirrors the resulting state to the
// identity provider under the user's outbox claim. When another sync, in
// this process or another, holds the claim, Update leaves the entry due
// and writes nothing: that sync sees the entry re-enqueued when it
// finishes and writes the latest state. The records are appended all or
// nothing; a failed mirror is not an error of Update: the user stays in
// the outbox and SyncPending retries it. It returns the user's new
// current state.
//
// The audit event is written first: when it cannot be (the audit sink
// is down and the logger fails closed), nothing is recorded. With
// WithFence, a user whose erasure has begun is refused with an error
// matching privacy.ErrFenced (privacy.ErrErased once erased); a change
// recorded while the erasure opened is removed again and refused too.
func (m *Manager) Update(ctx context.Context, userID string, changes map[Purpose]bool, meta Meta) (State, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, fmt.Errorf("%w: no purposes to change", ErrInvalidRecord)
	}
	for _, p := range sortedPurposes(changes) {
		if err := m.checkPurpose(p); err != nil {
			return nil, err
		}
	}
	if meta.PolicyVersion < 0 {
		return nil, fmt.Errorf("%w: PolicyVersion is negative", ErrInvalidRecord)
	}
	if len(meta.Source) > MaxSourceLen {
		return nil, fmt.Errorf("%w: Source is %d bytes long (max %d)", ErrInvalidRecord, len(meta.Source), MaxSourceLen)
	}
	if meta.Source == "" {
		meta.Source = "api"
	}
	actor := meta.Actor
	if actor == "" {
		actor = userID
	}
	if m.fence != nil {
		if err := m.fence.CheckFence(ctx, userID); err != nil {
			return nil, fmt.Errorf("consent: nothing recorded: %w", err)
		}
	}
	now, err := m.recordTime(ctx, userID)
	if err != nil {
		return nil, err
	}
	records := make([]Record, 0, len(changes))
	details := make(map[string]any, len(changes))
	for _, p := range sortedPurposes(changes) {
		records = append(records, Record{UserID: userID, Purpose: p, Granted: changes[p],
			PolicyVersion: meta.PolicyVersion, Source: meta.Source, Actor: actor, Time: now})
		details[string(p)] = changes[p]
	}
	// Audit before effect: a change the trail cannot show is not made.
	if m.audit != nil {
		err := m.audit.Log(ctx, audit.Event{
			Type: audit.ConsentChange, Subject: userID, Actor: actor,
			Details: map[string]any{"changes": details, "policyVersion": meta.PolicyVersion, "source": meta.Source},
		})
		if err != nil {
			return nil, fmt.Errorf("consent: nothing recorded: the audit event could not be written: %w", err)
		}
	}
	// Queue the sync before appending, so that a crash after the append
	// still leaves it queued; it comes due after queueGrace, so no runner
	// syncs the unchanged state while the records are written.
	early, err := m.outbox.Enqueue(ctx, userID, now.Add(queueGrace))
	if err != nil {
		m.notRecorded(ctx, userID, actor)
		return nil, fmt.Errorf("consent: queueing the sync, nothing recorded: %w", err)
	}
	if err := m.store.Append(ctx, records...); err != nil {
		m.unqueue(context.WithoutCancel(ctx), userID, early, now.Add(queueGrace))
		m.notRecorded(ctx, userID, actor)
		return nil, fmt.Errorf("consent: recording the change: %w", err)
	}
	// Checked again after the append: if the erasure opened before this
	// check, it may already have erased the store, so the change is
	// removed here; if after, the erasure removes it.
	if m.fence != nil {
		if ferr := m.fence.CheckFence(ctx, userID); ferr != nil {
			if _, err := m.store.Erase(context.WithoutCancel(ctx), userID, m.keepProof()); err != nil {
				return nil, fmt.Errorf("consent: the user's erasure began while the change was recorded, and removing it failed: %w", errors.Join(ferr, err))
			}
			return nil, fmt.Errorf("consent: the user's erasure began while the change was recorded; it was removed: %w", ferr)
		}
	}
	// Queue it again, due now: a sync that read the state before these
	// records saw an older Version, so its Done fails with ErrSuperseded
	// and it syncs again.
	if _, qerr := m.outbox.Enqueue(ctx, userID, now); qerr != nil {
		return nil, fmt.Errorf("consent: the change is recorded, but queueing its sync after it failed; the mirror may lag until the user's next change: %w", qerr)
	}
	// Sync now if no other sync holds the user; one that does sees the
	// new Version when it finishes and writes this change. The change is
	// recorded and queued, so a rate limit at the provider (Clerk allows
	// ten metadata updates per user in ten seconds) is left to the
	// outbox rather than waited out here, where the caller waits.
	sctx, cancel := m.settling(ctx)
	cs, err := m.outbox.Claim(sctx, ClaimQuery{Owner: m.owner, TTL: m.claimTTL, Now: now, Limit: 1, UserID: userID})
	cancel()
	if err == nil && len(cs) == 1 {
		_ = m.syncClaimed(privacy.DeferRateLimits(ctx), cs[0], 1)
	}
	return m.store.Current(ctx, userID)
}

// recordTime is the time of a change to userID's consent: the Manager's
// clock, but never at or before the user's latest record. The latest record
// by time decides the state, and instances' clocks disagree by seconds, so a
// withdrawal recorded after a grant by an instance whose clock is behind
// must still come after it.
func (m *Manager) recordTime(ctx context.Context, userID string) (time.Time, error) {
	now := m.now().UTC().Truncate(time.Microsecond)
	cur, err := m.store.Current(ctx, userID)
	if err != nil {
		return time.Time{}, fmt.Errorf("consent: reading the current state, nothing recorded: %w", err)
	}
	for _, r := range cur {
		if !r.Time.Before(now) {
			now = r.Time.UTC().Truncate(time.Microsecond).Add(time.Microsecond)
		}
	}
	return now, nil
}

// notRecorded writes a consent_change event saying that the change
// audited just before was not recorded after all (best effort).
func (m *Manager) notRecorded(ctx context.Context, userID, actor string) {
	if m.audit != nil {
		_ = m.audit.Log(context.WithoutCancel(ctx), audit.Event{Type: audit.ConsentChange, Subject: userID, Actor: actor,
			Details: map[string]any{"status": "not_recorded"}})
	}
}

// keepProof is the keep function of the DataStore's KeepProof, or nil.
func (m *Manager) keepProof() func(Record) (Record, bool) {
	h := m.proof.Load()
	if h == nil {
		return nil
	}
	return (&historyStore{proof: h.p}).keepFor
}

// unqueue takes back the entry Update queued before an append that
// failed, unless a newer change or another sync has it.
func (m *Manager) unqueue(ctx context.Context, userID string, version int64, due time.Time) {
	cs, err := m.outbox.Claim(ctx, ClaimQuery{Owner: m.owner, TTL: m.claimTTL, Now: due, Limit: 1, UserID: userID})
	if err != nil || len(cs) == 0 {
		return
	}
	if cs[0].Version == version && m.outbox.Done(ctx, cs[0]) == nil {
		return
	}
	_ = m.outbox.Release(ctx, cs[0])
}

// WithdrawAll withdraws consent for every registered purpose in one call
// (GDPR Art. 7(3): as easy as giving it).
func (m *Manager) WithdrawAll(ctx context.Context, userID string, meta Meta) (State, error) {
	changes := make(map[Purpose]bool, len(m.purposes))
	for p := range m.purposes {
		changes[p] = false
	}
	return m.Update(ctx, userID, changes, meta)
}

// Allowed reports whether userID has granted purpose under at least the
// purpose's minimum policy version. No record means not allowed.
func (m *Manager) Allowed(ctx context.Context, userID string, purpose Purpose) (bool, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return false, err
	}
	if err := m.checkPurpose(purpose); err != nil {
		return false, err
	}
	st, err := m.store.Current(ctx, userID)
	if err != nil {
		return false, err
	}
	return st.Granted(purpose, m.purposes[purpose]), nil
}

// Current returns the user's current state.
func (m *Manager) Current(ctx context.Context, userID string) (State, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return nil, err
	}
	return m.store.Current(ctx, userID)
}

// At returns the user's state at t, which Art. 7(1) asks a controller to
// be able to demonstrate.
func (m *Manager) At(ctx context.Context, userID string, t time.Time) (State, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return nil, err
	}
	return m.store.At(ctx, userID, t)
}

// History streams the user's records in the order they were made.
func (m *Manager) History(ctx context.Context, userID string) iter.Seq2[Record, error] {
	if err := steward.ValidateUserID(userID); err != nil {
		return func(yield func(Record, error) bool) { yield(Record{}, err) }
	}
	return m.store.History(ctx, userID)
}

// MetadataKey is the public-metadata key the consent mirror is written
// under.
const MetadataKey = "consent"

// Mirror returns the public-metadata value the Manager writes for st, in
// the shape {marketing, analytics, thirdParty, updatedAt}.
// Application-defined purposes are not mirrored (the store is the
// record; the mirror serves clients reading the session).
func (m *Manager) Mirror(st State) map[string]any {
	updated := st.UpdatedAt()
	return map[string]any{
		"marketing":  st.Granted(Marketing, m.purposes[Marketing]),
		"analytics":  st.Granted(Analytics, m.purposes[Analytics]),
		"thirdParty": st.Granted(ThirdParty, m.purposes[ThirdParty]),
		"updatedAt":  updated.UTC().Format(time.RFC3339),
	}
}

// value is what the mirror of st is: nil (remove the key) for a user
// with no records, such as one erased.
func (m *Manager) value(st State) any {
	if len(st) == 0 {
		return nil
	}
	return m.Mirror(st)
}

// write sends one mirror value. A user the provider does not know is
// done: there is nothing left to mirror to.
func (m *Manager) write(ctx context.Context, userID string, value any) error {
	err := m.idp.UpdateMetadata(ctx, userID, steward.MetadataPatch{Public: map[string]any{MetadataKey: value}})
	if errors.Is(err, steward.ErrUserNotFound) {
		return nil
	}
	return err
}

// errHandedOver reports a sync whose claim passed to another instance
// after its write was confirmed: that instance syncs what is newer.
var errHandedOver = errors.New("consent: the sync was handed over")

// syncClaimed mirrors c's user under the claim c until its outbox entry
// is done: it reads the latest stored state, writes it (up to tries
// times, with backoff) while renewing the claim, and ends with Done. When
// Done finds the entry re-enqueued meanwhile, it renews the claim and
// goes round again, leaving out a write identical to the one just sent
// unless the entry is marked Rewrite. A failed write ends with Retry.
//
// Version is always read before the state, and Update enqueues after it
// appends, so a change the read missed makes Done fail with
// ErrSuperseded: no change is left unmirrored, and no older state is
// written after a newer one by the claim's holder.
func (m *Manager) syncClaimed(ctx context.Context, c Claim, tries uint) error {
	var sent any
	wrote := false
	for {
		st, err := m.store.Current(ctx, c.UserID)
		if err != nil {
			return m.fail(ctx, c, fmt.Errorf("consent: reading the state to mirror: %w", err))
		}
		value := m.value(st)
		if !wrote || c.Rewrite || !reflect.DeepEqual(value, sent) {
			err := m.renewing(ctx, c, func(ctx context.Context) error {
				_, err := backoff.Retry(ctx, func() (struct{}, error) {
					err := m.write(ctx, c.UserID, value)
					if err != nil && permanent(err) {
						return struct{}{}, backoff.Permanent(err)
					}
					return struct{}{}, err
				}, backoff.WithBackOff(m.expBackoff()), backoff.WithMaxTries(tries), backoff.WithMaxElapsedTime(0))
				return err
			})
			if err != nil {
				return m.fail(ctx, c, err)
			}
			sent, wrote = value, true
		}
		// What was written is settled even if ctx ends now.
		sctx, cancel := m.settling(ctx)
		err = m.outbox.Done(sctx, c)
		cancel()
		if !errors.Is(err, ErrSuperseded) {
			return err // nil, ErrLeaseLost (re-queued by Done), or the store's failure
		}
		if ctx.Err() != nil {
			m.release(ctx, []Claim{c}) // the newer change is left due for the next sync
			return ctx.Err()
		}
		sctx, cancel = m.settling(ctx)
		next, err := m.outbox.Renew(sctx, c, m.claimTTL)
		cancel()
		if errors.Is(err, steward.ErrLeaseLost) {
			return errHandedOver // Done saw the claim held after the write
		}
		if err != nil {
			return err // the claim lapses and another sync takes the entry
		}
		c = next
	}
}

// fail ends a sync whose write (or read) failed: the entry is retried
// after a backoff that grows with its attempts. It returns cause, joined
// with Retry's error when that failed; when the claim was lost, Retry
// has queued the entry again and the error matches steward.ErrLeaseLost.
func (m *Manager) fail(ctx context.Context, c Claim, cause error) error {
	next := m.now().Add(m.delay(c.Attempts + 1))
	sctx, cancel := m.settling(ctx)
	defer cancel()
	if err := m.outbox.Retry(sctx, c, next, cause.Error()); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// renewing runs f while renewing c every third of the claim TTL
// (steward.KeepAlive). When a renewal finds the claim lost, or none
// succeeds for a whole TTL, f's context is cancelled with a cause
// matching steward.ErrLeaseLost, and renewing returns that cause. A write
// that lands after its claim lapsed is caught afterwards: Done or Retry
// of a lost claim queues the entry again for a rewrite.
func (m *Manager) renewing(ctx context.Context, c Claim, f func(context.Context) error) error {
	kctx, stop := steward.KeepAlive(ctx, m.claimTTL, time.Now(), func(ctx context.Context) error {
		_, err := m.outbox.Renew(ctx, c, m.claimTTL)
		return err
	})
	err := f(kctx)
	if lost := stop(); lost != nil {
		return fmt.Errorf("consent: a sync's claim was lost while writing: %w", lost)
	}
	return err
}

// permanent reports whether err says retrying cannot help: an error with
// a Temporary method (such as clerkadapter.APIError) that answers false.
func permanent(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// SyncPending mirrors every user whose sync is due, each under a claim
// in the outbox, so it is safe to call from every instance at any
// frequency: a user claimed by another instance is left to it. Each sync
// writes the latest stored state, retried with exponential backoff (see
// WithRetry), and re-checks the entry after writing. Users that still
// fail stay in the outbox with a later due time, growing exponentially
// with their failed attempts. Once a user has failed every try, the rest
// of the round get one try each until one succeeds, so an outage costs
// one backoff, not one per user; an error whose Temporary method answers
// false is not retried within the round either. It returns how many
// users it synced and an error joining the failures; a sync whose claim
// was lost while writing is among them (matching steward.ErrLeaseLost),
// queued again for whoever holds the claim now.
func (m *Manager) SyncPending(ctx context.Context) (int, error) {
	ctx, span := m.tel.startSync(ctx)
	n, failed, err := m.syncPending(ctx)
	m.tel.syncDone(ctx, span, n, failed)
	return n, err
}

// syncPending is SyncPending inside its span; it also returns how many
// syncs failed.
func (m *Manager) syncPending(ctx context.Context) (int, int, error) {
	synced := 0
	var errs []error
	tries := m.retryTries
	for {
		if ctx.Err() != nil {
			return synced, len(errs), errors.Join(append(errs, ctx.Err())...)
		}
		// Not cancelled halfway: claims taken are always synced or
		// released, never left to lapse.
		sctx, cancel := m.settling(ctx)
		claims, err := m.outbox.Claim(sctx, ClaimQuery{Owner: m.owner, TTL: m.claimTTL, Now: m.now(), Limit: m.batch})
		cancel()
		if err != nil {
			return synced, len(errs), errors.Join(append(errs, err)...)
		}
		claimed := time.Now()
		progressed := false
		for i, c := range claims {
			if ctx.Err() != nil {
				m.release(ctx, claims[i:])
				return synced, len(errs), errors.Join(append(errs, ctx.Err())...)
			}
			// A claim that waited its turn for a third of its TTL is
			// renewed first; one taken over meanwhile is not written.
			if time.Since(claimed) > m.claimTTL/3 {
				sctx, cancel := m.settling(ctx)
				c, err = m.outbox.Renew(sctx, c, m.claimTTL)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						m.release(ctx, claims[i:])
						return synced, len(errs), errors.Join(append(errs, ctx.Err())...)
					}
					continue // taken over, or left to lapse
				}
			}
			err := m.syncClaimed(ctx, c, tries)
			switch {
			case err == nil:
				tries = m.retryTries
				synced++
				progressed = true
			case errors.Is(err, errHandedOver):
			case ctx.Err() != nil:
				m.release(ctx, claims[i+1:])
				return synced, len(errs), errors.Join(append(errs, ctx.Err())...)
			default:
				errs = append(errs, err)
				if !permanent(err) && !errors.Is(err, steward.ErrLeaseLost) {
					tries = 1 // the provider looks down: do not back off per user
				}
			}
		}
		if len(claims) < m.batch || !progressed {
			break
		}
	}
	if len(errs) > 0 {
		return synced, len(errs), fmt.Errorf("consent: %d syncs failed: %w", len(errs), errors.Join(errs...))
	}
	return synced, 0, nil
}

// settling is ctx for a call to the outbox that takes or ends a claim: it
// goes on when ctx is cancelled, bounded by the claim TTL, so a claim is
// never taken without the caller knowing, nor left held by a sync that
// was stopped.
func (m *Manager) settling(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), m.claimTTL)
}

// release frees claims that were taken but not synced.
func (m *Manager) release(ctx context.Context, claims []Claim) {
	ctx, cancel := m.settling(ctx)
	defer cancel()
	for _, c := range claims {
		_ = m.outbox.Release(ctx, c)
	}
}

func (m *Manager) expBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = m.retryInitial
	b.MaxInterval = m.retryMax
	return b
}

// delay is how long a user that failed attempts times waits in the
// outbox: the backoff's interval for that attempt.
func (m *Manager) delay(attempts int) time.Duration {
	d := m.retryInitial
	for i := 1; i < attempts && d < m.retryMax; i++ {
		d *= 2
	}
	return min(d, m.retryMax)
}

// Run calls SyncPending every interval until ctx ends, and returns
// ctx.Err(). Errors of single runs go to onError when it is not nil;
// they never stop the loop. Start it in its own goroutine, in as many
// processes as you like: the outbox claims keep each user to one sync.
func (m *Manager) Run(ctx context.Context, interval time.Duration, onError func(error)) error {
	if interval <= 0 {
		return fmt.Errorf("consent: Run: interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.SyncPending(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
