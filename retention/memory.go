package retention

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Row is one record of a MemoryTarget.
type Row struct {
	Subject string // user ID; "" for rows that belong to nobody
	Time    time.Time
	Data    map[string]any
}

// LogValue implements slog.LogValuer: a row logs its time and whether it
// belongs to someone, never the user ID or its data.
func (r Row) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("hasUser", r.Subject != ""), slog.Time("time", r.Time), slog.Int("fields", len(r.Data)))
}

// MemoryTarget is an in-process Target (and Anonymiser) for tests and
// examples. The zero value is ready to use.
type MemoryTarget struct {
	mu   sync.Mutex
	rows []Row
}

var _ Anonymiser = (*MemoryTarget)(nil)

// NewMemoryTarget returns a MemoryTarget holding rows, like the zero
// value given them with Add.
func NewMemoryTarget(rows ...Row) *MemoryTarget {
	m := &MemoryTarget{}
	m.Add(rows...)
	return m
}

// Add appends rows.
func (m *MemoryTarget) Add(rows ...Row) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, rows...)
}

// Rows returns a copy of the rows.
func (m *MemoryTarget) Rows() []Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rows)
}

func expired(r Row, olderThan time.Time, exclude []string) bool {
	return r.Time.Before(olderThan) && (r.Subject == "" || !slices.Contains(exclude, r.Subject))
}

// Count implements Target.
func (m *MemoryTarget) Count(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rows {
		if expired(r, olderThan, exclude) {
			n++
		}
	}
	return n, nil
}

// Purge implements Target.
func (m *MemoryTarget) Purge(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	kept := m.rows[:0]
	for _, r := range m.rows {
		if n < limit && expired(r, olderThan, exclude) {
			n++
			continue
		}
		kept = append(kept, r)
	}
	clear(m.rows[len(kept):])
	m.rows = kept
	return n, nil
}

// CountIdentified implements Anonymiser.
func (m *MemoryTarget) CountIdentified(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rows {
		if r.Subject != "" && expired(r, olderThan, exclude) {
			n++
		}
	}
	return n, nil
}

// Anonymise implements Anonymiser: it clears Subject and Data.
func (m *MemoryTarget) Anonymise(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for i, r := range m.rows {
		if n < limit && r.Subject != "" && expired(r, olderThan, exclude) {
			m.rows[i].Subject, m.rows[i].Data = "", nil
			n++
		}
	}
	return n, nil
}
