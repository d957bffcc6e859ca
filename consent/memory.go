package consent

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
)

// MemoryStore is an in-process Store and Outbox for tests, examples and
// single-process applications: several Managers in one process may share
// it, and its claims hold between them, but nothing is shared with another
// process. Claims expire by its clock (time.Now unless WithStoreClock says
// otherwise). The zero value is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	now     func() time.Time
	seq     int64
	records map[string][]Record
	outbox  map[string]Claim // Owner empty: not claimed
	tokens  int64            // versions and claim tokens
}

var (
	_ Store  = (*MemoryStore)(nil)
	_ Outbox = (*MemoryStore)(nil)

	_ OutboxDepth = (*MemoryStore)(nil)
)

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// WithStoreClock sets the clock a MemoryStore judges claims by.
func WithStoreClock(now func() time.Time) MemoryOption {
	return func(m *MemoryStore) { m.now = now }
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	m := &MemoryStore{}
	for _, o := range opts {
		o(m)
	}
	return m
}

func (m *MemoryStore) clock() time.Time {
	if m.now == nil {
		return time.Now()
	}
	return m.now()
}

// Append implements Store.
func (m *MemoryStore) Append(ctx context.Context, records ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range records {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[string][]Record{}
	}
	for _, r := range records {
		m.seq++
		r.Seq = m.seq
		r.Time = r.Time.UTC()
		m.records[r.UserID] = append(m.records[r.UserID], r)
	}
	return nil
}

func (m *MemoryStore) snapshot(userID string) []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records[userID])
}

// History implements Store.
func (m *MemoryStore) History(ctx context.Context, userID string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Record{}, err)
			return
		}
		for _, r := range m.snapshot(userID) {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// At implements Store.
func (m *MemoryStore) At(ctx context.Context, userID string, t time.Time) (State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.IsZero() {
		return State{}, nil
	}
	return Latest(m.snapshot(userID), t), nil
}

// Current implements Store.
func (m *MemoryStore) Current(ctx context.Context, userID string) (State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return Latest(m.snapshot(userID), time.Time{}), nil
}

// Erase implements Store. It also drops the user's outbox entry.
func (m *MemoryStore) Erase(ctx context.Context, userID string, keep func(Record) (Record, bool)) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	erased := m.records[userID]
	kept, err := Kept(userID, erased, keep)
	if err != nil {
		return 0, err
	}
	delete(m.records, userID)
	delete(m.outbox, userID)
	for _, r := range kept {
		m.seq++
		r.Seq = m.seq
		r.Time = r.Time.UTC()
		m.records[r.UserID] = append(m.records[r.UserID], r)
	}
	return len(erased), nil
}

// Depth implements OutboxDepth.
func (m *MemoryStore) Depth(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outbox), nil
}

// Enqueue implements Outbox.
func (m *MemoryStore) Enqueue(ctx context.Context, userID string, due time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil {
		m.outbox = map[string]Claim{}
	}
	m.tokens++
	e := m.outbox[userID] // keeps the claim and Rewrite
	e.UserID, e.Version, e.Due, e.Attempts, e.LastErr = userID, m.tokens, due.UTC(), 0, ""
	m.outbox[userID] = e
	return e.Version, nil
}

// Claim implements Outbox.
func (m *MemoryStore) Claim(ctx context.Context, q ClaimQuery) ([]Claim, error) {
	if err := ValidateClaim(q.Owner, q.TTL); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultClaimLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	var free []Claim
	for _, e := range m.outbox {
		if (q.UserID == "" || e.UserID == q.UserID) && !e.Due.After(q.Now) && (e.Owner == "" || !now.Before(e.Expires)) {
			free = append(free, e)
		}
	}
	slices.SortFunc(free, func(a, b Claim) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	if len(free) > limit {
		free = free[:limit]
	}
	for i := range free {
		m.tokens++
		free[i].Owner, free[i].Token, free[i].Expires = q.Owner, m.tokens, now.Add(q.TTL)
		m.outbox[free[i].UserID] = free[i]
	}
	return free, nil
}

// held returns c's entry when c holds its claim.
func (m *MemoryStore) held(c Claim) (Claim, bool) {
	e, ok := m.outbox[c.UserID]
	return e, ok && e.Owner != "" && e.Owner == c.Owner && e.Token == c.Token
}

// Renew implements Outbox.
func (m *MemoryStore) Renew(ctx context.Context, c Claim, ttl time.Duration) (Claim, error) {
	if err := ValidateClaim(c.Owner, ttl); err != nil {
		return Claim{}, err
	}
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.held(c)
	if !ok {
		return Claim{}, fmt.Errorf("%w: the claim on a user's consent sync", steward.ErrLeaseLost)
	}
	e.Expires = m.clock().Add(ttl)
	m.outbox[c.UserID] = e
	return e, nil
}

// Release implements Outbox.
func (m *MemoryStore) Release(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.held(c); ok {
		e.Owner, e.Expires = "", time.Time{}
		m.outbox[c.UserID] = e
	}
	return nil
}

// Done implements Outbox.
func (m *MemoryStore) Done(ctx context.Context, c Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.held(c)
	switch {
	case ok && e.Version == c.Version:
		delete(m.outbox, c.UserID)
		return nil
	case ok:
		return ErrSuperseded
	}
	m.requeue(c)
	return fmt.Errorf("%w: the claim on a user's consent sync; queued again to rewrite the mirror", steward.ErrLeaseLost)
}

// Retry implements Outbox.
func (m *MemoryStore) Retry(ctx context.Context, c Claim, next time.Time, lastErr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.held(c)
	if !ok {
		m.requeue(c)
		return fmt.Errorf("%w: the claim on a user's consent sync; queued again to rewrite the mirror", steward.ErrLeaseLost)
	}
	if e.Version == c.Version {
		e.Attempts++
		e.Due = next.UTC()
		e.LastErr = lastErr
	}
	e.Owner, e.Expires = "", time.Time{}
	m.outbox[c.UserID] = e
	return nil
}

// requeue marks c's user for a rewrite after c lost its claim: a new
// Version, due no later than c was, the claim (someone else's) kept.
func (m *MemoryStore) requeue(c Claim) {
	if m.outbox == nil {
		m.outbox = map[string]Claim{}
	}
	m.tokens++
	e, ok := m.outbox[c.UserID]
	if !ok {
		e = Claim{Pending: Pending{UserID: c.UserID, Due: c.Due.UTC()}}
	} else if c.Due.Before(e.Due) {
		e.Due = c.Due.UTC()
	}
	e.Version, e.Rewrite = m.tokens, true
	m.outbox[c.UserID] = e
}

// Queued returns up to limit outbox entries (0: all), claimed or not,
// oldest due first, for inspection: what is still to be mirrored, how
// often it failed, and who is syncing it now.
func (m *MemoryStore) Queued(ctx context.Context, limit int) ([]Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	out := make([]Claim, 0, len(m.outbox))
	for _, e := range m.outbox {
		out = append(out, e)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Claim) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
