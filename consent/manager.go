package consent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
)

// AuditLogger records audit events; *audit.Logger satisfies it and
// pseudonymises the user IDs it is given.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
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

// Manager records consent changes, answers Allowed, and mirrors each
// user's current consent to the identity provider's public metadata.
// It is safe for concurrent use.
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

	locks [64]sync.Mutex // one sync per user at a time; see lock
}

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
		batch:        100,
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
// identity provider. The records are appended all or nothing; a failed
// mirror is not an error of Update: the user stays in the outbox and
// SyncPending retries it. It returns the user's new current state.
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
	now := m.now().UTC().Truncate(time.Microsecond)
	records := make([]Record, 0, len(changes))
	details := make(map[string]any, len(changes))
	for _, p := range sortedPurposes(changes) {
		records = append(records, Record{UserID: userID, Purpose: p, Granted: changes[p],
			PolicyVersion: meta.PolicyVersion, Source: meta.Source, Actor: actor, Time: now})
		details[string(p)] = changes[p]
	}
	// Queue the sync before appending: a crash in between leaves at worst
	// a sync of an unchanged state, never a change that is not mirrored.
	token, err := m.outbox.Enqueue(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("consent: queueing the sync, nothing recorded: %w", err)
	}
	if err := m.store.Append(ctx, records...); err != nil {
		_ = m.outbox.Done(context.WithoutCancel(ctx), userID, token)
		return nil, fmt.Errorf("consent: recording the change: %w", err)
	}
	if m.audit != nil {
		err := m.audit.Log(ctx, audit.Event{
			Type: audit.ConsentChange, Subject: userID, Actor: actor,
			Details: map[string]any{"changes": details, "policyVersion": meta.PolicyVersion, "source": meta.Source},
		})
		if err != nil {
			// The sync stays queued, so the mirror still follows.
			return nil, fmt.Errorf("consent: the change is recorded but its audit event is not: %w", err)
		}
	}
	if err := m.sync(ctx, userID); err != nil {
		_ = m.outbox.Retry(ctx, userID, token, now.Add(m.retryInitial), err.Error())
	} else {
		_ = m.outbox.Done(ctx, userID, token)
	}
	return m.store.Current(ctx, userID)
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

// Mirror returns the public-metadata value the Manager writes for st: the
// data-handling guide's shape {marketing, analytics, thirdParty,
// updatedAt}. Application-defined purposes are not mirrored (the store is
// the record; the mirror serves clients reading the session).
func (m *Manager) Mirror(st State) map[string]any {
	updated := st.UpdatedAt()
	return map[string]any{
		"marketing":  st.Granted(Marketing, m.purposes[Marketing]),
		"analytics":  st.Granted(Analytics, m.purposes[Analytics]),
		"thirdParty": st.Granted(ThirdParty, m.purposes[ThirdParty]),
		"updatedAt":  updated.UTC().Format(time.RFC3339),
	}
}

// lock returns the mutex that serialises syncs of userID: one of a fixed
// set, so memory stays bounded however many users there are.
func (m *Manager) lock(userID string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(userID))
	return &m.locks[h.Sum32()%uint32(len(m.locks))]
}

// sync writes the user's current state to the identity provider. One
// sync per user runs at a time, and it reads the state inside the lock,
// so an older state can never overwrite a newer one from this Manager.
// A user with no records (erased) has the mirror removed.
func (m *Manager) sync(ctx context.Context, userID string) error {
	mu := m.lock(userID)
	mu.Lock()
	defer mu.Unlock()
	st, err := m.store.Current(ctx, userID)
	if err != nil {
		return err
	}
	var value any // nil removes the key
	if len(st) > 0 {
		value = m.Mirror(st)
	}
	err = m.idp.UpdateMetadata(ctx, userID, steward.MetadataPatch{Public: map[string]any{MetadataKey: value}})
	if errors.Is(err, steward.ErrUserNotFound) {
		return nil // the account is gone: nothing left to mirror to
	}
	return err
}

// permanent reports whether err says retrying cannot help: an error with
// a Temporary method (such as clerkadapter.APIError) that answers false.
func permanent(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// SyncPending mirrors every user whose sync is due, each retried with
// exponential backoff (see WithRetry). Users that still fail stay in the
// outbox with a later due time, growing exponentially with their failed
// attempts. Once a user has failed every try, the rest of the round get
// one try each until one succeeds, so an outage costs one backoff, not
// one per user; an error whose Temporary method answers false is not
// retried within the round either. It returns how many users were synced
// and an error joining the failures.
func (m *Manager) SyncPending(ctx context.Context) (int, error) {
	synced := 0
	var errs []error
	tries := m.retryTries
	for {
		due, err := m.outbox.Due(ctx, m.now(), m.batch)
		if err != nil {
			return synced, err
		}
		progressed := false
		for _, p := range due {
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				err := m.sync(ctx, p.UserID)
				if err != nil && permanent(err) {
					return struct{}{}, backoff.Permanent(err)
				}
				return struct{}{}, err
			}, backoff.WithBackOff(m.expBackoff()), backoff.WithMaxTries(tries), backoff.WithMaxElapsedTime(0))
			if err != nil {
				if ctx.Err() != nil {
					return synced, errors.Join(append(errs, ctx.Err())...)
				}
				errs = append(errs, err)
				if !permanent(err) {
					tries = 1 // the provider looks down: do not back off per user
				}
				next := m.now().Add(m.delay(p.Attempts + 1))
				if rerr := m.outbox.Retry(ctx, p.UserID, p.Token, next, err.Error()); rerr != nil {
					errs = append(errs, rerr)
				}
				continue
			}
			tries = m.retryTries
			if err := m.outbox.Done(ctx, p.UserID, p.Token); err != nil {
				errs = append(errs, err)
				continue
			}
			synced++
			progressed = true
		}
		if len(due) < m.batch || !progressed {
			break
		}
	}
	if len(errs) > 0 {
		return synced, fmt.Errorf("consent: %d syncs failed: %w", len(errs), errors.Join(errs...))
	}
	return synced, nil
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
// they never stop the loop. Start it in its own goroutine, in one process.
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
