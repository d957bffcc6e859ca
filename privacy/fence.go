package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
)

// Pseudonymizer makes the keyed pseudonyms that finished requests and
// the Ledger hold instead of user IDs; *audit.Pseudonymizer satisfies it.
type Pseudonymizer interface {
	// Pseudonym returns id's pseudonym under the active key.
	Pseudonym(id string) string
	// Pseudonyms returns id's pseudonyms under every key, the active one
	// first, so that entries made before a key rotation are found.
	Pseudonyms(id string) []string
	// KeyID names the active key.
	KeyID() string
}

// LedgerEntry is the record of one erased user that outlives the
// erasure request: a keyed pseudonym, never the user ID, with the key
// that made it, the request that erased the user and when.
type LedgerEntry struct {
	// Subject is the user's pseudonym, "hmac-sha256:<keyID>:<hex>".
	Subject string `json:"subject"`
	// KeyID names the key that made Subject.
	KeyID string `json:"keyId"`
	// RequestID is the erasure request that erased the user last.
	RequestID string `json:"requestId"`
	// ErasedAt is when that request completed.
	ErasedAt time.Time `json:"erasedAt"`
}

// LogValue implements slog.LogValuer; an entry holds no user ID, but its
// pseudonym is left out of logs too.
func (e LedgerEntry) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("keyId", e.KeyID),
		slog.String("requestId", e.RequestID),
		slog.Time("erasedAt", e.ErasedAt),
	)
}

// Ledger keeps one LedgerEntry per erased user, for ever: it fences the
// user after the request finished (their sessions and writes stay
// refused) and lets Service.Replay find them again after a backup was
// restored. It holds no personal data beyond keyed pseudonyms.
//
// A Ledger must outlive restores of the data it protects: keep it in a
// database that is not restored with the application's tables, or copy
// its entries out (ListErased) before a restore and back in after.
//
// MemoryRequestStore and sqlstore's Requests are Ledgers (the Service
// uses its RequestStore when it is one); sqlstore's Ledger keeps one in a
// database of its own. Implementations must be safe for concurrent use
// and pass the Ledger cases of package privacytest.
type Ledger interface {
	// RecordErased stores e, replacing the entry with the same Subject:
	// recording an erasure twice is not an error.
	RecordErased(ctx context.Context, e LedgerEntry) error
	// FindErased returns the entry of the first of subjects that is
	// recorded, and whether there is one.
	FindErased(ctx context.Context, subjects ...string) (LedgerEntry, bool, error)
	// ListErased yields every entry, ordered by Subject. Iteration stops
	// at the first error, yielded with a zero entry.
	ListErased(ctx context.Context) iter.Seq2[LedgerEntry, error]
}

// SubjectLister is an optional capability of a DataStore: it lists the
// user IDs it holds data of, so that Service.Replay can find erased users
// that a restored backup brought back. MemoryStore and sqldata's Store
// implement it; a DataStore without it is not searched by Replay.
type SubjectLister interface {
	// Subjects yields each user ID the store holds data of at least once.
	// Iteration stops at the first error, yielded with "".
	Subjects(ctx context.Context) iter.Seq2[string, error]
}

// RoleCache forgets what it caches about a user's role and account, so
// that the next request reads it afresh; clerkadapter.LiveRoles and
// clerkadapter.SessionAuth satisfy it.
type RoleCache interface {
	Invalidate(userID string)
}

// WithPseudonymizer sets the keys of the pseudonyms that finished
// requests and the Ledger hold. Give every key still needed to find an
// entry: the active one first, then those retired by a rotation
// (audit.NewPseudonymizer(active, retired...)). Without it the Service
// uses the audit logger's (WithAudit with an *audit.Logger), and without
// that a random key made at start: the Ledger then fences and replays
// users only for the life of the process.
func WithPseudonymizer(p Pseudonymizer) Option {
	return func(s *Service) error {
		if p == nil {
			return fmt.Errorf("%w: WithPseudonymizer: nil pseudonymizer", ErrInvalidConfig)
		}
		s.pseudo = p
		return nil
	}
}

