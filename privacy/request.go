package privacy

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stewardlabs/steward/audit"
)

// Kind says what a Request asks for.
type Kind string

// Request kinds. The values are stored, so they never change.
const (
	// KindErasure is a request to erase a user (GDPR Art. 17, CCPA
	// right to delete).
	KindErasure Kind = "erasure"
	// KindExport is a queued export (GDPR Art. 15 and 20, CCPA right to
	// know) started with StartExport.
	KindExport Kind = "export"
)

// Status is where a Request stands. The values are stored, so they never
// change.
type Status string

// Request statuses.
const (
	// StatusPending: received and not finished. A pending request that
	// nobody is working on (its process died) is picked up by
	// Service.ResumePending.
	StatusPending Status = "pending"
	// StatusPartial: a step failed after its retries. The request needs
	// attention (Service.NeedsAttention lists it) and is finished by
	// Service.Resume or Service.ResumePending.
	StatusPartial Status = "partial"
	// StatusHeld: the user is under a legal hold, so nothing was erased.
	// A later Erase or Resume checks the hold again.
	StatusHeld Status = "held"
	// StatusCompleted: every step is done. Terminal.
	StatusCompleted Status = "completed"
	// StatusCancelled: Service.Cancel closed the request (its Reason says
	// why), or, for an export, an erasure of its user did. Terminal.
	StatusCancelled Status = "cancelled"
	// StatusExpired: a completed export whose blob was deleted, because
	// it outlived WithExportTTL or its user was erased. Terminal.
	StatusExpired Status = "expired"
)

// Open reports whether a request with this status may still change:
// pending, partial and held requests are open; completed, cancelled and
// expired ones are finished. A user has at most one open erasure request
// and at most one pending (or partial) export.
func (s Status) Open() bool {
	return s == StatusPending || s == StatusPartial || s == StatusHeld
}

// Finished reports whether a request with this status is terminal:
// completed, cancelled or expired. A finished request names its user and
// actor by pseudonym only.
func (s Status) Finished() bool {
	return s == StatusCompleted || s == StatusCancelled || s == StatusExpired
}

// StepKind says what a Step touches. Steps run in the order of their
// kinds: stores, then the identity provider, then external services, then
// the audit record of the outcome.
type StepKind string

// Step kinds. The values are stored, so they never change.
const (
	StepStore    StepKind = "store"
	StepIdentity StepKind = "identity"
	StepExternal StepKind = "external"
	StepAudit    StepKind = "audit"
	StepExport   StepKind = "export"
	// StepFence opens the fence before anything is erased: the audit
	// record that the erasure starts, the lock at the identity provider
	// (Erased is 1 when the account was locked), and the invalidation of
	// cached roles.
	StepFence StepKind = "fence"
	// StepExports deletes the blobs of the user's queued exports and
	// closes those requests.
	StepExports StepKind = "exports"
	// StepFinal erases every DataStore and the user's exports once more,
	// after the identity and external services, so that rows written
	// mid-way do not survive; its Erased is what that second pass found.
	StepFinal StepKind = "final_pass"
	// StepLedger writes the user's entry in the Ledger.
	StepLedger StepKind = "ledger"
)

// phase orders step kinds.
func (k StepKind) phase() int {
	switch k {
	case StepFence:
		return -1
	case StepStore, StepExport, StepExports:
		return 0
	case StepIdentity:
		return 1
	case StepExternal:
		return 2
	case StepFinal:
		return 3
	case StepLedger:
		return 4
	default: // StepAudit
		return 5
	}
}

// destructive reports whether a step of this kind erases something.
func (k StepKind) destructive() bool {
	switch k {
	case StepStore, StepExports, StepIdentity, StepExternal, StepFinal:
		return true
	}
	return false
}

// StepStatus is where a Step stands.
type StepStatus string

// Step statuses. The values are stored, so they never change.
const (
	StepPending StepStatus = "pending"
	StepDone    StepStatus = "done"
	StepFailed  StepStatus = "failed"
)

