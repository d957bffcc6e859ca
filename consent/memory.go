package consent

import (
	"context"
	"iter"
	"slices"
	"sync"
	"time"
)

// MemoryStore is an in-process Store and Outbox for tests and examples.
// The zero value is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	seq     int64
	records map[string][]Record
	outbox  map[string]Pending
	token   int64
}

var (
	_ Store  = (*MemoryStore)(nil)
	_ Outbox = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

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

// Enqueue implements Outbox.
func (m *MemoryStore) Enqueue(ctx context.Context, userID string, due time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil {
		m.outbox = map[string]Pending{}
	}
	m.token++
	m.outbox[userID] = Pending{UserID: userID, Token: m.token, Due: due.UTC()}
	return m.token, nil
}

// Due implements Outbox.
func (m *MemoryStore) Due(ctx context.Context, now time.Time, limit int) ([]Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	var out []Pending
	for _, p := range m.outbox {
		if !p.Due.After(now) {
			out = append(out, p)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Pending) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return int(a.Token - b.Token)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Retry implements Outbox.
func (m *MemoryStore) Retry(ctx context.Context, userID string, token int64, next time.Time, lastErr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.outbox[userID]; ok && p.Token == token {
		p.Attempts++
		p.Due = next.UTC()
		p.LastErr = lastErr
		m.outbox[userID] = p
	}
	return nil
}

// Done implements Outbox.
func (m *MemoryStore) Done(ctx context.Context, userID string, token int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.outbox[userID]; ok && p.Token == token {
		delete(m.outbox, userID)
	}
	return nil
}
