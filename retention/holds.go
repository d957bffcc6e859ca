package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// Hold keeps a user's data from retention sweeps and erasure: a
// litigation hold, an investigation, a legal retention duty.
type Hold struct {
	UserID string `json:"userId"`
	// Reason is shown in erasure results and reports; it must not hold
	// personal data.
	Reason   string    `json:"reason"`
	PlacedBy string    `json:"placedBy"`
	PlacedAt time.Time `json:"placedAt"`
}

// LogValue implements slog.LogValuer: a hold logs when it was placed,
// never the user ID, who placed it or its reason.
func (h Hold) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("hasUser", h.UserID != ""), slog.Time("placedAt", h.PlacedAt))
}

// ErrInvalidHold is wrapped by errors about a malformed Hold.
var ErrInvalidHold = errors.New("retention: invalid hold")

// Validate reports a missing field, naming it.
func (h Hold) Validate() error {
	if err := steward.ValidateUserID(h.UserID); err != nil {
		return fmt.Errorf("%w: UserID: %w", ErrInvalidHold, err)
	}
	switch {
	case strings.TrimSpace(h.Reason) == "":
		return fmt.Errorf("%w: Reason is empty", ErrInvalidHold)
	case h.PlacedBy == "":
		return fmt.Errorf("%w: PlacedBy is empty", ErrInvalidHold)
	case h.PlacedAt.IsZero():
		return fmt.Errorf("%w: PlacedAt is zero", ErrInvalidHold)
	}
	return nil
}

// HoldStore keeps legal holds. Implementations must be safe for
// concurrent use and pass the suite in package retentiontest.
type HoldStore interface {
	// Place puts a hold on the user, replacing any hold they had.
	Place(ctx context.Context, h Hold) error
	// Release lifts the user's hold; releasing a user with none is not
	// an error.
	Release(ctx context.Context, userID string) error
	// Get returns the user's hold and whether there is one.
	Get(ctx context.Context, userID string) (Hold, bool, error)
	// List returns every hold, ordered by user ID.
	List(ctx context.Context) ([]Hold, error)
}

// Checker adapts a HoldStore to privacy.HoldChecker, so erasure refuses
// held users: privacy.WithHoldChecker(retention.Checker{Holds: holds}).
type Checker struct{ Holds HoldStore }

var _ privacy.HoldChecker = Checker{}

// Held implements privacy.HoldChecker.
func (c Checker) Held(ctx context.Context, userID string) (bool, string, error) {
	if c.Holds == nil {
		// Fail closed: an unconfigured checker must not let erasure through.
		return false, "", errors.New("retention: Checker has no HoldStore")
	}
	h, ok, err := c.Holds.Get(ctx, userID)
	if err != nil || !ok {
		return false, "", err
	}
	return true, h.Reason, nil
}

// MemoryHolds is an in-process HoldStore and NoticeStore, for tests and
// single-process applications. The zero value is ready to use.
type MemoryHolds struct {
	mu      sync.Mutex
	holds   map[string]Hold
	notices map[string]Notice
}

// NewMemoryHolds returns an empty MemoryHolds, like the zero value; it
// is there for symmetry with the other in-memory stores.
func NewMemoryHolds() *MemoryHolds { return &MemoryHolds{} }

var (
	_ HoldStore   = (*MemoryHolds)(nil)
	_ NoticeStore = (*MemoryHolds)(nil)
)

// Place implements HoldStore.
func (m *MemoryHolds) Place(ctx context.Context, h Hold) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holds == nil {
		m.holds = map[string]Hold{}
	}
	h.PlacedAt = h.PlacedAt.UTC().Truncate(time.Microsecond) // as SQL stores keep it
	m.holds[h.UserID] = h
	return nil
}

// Release implements HoldStore.
func (m *MemoryHolds) Release(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.holds, userID)
	return nil
}

// Get implements HoldStore.
func (m *MemoryHolds) Get(ctx context.Context, userID string) (Hold, bool, error) {
	if err := ctx.Err(); err != nil {
		return Hold{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[userID]
	return h, ok, nil
}

// List implements HoldStore.
func (m *MemoryHolds) List(ctx context.Context) ([]Hold, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Hold, 0, len(m.holds))
	for _, h := range m.holds {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Hold) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