// WithLedger sets where erased users are recorded (see Ledger). The
// default is the RequestStore when it is a Ledger. Without a Ledger, a
// user is fenced only while their request is open, and Replay fails.
func WithLedger(l Ledger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("%w: WithLedger: nil ledger", ErrInvalidConfig)
		}
		s.ledger = l
		return nil
	}
}

// WithRoleCache sets caches of users' roles to invalidate when an
// erasure of the user begins and when a request is cancelled, so that a
// cached account is not used meanwhile (clerkadapter.LiveRoles, or the
// SessionAuth that confirms claimed roles).
func WithRoleCache(caches ...RoleCache) Option {
	return func(s *Service) error {
		for i, c := range caches {
			if c == nil {
				return fmt.Errorf("%w: WithRoleCache: cache %d is nil", ErrInvalidConfig, i)
			}
		}
		s.caches = append(s.caches, caches...)
		return nil
	}
}

// WithGracePeriod delays the destructive steps of each new erasure
// request by d: the request is recorded at once, and nothing is erased
// (and the user is not fenced) before its Request.NotBefore, so that the
// user or an administrator can take it back with Cancel. The default, 0,
// erases at once. Requests opened by a user.deleted webhook
// (IdentityDeleted) and by Replay never wait.
func WithGracePeriod(d time.Duration) Option {
	return func(s *Service) error {
		if d < 0 {
			return fmt.Errorf("%w: WithGracePeriod: %v is negative", ErrInvalidConfig, d)
		}
		s.grace = d
		return nil
	}
}

// ephemeralPseudonymizer is the Service's key when it was given none.
func ephemeralPseudonymizer() Pseudonymizer {
	var b [32]byte
	_, _ = rand.Read(b[:])
	var id [4]byte
	_, _ = rand.Read(id[:])
	p, err := audit.NewPseudonymizer(audit.Key{ID: "ephemeral-" + hex.EncodeToString(id[:]), Secret: b[:]})
	if err != nil {
		panic(err) // a valid key by construction
	}
	return p
}

// CheckFence is the check an application makes before writing anything
// for userID, in one line:
//
//	if err := svc.CheckFence(ctx, userID); err != nil { return err }
//
// It returns nil when the user may be written for, an error matching
// ErrFenced while an erasure of the user is open (from the moment it
// opens, or from the end of its grace period), one matching ErrErased
// (and ErrFenced) once the user is in the Ledger, and the store's error
// when it cannot tell; refuse the write on any error. The answer comes
// from the RequestStore and the Ledger, so it holds across every
// instance sharing them. Consent changes, queued exports and
// clerkadapter's session middleware make the same check.
//
// A write that raced with an erasure is safe when the check comes after
// the write: if the check passes, the write happened before the erasure
// opened, and the erasure's stores (or its final pass) remove it; if it
// fails, undo the write.
func (s *Service) CheckFence(ctx context.Context, userID string) error {
	if err := steward.ValidateUserID(userID); err != nil {
		return fmt.Errorf("privacy: fence: %w", err)
	}
	now := s.clock()
	for r, err := range s.requests.List(ctx, RequestFilter{Kind: KindErasure, UserID: userID, Statuses: openStatuses, Limit: 1}) {
		if err != nil {
			return redactErr(fmt.Errorf("privacy: fence: %w", err), userID)
		}
		if !r.NotBefore.IsZero() && now.Before(r.NotBefore) {
			break // in its grace period
		}
		return fmt.Errorf("%w: request %q", ErrFenced, r.ID)
	}
	if s.ledger == nil {
		return nil
	}
	e, ok, err := s.ledger.FindErased(ctx, s.pseudo.Pseudonyms(userID)...)
	if err != nil {
		return redactErr(fmt.Errorf("privacy: fence: ledger: %w", err), userID)
	}
	if ok {
		return fmt.Errorf("%w: by request %q", ErrErased, e.RequestID)
	}
	return nil
}

// openStatuses are the statuses of an open request.
var openStatuses = []Status{StatusPending, StatusPartial, StatusHeld}

