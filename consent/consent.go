package consent

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/stewardlabs/steward"
)

// Purpose names what a user consents to.
type Purpose string

// The built-in purposes: marketing messages, analytics, and sharing with
// third parties. Applications register more
// with WithPurpose.
const (
	Marketing  Purpose = "marketing"
	Analytics  Purpose = "analytics"
	ThirdParty Purpose = "third_party"
)

var purposeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate reports whether p is a well-formed purpose name: a lower-case
// letter followed by up to 63 lower-case letters, digits or '_'.
func (p Purpose) Validate() error {
	if !purposeName.MatchString(string(p)) {
		return fmt.Errorf("%w: %q (want a lower-case letter, then up to 63 of a-z 0-9 _)", ErrInvalidPurpose, p)
	}
	return nil
}

// Sentinel errors. Check them with errors.Is.
var (
	// ErrInvalidPurpose reports a malformed purpose name.
	ErrInvalidPurpose = errors.New("consent: invalid purpose")
	// ErrUnknownPurpose reports a purpose the Manager was not told about.
	ErrUnknownPurpose = errors.New("consent: unknown purpose")
	// ErrInvalidRecord reports a record with a missing or bad field.
	ErrInvalidRecord = errors.New("consent: invalid record")
)

// Record is one consent decision. Records are only ever appended: the
// current state of a user's consent is the latest record per purpose, and
// the state at any past time is the latest record at or before it.
type Record struct {
	UserID  string  `json:"userId"`
	Purpose Purpose `json:"purpose"`
	Granted bool    `json:"granted"`
	// PolicyVersion is the version of the privacy policy the user saw.
	PolicyVersion int `json:"policyVersion"`
	// Source says where the decision was made: "banner", "settings",
	// "api", "import", ...
	Source string `json:"source"`
	// Actor is who recorded it: the user themselves, or an operator.
	Actor string    `json:"actor,omitempty"`
	Time  time.Time `json:"time"`
	// Seq orders records with the same Time; stores assign it.
	Seq int64 `json:"seq"`
}

// LogValue implements slog.LogValuer: a record logs what was decided and
// when, never the user ID or the actor.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("purpose", string(r.Purpose)),
		slog.Bool("granted", r.Granted),
		slog.Int("policyVersion", r.PolicyVersion),
		slog.String("source", r.Source),
		slog.Time("time", r.Time),
		slog.Int64("seq", r.Seq),
	)
}

// Validate reports a missing or malformed field, wrapping
// ErrInvalidRecord. Stores call it before appending.
func (r Record) Validate() error {
	switch {
	case r.UserID == "":
		return fmt.Errorf("%w: UserID is empty", ErrInvalidRecord)
	case r.Purpose.Validate() != nil:
		return fmt.Errorf("%w: Purpose: %v", ErrInvalidRecord, r.Purpose.Validate())
	case r.Time.IsZero():
		return fmt.Errorf("%w: Time is zero", ErrInvalidRecord)
	case r.PolicyVersion < 0:
		return fmt.Errorf("%w: PolicyVersion is negative", ErrInvalidRecord)
	}
	return nil
}

// State is a user's consent at one moment: the deciding record per
// purpose. A purpose with no record has never been decided (not granted).
type State map[Purpose]Record

// LogValue implements slog.LogValuer: each purpose's decision, never the
// user ID or the actors.
func (s State) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(s))
	for _, p := range sortedPurposes(s) {
		attrs = append(attrs, slog.Bool(string(p), s[p].Granted))
	}
	return slog.GroupValue(attrs...)
}

// Granted reports whether p is granted in s (and was given under at least
// minVersion of the policy).
func (s State) Granted(p Purpose, minVersion int) bool {
	r, ok := s[p]
	return ok && r.Granted && r.PolicyVersion >= minVersion
}

// UpdatedAt is the time of the latest record in s.
func (s State) UpdatedAt() time.Time {
	var t time.Time
	for _, r := range s {
		if r.Time.After(t) {
			t = r.Time
		}
	}
	return t
}

