package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stewardlabs/steward"
)

// NoticeState is where an inactivity notice stands.
type NoticeState string

// The states of a notice.
const (
	// NoticePending: claimed by a runner that is sending it now.
	NoticePending NoticeState = "pending"
	// NoticeSent: the user was told; it is never sent again for the same
	// spell of inactivity.
	NoticeSent NoticeState = "sent"
	// NoticeFailed: sending failed; the next run claims and sends it
	// again.
	NoticeFailed NoticeState = "failed"
)

// NoticeClaimTTL is how long a claimed notice stays claimed by the runner
// sending it. The Engine gives its Notifier half of it, so a claim does
// not run out while its notice is being sent; a runner that dies while
// notifying leaves the notice to be claimed and sent again once the claim
// has run out, since an unsent notice must not lead to an erasure.
const NoticeClaimTTL = 10 * time.Minute

// Notice is the durable record of one user's inactivity notice. It is
// written, claimed, before the notice is sent, so however many runners
// scan the same users each user is told once per spell of inactivity.
type Notice struct {
	UserID string
	// ActiveAt is the user's last activity the notice is about (to the
	// microsecond, UTC). A later activity makes a new notice due.
	ActiveAt time.Time
	State    NoticeState
	// Attempts counts the claims of this notice: 1 for the first.
	Attempts int
	// SentAt is when the notice was sent (by the sending Engine's
	// clock); zero unless State is NoticeSent.
	SentAt time.Time
	// Owner and Token identify the claim: Token grows with every claim
	// of the user's record, so a runner whose claim ran out and was taken
	// cannot record an outcome.
	Owner string
	Token int64
	// Expires is when the claim runs out, by the store's clock.
	Expires time.Time
}

// LogValue implements slog.LogValuer without the user ID or the claim's
// owner.
func (n Notice) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasUser", n.UserID != ""),
		slog.String("state", string(n.State)),
		slog.Int("attempts", n.Attempts),
		slog.Time("activeAt", n.ActiveAt),
	)
}

// NoticeStore keeps the records of inactivity notices: claimed by the
// store's clock before a notice is sent, so two runners never both
// notify a user. MemoryHolds (one process) and sqlstore's Holds (every
// process on the database) implement it. Implementations must be safe for
// concurrent use and pass retentiontest.RunNoticeStoreConformance.
type NoticeStore interface {
	// ClaimNotice claims the notice of userID about the inactivity since
	// activeAt for owner, for ttl by the store's clock. It claims
	// (claimed true; the notice pending, with a new Token) when the
	// store has no record of the user, when the record is about an
	// earlier activeAt (the user came back since: Attempts starts again
	// at 1), when its sending failed, or when its claim ran out
	// unfinished. Otherwise it changes nothing and returns the record
	// with claimed false: sent (SentAt says when), or pending under a
	// live claim, even one of the same owner. ActiveAt never moves back:
	// an earlier activeAt than the record's counts as the record's.
	ClaimNotice(ctx context.Context, userID string, activeAt time.Time, owner string, ttl time.Duration) (n Notice, claimed bool, err error)
	// FinishNotice records the outcome of the claim n: State NoticeSent
	// with SentAt, or NoticeFailed. It fails with ErrNoticeLost, changing
	// nothing, when n is no longer the record's claim (it ran out and
	// was claimed again, or it was finished already).
	FinishNotice(ctx context.Context, n Notice) error
	// ForgetNotice removes the record of userID (the user was erased).
	// Forgetting a user without one is not an error.
	ForgetNotice(ctx context.Context, userID string) error
}

// Errors of a NoticeStore.
var (
	// ErrInvalidNotice is wrapped by errors about unusable arguments of
	// ClaimNotice or FinishNotice; the message names the field.
	ErrInvalidNotice = errors.New("retention: invalid notice")
	// ErrNoticeLost is wrapped by FinishNotice when the claim is no
	// longer the record's.
	ErrNoticeLost = errors.New("retention: the notice's claim was lost")
)

// ValidateNoticeClaim checks the arguments of ClaimNotice; the error wraps
// ErrInvalidNotice and names the field.
func ValidateNoticeClaim(userID, owner string, ttl time.Duration) error {
	if err := steward.ValidateUserID(userID); err != nil {
		return fmt.Errorf("%w: UserID: %w", ErrInvalidNotice, err)
	}
	switch {
	case owner == "" || len(owner) > steward.MaxLeaseNameLen:
		return fmt.Errorf("%w: owner must be 1 to %d bytes", ErrInvalidNotice, steward.MaxLeaseNameLen)
	case ttl < time.Millisecond:
		return fmt.Errorf("%w: ttl %v is under a millisecond", ErrInvalidNotice, ttl)
	}
	return nil
}

// ValidateNoticeOutcome checks the argument of FinishNotice; the error
// wraps ErrInvalidNotice and names the field.
func ValidateNoticeOutcome(n Notice) error {
	if err := steward.ValidateUserID(n.UserID); err != nil {
		return fmt.Errorf("%w: UserID: %w", ErrInvalidNotice, err)
	}
	switch {
	case n.State != NoticeSent && n.State != NoticeFailed:
		return fmt.Errorf("%w: State must be %q or %q, not %q", ErrInvalidNotice, NoticeSent, NoticeFailed, n.State)
	case n.State == NoticeSent && n.SentAt.IsZero():
		return fmt.Errorf("%w: SentAt is zero for a sent notice", ErrInvalidNotice)
	case n.Owner == "" || n.Token <= 0:
		return fmt.Errorf("%w: Owner and Token must come from ClaimNotice", ErrInvalidNotice)
	}
	return nil
}

// ClaimNotice implements NoticeStore, by time.Now.
func (m *MemoryHolds) ClaimNotice(ctx context.Context, userID string, activeAt time.Time, owner string, ttl time.Duration) (Notice, bool, error) {
	if err := ValidateNoticeClaim(userID, owner, ttl); err != nil {
		return Notice{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Notice{}, false, err
	}
	activeAt = activeAt.UTC().Truncate(time.Microsecond) // as SQL stores keep it
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.notices == nil {
		m.notices = map[string]Notice{}
	}
	now := time.Now()
	cur, ok := m.notices[userID]
	n := Notice{UserID: userID, ActiveAt: activeAt, State: NoticePending, Attempts: 1, Owner: owner, Expires: now.Add(ttl)}
	switch {
	case !ok:
	case cur.ActiveAt.Before(activeAt):
		n.Token = cur.Token
	case cur.State == NoticeFailed || (cur.State == NoticePending && !now.Before(cur.Expires)):
		n.ActiveAt, n.Attempts, n.Token = cur.ActiveAt, cur.Attempts+1, cur.Token
	default:
		return cur, false, nil
	}
	n.Token++
	m.notices[userID] = n
	return n, true, nil
}

// FinishNotice implements NoticeStore.
func (m *MemoryHolds) FinishNotice(ctx context.Context, n Notice) error {
	if err := ValidateNoticeOutcome(n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.notices[n.UserID]
	if !ok || cur.State != NoticePending || cur.Owner != n.Owner || cur.Token != n.Token {
		return ErrNoticeLost
	}
	cur.State, cur.SentAt = n.State, time.Time{}
	if n.State == NoticeSent {
		cur.SentAt = n.SentAt.UTC().Truncate(time.Microsecond)
	}
	m.notices[n.UserID] = cur
	return nil
}

// ForgetNotice implements NoticeStore.
func (m *MemoryHolds) ForgetNotice(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.notices, userID)
	return nil
}