// Step is one checkpointed unit of a Request: erasing one DataStore, the
// identity, one external service, or writing the audit record.
type Step struct {
	// Name is the DataStore's or ExternalService's name, the identity
	// provider's name (default "identity"), "audit" or "export".
	Name   string     `json:"name"`
	Kind   StepKind   `json:"kind"`
	Status StepStatus `json:"status"`
	// Attempts counts calls made, over every run of the request.
	Attempts int `json:"attempts"`
	// Erased is what the step removed: the DataStore's Erased.Count, 1
	// for the identity, 0 otherwise.
	Erased int `json:"erased"`
	// Error is the last failure, with the user ID redacted; empty once
	// the step is done. It may hold what a store or service said; it is
	// kept in the RequestStore, never written to an HTTP body.
	Error string `json:"error,omitempty"`
	// Outcome qualifies a done step: StepOutcomeNotFound for an identity the
	// provider did not know, StepOutcomeDeletedAtProvider for one deleted at
	// the provider before the request (a user.deleted webhook). The fence
	// step of a request made by Service.Replay holds "replay_of:" and the
	// ID of the request that erased the user before.
	Outcome   string    `json:"outcome,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Outcomes of done steps (Step.Outcome). The values are stored.
const (
	// StepOutcomeNotFound: the identity provider did not know the user, so
	// nothing was deleted there (Erased is 0).
	StepOutcomeNotFound = "identity_not_found"
	// StepOutcomeDeletedAtProvider: the account was deleted at the identity
	// provider before the request opened (its dashboard, a user.deleted
	// webhook); the step was recorded done without a call.
	StepOutcomeDeletedAtProvider = "deleted_at_provider"
)

// Request is a data-subject request the Service keeps in a RequestStore:
// an erasure, or a queued export. While it is open it holds the user ID
// in the clear, so that an interrupted erasure can be finished; keep the
// store as private as the data it erases. When it finishes (completed,
// cancelled or expired) the Service replaces UserID and a person's Actor
// by keyed pseudonyms ("hmac-sha256:<keyID>:<hex>", see Pseudonymous):
// what remains proves the request was answered without naming anyone.
type Request struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// UserID is the data subject: the user ID while the request is open,
	// its keyed pseudonym once it is finished.
	UserID string `json:"userId"`
	// Actor is who asked: the user, an administrator's user ID, or a
	// "system:" name; a person's ID becomes a pseudonym when the request
	// finishes. Empty when unknown.
	Actor  string `json:"actor,omitempty"`
	Regime Regime `json:"regime"`
	Status Status `json:"status"`
	// ReceivedAt is when the request was received; DueAt is when it must
	// be answered, from Regime.Deadline and any extension.
	ReceivedAt time.Time `json:"receivedAt"`
	DueAt      time.Time `json:"dueAt"`
	// ExtendedAt is when the deadline was extended (zero if never), and
	// ExtensionReason why; the data subject must be told both.
	ExtendedAt      time.Time `json:"extendedAt,omitzero"`
	ExtensionReason string    `json:"extensionReason,omitempty"`
	// Reason explains StatusHeld (the legal hold's reason),
	// StatusCancelled (why it was cancelled), or why a partial request
	// was flagged for review (Service.MarkForReview). It is for
	// operators: the HTTP handlers never show it to the data subject.
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// CompletedAt is when the request finished: completed, cancelled, or
	// (for an export) completed before it expired.
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// NotBefore is when an erasure's grace period ends (WithGracePeriod):
	// until then nothing is erased and the request may be cancelled by
	// its user. Zero without a grace period.
	NotBefore time.Time `json:"notBefore,omitzero"`
	// ExpiresAt is when a completed export's blob is deleted
	// (WithExportTTL).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Steps     []Step    `json:"steps"`
	// Location is where a completed export was written (the name given to
	// the BlobWriter); empty once it expired.
	Location string `json:"location,omitempty"`
	// Version is the store's revision of the request, for optimistic
	// concurrency: Create stores version 1, and Update succeeds only when
	// Version matches the stored one, which it then increments.
	Version int64 `json:"version"`
	// ClaimedBy names the worker running the request and ClaimExpires
	// when its claim lapses by the store's clock (see RequestClaimer);
	// both are empty when nobody has claimed it. Stores set them on Get
	// and List and ignore them on Create and Update.
	ClaimedBy    string    `json:"claimedBy,omitempty"`
	ClaimExpires time.Time `json:"claimExpires,omitzero"`
}

// LogValue implements slog.LogValuer: a request logs its ID, kind,
// status and times, never the user ID, the actor or the reasons.
func (r Request) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", r.ID),
		slog.String("kind", string(r.Kind)),
		slog.String("status", string(r.Status)),
		slog.String("regime", string(r.Regime)),
		slog.Time("receivedAt", r.ReceivedAt),
		slog.Time("dueAt", r.DueAt),
		slog.Bool("pseudonymous", r.Pseudonymous()),
		slog.Int64("version", r.Version),
	)
}

// Pseudonymous reports whether UserID is a keyed pseudonym rather than a
// user ID: the request is finished and no longer names its user.
func (r Request) Pseudonymous() bool { return strings.HasPrefix(r.UserID, audit.PseudonymPrefix) }

// Clone returns a deep copy of r.
func (r Request) Clone() Request {
	r.Steps = slices.Clone(r.Steps)
	return r
}

// Step returns a pointer to the step called name, or nil.
func (r *Request) Step(name string) *Step {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// Overdue reports whether r is still unanswered at now after its due
// date. Held and finished requests are answered.
func (r Request) Overdue(now time.Time) bool {
	return (r.Status == StatusPending || r.Status == StatusPartial) && now.After(r.DueAt)
}

// Regime is the law whose deadlines a request follows.
type Regime string

// Regimes. The values are stored, so they never change.
const (
	// GDPR: answer within one month of receipt, extendable by two further
	// months (Art. 12(3)).
	GDPR Regime = "gdpr"
	// CCPA: answer within 45 days, extendable once by 45 more days (Cal.
	// Civ. Code 1798.130).
	CCPA Regime = "ccpa"
)

// Validate reports an unknown regime, wrapping ErrInvalidRequest.
func (g Regime) Validate() error {
	switch g {
	case GDPR, CCPA:
		return nil
	}
	return fmt.Errorf("%w: Regime %q is not %q or %q", ErrInvalidRequest, string(g), GDPR, CCPA)
}

// Deadline returns the due date of a request received at t. A month ends
// on the same day of the next month, or on that month's last day when it
// has no such day (31 January → 28 or 29 February).
func (g Regime) Deadline(received time.Time) time.Time {
	if g == CCPA {
		return received.AddDate(0, 0, 45)
	}
	return addMonths(received, 1)
}

// Extend returns the due date after the one extension the regime allows:
// two more months for GDPR, 45 more days for CCPA.
func (g Regime) Extend(due time.Time) time.Time {
	if g == CCPA {
		return due.AddDate(0, 0, 45)
	}
	return addMonths(due, 2)
}

// addMonths adds n calendar months, clamping to the last day of the
// target month instead of overflowing into the next.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// RequestFilter selects requests for RequestStore.List. Zero fields do
// not filter.
type RequestFilter struct {
	Kind     Kind
	UserID   string
	Statuses []Status
	// DueBefore keeps requests with DueAt strictly before it.
	DueBefore time.Time
	// UpdatedBefore keeps requests with UpdatedAt strictly before it.
	UpdatedBefore time.Time
	// ExpiresBefore keeps requests with a non-zero ExpiresAt strictly
	// before it.
	ExpiresBefore time.Time
	// After, when its ID is set, keeps requests that come after it in
	// List's order (ReceivedAt, then ID): pass the Cursor of the last
	// request of a page to get the next page (keyset pagination).
	After Cursor
	// Limit caps how many requests are yielded; 0 means no cap.
	Limit int
}

// Cursor is a position in List's order: a request's ReceivedAt and ID.
// It holds no personal data, so it may travel in a URL.
type Cursor struct {
	ReceivedAt time.Time
	ID         string
}

// Cursor returns r's position in List's order.
func (r Request) Cursor() Cursor { return Cursor{ReceivedAt: r.ReceivedAt, ID: r.ID} }

// IsZero reports whether c is the zero Cursor, which does not filter.
func (c Cursor) IsZero() bool { return c.ID == "" }

// Before reports whether r comes after c in List's order: received
// later, or at the same time with a greater ID. Every request comes
// after the zero Cursor.
func (c Cursor) Before(r Request) bool {
	if c.IsZero() {
		return true
	}
	switch r.ReceivedAt.Compare(c.ReceivedAt) {
	case 1:
		return true
	case 0:
		return r.ID > c.ID
	}
	return false
}

// LogValue implements slog.LogValuer without the user ID.
func (f RequestFilter) LogValue() slog.Value {
	st := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		st[i] = string(s)
	}
	return slog.GroupValue(
		slog.String("kind", string(f.Kind)),
		slog.Bool("byUser", f.UserID != ""),
		slog.Any("statuses", st),
		slog.Bool("paged", !f.After.IsZero()),
		slog.Int("limit", f.Limit),
	)
}

// Matches reports whether r passes the filter (not its limit).
// In-memory stores use it so that all stores agree.
func (f RequestFilter) Matches(r Request) bool {
	switch {
	case f.Kind != "" && r.Kind != f.Kind,
		f.UserID != "" && r.UserID != f.UserID,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.Status),
		!f.DueBefore.IsZero() && !r.DueAt.Before(f.DueBefore),
		!f.UpdatedBefore.IsZero() && !r.UpdatedAt.Before(f.UpdatedBefore),
		!f.ExpiresBefore.IsZero() && (r.ExpiresAt.IsZero() || !r.ExpiresAt.Before(f.ExpiresBefore)),
		!f.After.Before(r):
		return false
	}
	return true
}

// RequestStore is the port to where the Service keeps requests and their
// checkpoints. It must be durable for erasure to survive a crash;
// MemoryRequestStore is not, and is for tests and examples.
//
// Implementations must be safe for concurrent use and pass the suite in
// package privacytest.
type RequestStore interface {
	// Create stores a new request with Version 1. It returns an error
	// wrapping ErrDuplicateRequest when the ID is taken, and one wrapping
	// ErrActiveRequest when r is an open erasure request and the user
	// already has one open, or a pending or partial export and the user
	// already has one of those; nothing is stored then.
	Create(ctx context.Context, r Request) error

	// Get returns the request with the given ID, or an error wrapping
	// ErrRequestNotFound.
	Get(ctx context.Context, id string) (Request, error)

	// Update replaces the stored request with r when the stored Version
	// equals r.Version, and increments the stored Version. Otherwise it
	// returns an error wrapping ErrConflict (someone else updated it
	// first) or ErrRequestNotFound, and changes nothing. The ID and Kind
	// of a request never change; UserID and Actor change only when the
	// Service replaces them by pseudonyms as the request finishes.
	Update(ctx context.Context, r Request) error

	// List yields the requests matching f, ordered by ReceivedAt then ID,
	// starting after f.After. Iteration stops at the first error, yielded
	// with a zero Request.
	List(ctx context.Context, f RequestFilter) iter.Seq2[Request, error]
}