// Store keeps consent records. It only appends; nothing is overwritten.
// Implementations must be safe for concurrent use and pass the suite in
// package consenttest.
type Store interface {
	// Append stores the records all or nothing, assigning each a Seq
	// greater than any before it.
	Append(ctx context.Context, records ...Record) error
	// History yields a user's records in the order they were appended.
	History(ctx context.Context, userID string) iter.Seq2[Record, error]
	// At returns the user's state at t: per purpose, the last record
	// whose Time is not after t. Current is At(now) with no time limit.
	At(ctx context.Context, userID string, t time.Time) (State, error)
	// Current returns the user's latest record per purpose.
	Current(ctx context.Context, userID string) (State, error)
	// Erase deletes all of a user's records and returns how many. When
	// keep is not nil it is called with each deleted record in append
	// order, and every record it returns with true is appended in the
	// same transaction (validated, and under a UserID other than userID),
	// so that minimal proof of consent can outlive the person's identity
	// (see KeepProof). All or nothing; erasing a user with no records
	// returns 0 and no error. keep must not call the store. The user's
	// outbox entry, if the store is also the Outbox, goes too.
	Erase(ctx context.Context, userID string, keep func(Record) (Record, bool)) (int, error)
}

// Kept applies keep to the records of userID being erased and validates
// the results: what Store.Erase appends in their place. Stores call it
// inside their erase transaction.
func Kept(userID string, erased []Record, keep func(Record) (Record, bool)) ([]Record, error) {
	if keep == nil {
		return nil, nil
	}
	var out []Record
	for _, r := range erased {
		k, ok := keep(r)
		if !ok {
			continue
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("consent: a record kept on erasure: %w", err)
		}
		if k.UserID == userID {
			return nil, fmt.Errorf("%w: a record kept on erasure still has the erased UserID", ErrInvalidRecord)
		}
		k.Seq = 0
		out = append(out, k)
	}
	return out, nil
}

// Outbox keeps users whose consent still has to be mirrored to the
// identity provider, and hands each to one sync at a time.
//
// A user is in it at most once: a later change supersedes an earlier
// pending one, since a sync always sends the latest state. An entry's
// Version grows with every Enqueue. A sync first claims the entry: the
// claim has an owner, a fencing Token that grows with every claim, and
// an expiry judged by the store's clock (the database's, for sqlstore),
// so instances whose clocks disagree still agree on who holds it. Done,
// Retry, Renew and Release act only for the claim's holder (same Owner
// and Token); a claim that expired is still its holder's until another
// owner takes it.
//
// Implementations must be safe for concurrent use by every process that
// shares them, and pass the Outbox cases of package consenttest.
type Outbox interface {
	// Enqueue marks userID as needing a sync at or after due, resetting
	// its attempts, and returns the entry's new Version. A claim on the
	// entry stays with its holder, who sees the new Version when it
	// finishes (Done fails with ErrSuperseded).
	Enqueue(ctx context.Context, userID string, due time.Time) (version int64, err error)
	// Claim takes, for q.Owner until the store's now plus q.TTL, up to
	// q.Limit entries due at q.Now whose claim is free or expired, oldest
	// due first, and returns them. Two calls, in any processes, never
	// both get one entry while its claim lasts, even for one owner. It
	// fails with an error matching steward.ErrInvalidLease when q.Owner
	// or q.TTL is unusable.
	Claim(ctx context.Context, q ClaimQuery) ([]Claim, error)
	// Renew extends c's claim to ttl from the store's now and returns it
	// with the entry as it is now: a newer Version when it was
	// re-enqueued, and Rewrite. It fails with steward.ErrLeaseLost when
	// c no longer holds the claim.
	Renew(ctx context.Context, c Claim, ttl time.Duration) (Claim, error)
	// Release frees c's claim, counting no attempt, so another sync may
	// take the entry at once. Use it only when nothing was written under
	// c. Releasing a claim that was lost does nothing and returns nil.
	Release(ctx context.Context, c Claim) error
	// Done ends a sync that wrote the state read after c.Version was
	// seen. When c holds the claim and the entry was not re-enqueued
	// since c.Version, the entry is removed. When it was re-enqueued,
	// the entry stays claimed by c and Done fails with ErrSuperseded:
	// Renew gives the new Version to sync. When c lost the claim, its
	// write may have overwritten a newer one, so Done queues the entry
	// again, due at once and marked Rewrite (creating it if it is gone),
	// and fails with steward.ErrLeaseLost.
	Done(ctx context.Context, c Claim) error
	// Retry ends a failed sync: when c holds the claim it frees it, and,
	// unless the entry was re-enqueued since c.Version (then the newer
	// change stays due as queued), counts a failed attempt, records
	// lastErr and makes the entry due at next. When c lost the claim it
	// does what Done does then: the failed write may have landed.
	Retry(ctx context.Context, c Claim, next time.Time, lastErr string) error
}