// pseudonymize replaces r's user ID and a person's actor by pseudonyms;
// values already pseudonymous stay.
func (s *Service) pseudonymize(r *Request) {
	if !strings.HasPrefix(r.UserID, audit.PseudonymPrefix) {
		r.UserID = s.pseudo.Pseudonym(r.UserID)
	}
	if r.Actor != "" && !strings.HasPrefix(r.Actor, audit.SystemActorPrefix) && !strings.HasPrefix(r.Actor, audit.PseudonymPrefix) {
		r.Actor = s.pseudo.Pseudonym(r.Actor)
	}
}

// owns reports whether userID is r's subject, in the clear or by any of
// its pseudonyms.
func (s *Service) owns(r Request, userID string) bool {
	if userID == "" {
		return false
	}
	if r.UserID == userID {
		return true
	}
	if !r.Pseudonymous() {
		return false
	}
	for _, p := range s.pseudo.Pseudonyms(userID) {
		if p == r.UserID {
			return true
		}
	}
	return false
}

// invalidate drops userID from every RoleCache.
func (s *Service) invalidate(userID string) {
	for _, c := range s.caches {
		c.Invalidate(userID)
	}
}

// ReplayActor is the audit actor of erasures started by Replay.
const ReplayActor = audit.SystemActorPrefix + "privacy/replay"

// Replay erases again every user the Ledger holds whom a DataStore (one
// that is a SubjectLister) or the identity provider knows: run it after
// every restore of a backup, which brings erased people back. Each such
// user gets a new erasure request (no grace period), so every step is
// checkpointed and audited as usual; its data_deletion events carry
// "replayOf", the request that erased the user before. Users the Ledger
// does not hold are never touched. It returns how many users it erased
// and the errors of the others, joined.
//
// Replay needs a Ledger that survived the restore (see Ledger) and the
// keys its entries were made with (WithPseudonymizer, after a rotation).
// It reads every subject of the listing stores and every user of the
// provider; entries are kept in memory, one per erased user.
func (s *Service) Replay(ctx context.Context) (int, error) {
	if s.ledger == nil {
		return 0, fmt.Errorf("%w: Replay needs a Ledger (WithLedger)", ErrInvalidConfig)
	}
	erased := map[string]LedgerEntry{}
	for e, err := range s.ledger.ListErased(ctx) {
		if err != nil {
			return 0, fmt.Errorf("privacy: replay: reading the ledger: %w", err)
		}
		erased[e.Subject] = e
	}
	if len(erased) == 0 {
		return 0, nil
	}
	found := map[string]string{} // user ID → request that erased them
	var order []string
	check := func(id string) {
		if _, seen := found[id]; seen || steward.ValidateUserID(id) != nil {
			return
		}
		for _, p := range s.pseudo.Pseudonyms(id) {
			if e, ok := erased[p]; ok {
				found[id] = e.RequestID
				order = append(order, id)
				return
			}
		}
	}
	for _, st := range s.stores {
		l, ok := st.(SubjectLister)
		if !ok {
			continue
		}
		for id, err := range l.Subjects(ctx) {
			if err != nil {
				return 0, fmt.Errorf("privacy: replay: listing the subjects of store %q: %w", st.Name(), err)
			}
			check(id)
		}
	}
	for u, err := range s.idp.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			return 0, fmt.Errorf("privacy: replay: listing the identity provider's users: %w", err)
		}
		check(u.ID)
	}
	n := 0
	var errs []error
	for _, id := range order {
		res, err := s.Erase(ctx, id, RequestedBy(ReplayActor), SkipGracePeriod(), replayOf(found[id]))
		if err != nil {
			errs = append(errs, fmt.Errorf("privacy: replay: request %q: %w", res.RequestID, redactErr(err, id)))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		n++
	}
	if s.tel.log != nil {
		s.tel.log.LogAttrs(ctx, slog.LevelInfo, "privacy: replay erased again the users a restore brought back",
			slog.Int("erased", n), slog.Int("failed", len(errs)))
	}
	return n, errors.Join(errs...)
}
