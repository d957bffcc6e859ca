package audit

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
)

// MemorySink keeps events in memory, in sequence order. It is a Sink and a
// Reader, safe for concurrent use; tests and examples read it back with
// Snapshot or Events.
type MemorySink struct {
	mu     sync.RWMutex
	events []Event // sorted by Sequence, unique
}

var (
	_ Sink   = (*MemorySink)(nil)
	_ Reader = (*MemorySink)(nil)
)

// NewMemorySink returns an empty MemorySink.
func NewMemorySink() *MemorySink { return &MemorySink{} }

// Write stores events all or nothing. It fails with ErrDuplicateSequence
// when a sequence number is already stored or repeats within events, with
// ErrInvalidEvent for sequence 0, and with ctx's error when ctx is done.
// Details maps are stored as given, not copied.
func (s *MemorySink) Write(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var last uint64
	if n := len(s.events); n > 0 {
		last = s.events[n-1].Sequence
	}
	increasing := true
	for i, e := range events {
		if e.Sequence == 0 {
			return fmt.Errorf("%w: sequence 0", ErrInvalidEvent)
		}
		if i > 0 && e.Sequence <= events[i-1].Sequence {
			increasing = false
		}
	}
	if increasing && events[0].Sequence > last {
		s.events = append(s.events, events...)
		return nil
	}
	// Slow path: out of order or interleaved with stored events.
	batch := slices.Clone(events)
	slices.SortFunc(batch, func(a, b Event) int { return cmpSeq(a.Sequence, b.Sequence) })
	for i, e := range batch {
		if i > 0 && e.Sequence == batch[i-1].Sequence {
			return fmt.Errorf("%w: sequence %d appears twice in the batch", ErrDuplicateSequence, e.Sequence)
		}
		if _, found := s.search(e.Sequence); found {
			return fmt.Errorf("%w: sequence %d is already stored", ErrDuplicateSequence, e.Sequence)
		}
	}
	merged := make([]Event, 0, len(s.events)+len(batch))
	i, j := 0, 0
	for i < len(s.events) || j < len(batch) {
		if j == len(batch) || (i < len(s.events) && s.events[i].Sequence < batch[j].Sequence) {
			merged = append(merged, s.events[i])
			i++
		} else {
			merged = append(merged, batch[j])
			j++
		}
	}
	s.events = merged
	return nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// search returns the index of the first event with Sequence >= seq.
func (s *MemorySink) search(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(s.events, seq, func(e Event, seq uint64) int { return cmpSeq(e.Sequence, seq) })
}

// Events yields the stored events with Sequence >= from in order. Events
// written while it runs are seen if their sequence is past the last one
// yielded.
func (s *MemorySink) Events(ctx context.Context, from uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		const chunk = 256
		buf := make([]Event, 0, chunk)
		next := from
		for {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			s.mu.RLock()
			i, _ := s.search(next)
			buf = append(buf[:0], s.events[i:min(i+chunk, len(s.events))]...)
			s.mu.RUnlock()
			if len(buf) == 0 {
				return
			}
			for _, e := range buf {
				if !yield(e, nil) {
					return
				}
			}
			next = buf[len(buf)-1].Sequence + 1
			if next == 0 { // wrapped past the largest sequence
				return
			}
		}
	}
}

// Last returns the event with the highest sequence, or the zero Event.
func (s *MemorySink) Last(ctx context.Context) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.events) == 0 {
		return Event{}, nil
	}
	return s.events[len(s.events)-1], nil
}

// Snapshot returns a copy of the stored events in sequence order.
func (s *MemorySink) Snapshot() []Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.events)
}