// ErrSuperseded is returned by Outbox.Done when the entry was re-enqueued
// after the claim's Version was read: a newer change still needs syncing,
// and the claim is kept for it.
var ErrSuperseded = errors.New("consent: outbox entry re-enqueued since it was read")

// ClaimQuery says which outbox entries to claim, and for whom.
type ClaimQuery struct {
	// Owner names the claimant, unique per process and Manager
	// (steward.NewOwner); 1 to steward.MaxLeaseNameLen bytes.
	Owner string
	// TTL is how long the claim lasts by the store's clock unless it is
	// renewed; at least a millisecond.
	TTL time.Duration
	// Now is the caller's time: entries due at or before it are taken.
	// Due times come from the caller's clock, claims' expiry from the
	// store's.
	Now time.Time
	// Limit bounds how many entries are taken; 0 or less means 100.
	Limit int
	// UserID, when not empty, takes only that user's entry.
	UserID string
}

// Pending is one outbox entry.
type Pending struct {
	UserID string
	// Version grows with every Enqueue of the user.
	Version  int64
	Due      time.Time
	Attempts int
	LastErr  string
	// Rewrite is set when a claim on the entry was lost after its holder
	// may have written the mirror: the mirror can hold an older state, so
	// the next write goes out even if it equals what its sync last sent.
	Rewrite bool
}

// LogValue implements slog.LogValuer without the user ID.
func (p Pending) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("version", p.Version),
		slog.Time("due", p.Due),
		slog.Int("attempts", p.Attempts),
		slog.Bool("rewrite", p.Rewrite),
	)
}

// LogValue implements slog.LogValuer without the user ID.
func (q ClaimQuery) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("oneUser", q.UserID != ""), slog.Int("limit", q.Limit), slog.Duration("ttl", q.TTL))
}

// Claim is an outbox entry claimed for one sync.
type Claim struct {
	Pending
	// Owner holds the claim; empty when nobody does.
	Owner string
	// Token is the claim's fencing token: it grows with every claim, so
	// a holder whose claim was taken over is refused even by an entry
	// that was since removed and queued again.
	Token int64
	// Expires is the store's time at which the claim lapses.
	Expires time.Time
}

// LogValue implements slog.LogValuer without the user ID.
func (c Claim) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("version", c.Version),
		slog.Int("attempts", c.Attempts),
		slog.Int64("token", c.Token),
		slog.Time("expires", c.Expires),
	)
}

// DefaultClaimLimit is how many entries Claim takes when ClaimQuery.Limit
// is 0 or less.
const DefaultClaimLimit = 100

// ValidateClaim checks the owner and ttl of a ClaimQuery or a Renew; the
// error matches steward.ErrInvalidLease and names the field.
func ValidateClaim(owner string, ttl time.Duration) error {
	return steward.ValidateLease("consent outbox", owner, ttl)
}

// Latest folds records into a state, keeping for each purpose the record
// with the greatest (Time, Seq) not after limit; a zero limit keeps all.
// Stores use it to answer At and Current.
func Latest(records []Record, limit time.Time) State {
	s := State{}
	for _, r := range records {
		if !limit.IsZero() && r.Time.After(limit) {
			continue
		}
		old, ok := s[r.Purpose]
		if !ok || r.Time.After(old.Time) || (r.Time.Equal(old.Time) && r.Seq > old.Seq) {
			s[r.Purpose] = r
		}
	}
	return s
}

// sortedPurposes returns the purposes of m in name order.
func sortedPurposes[V any](m map[Purpose]V) []Purpose {
	out := make([]Purpose, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
