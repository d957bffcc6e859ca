package audit

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
)

// MemorySink keeps events in memory, in sequence order. It is a Sink, an
// Appender and a Reader, safe for concurrent use; tests and examples read
// it back with Snapshot or Events.
//
// As an Appender it links what any number of Loggers append to one chain,
// but only within the process that holds it: it is memory. Several
// processes need a shared, durable sink (sqlstore's).
type MemorySink struct {
	mu     sync.RWMutex
	chunks [][]Event           // sorted by Sequence, unique; every chunk non-empty
	keys   map[string]struct{} // IDs of events appended with a caller's key
}

// chunkSize bounds a chunk so that appending never copies what is stored.
const chunkSize = 1024

var (
	_ Sink     = (*MemorySink)(nil)
	_ Appender = (*MemorySink)(nil)
	_ Reader   = (*MemorySink)(nil)
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
	increasing := true
	for i, e := range events {
		if e.Sequence == 0 {
			return fmt.Errorf("%w: sequence 0", ErrInvalidEvent)
		}
		if i > 0 && e.Sequence <= events[i-1].Sequence {
			increasing = false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if increasing && events[0].Sequence > s.lastSeq() {
		s.append(events)
		return nil
	}
	// Slow path: out of order or interleaved with stored events.
	batch := slices.Clone(events)
	slices.SortFunc(batch, func(a, b Event) int { return cmpSeq(a.Sequence, b.Sequence) })
	for i, e := range batch {
		if i > 0 && e.Sequence == batch[i-1].Sequence {
			return fmt.Errorf("%w: sequence %d appears twice in the batch", ErrDuplicateSequence, e.Sequence)
		}
		if c, j := s.search(e.Sequence); c < len(s.chunks) && s.chunks[c][j].Sequence == e.Sequence {
			return fmt.Errorf("%w: sequence %d is already stored", ErrDuplicateSequence, e.Sequence)
		}
	}
	old := s.chunks
	s.chunks = nil
	i, j := 0, 0
	all := slices.Concat(old...)
	for i < len(all) || j < len(batch) {
		if j == len(batch) || (i < len(all) && all[i].Sequence < batch[j].Sequence) {
			s.append(all[i : i+1])
			i++
		} else {
			s.append(batch[j : j+1])
			j++
		}
	}
	return nil
}

// Append implements Appender: it links b after the last stored event and
// stores it, under the sink's lock.
func (s *MemorySink) Append(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range b.Keys() {
		if _, ok := s.keys[id]; ok {
			b.Stored(id)
		}
	}
	var seq uint64
	var hash string
	if n := len(s.chunks); n > 0 {
		last := s.chunks[n-1][len(s.chunks[n-1])-1]
		seq, hash = last.Sequence, last.Hash
	}
	b.Link(seq, hash)
	s.append(b.Events())
	for _, id := range b.Keys() {
		if s.keys == nil {
			s.keys = map[string]struct{}{}
		}
		s.keys[id] = struct{}{}
	}
	return nil
}

func (s *MemorySink) lastSeq() uint64 {
	if len(s.chunks) == 0 {
		return 0
	}
	c := s.chunks[len(s.chunks)-1]
	return c[len(c)-1].Sequence
}

// append adds events, already in order after everything stored.
func (s *MemorySink) append(events []Event) {
	for len(events) > 0 {
		if n := len(s.chunks); n == 0 || len(s.chunks[n-1]) == chunkSize {
			s.chunks = append(s.chunks, make([]Event, 0, chunkSize))
		}
		last := &s.chunks[len(s.chunks)-1]
		k := min(len(events), chunkSize-len(*last))
		*last = append(*last, events[:k]...)
		events = events[k:]
	}
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

// search returns the position (chunk, index) of the first event with
// Sequence >= seq; chunk is len(s.chunks) when there is none.
func (s *MemorySink) search(seq uint64) (int, int) {
	c, _ := slices.BinarySearchFunc(s.chunks, seq, func(ch []Event, seq uint64) int {
		return cmpSeq(ch[len(ch)-1].Sequence, seq)
	})
	if c == len(s.chunks) {
		return c, 0
	}
	j, _ := slices.BinarySearchFunc(s.chunks[c], seq, func(e Event, seq uint64) int { return cmpSeq(e.Sequence, seq) })
	return c, j
}

// Events yields the stored events with Sequence >= from in order. Events
// written while it runs are seen if their sequence is past the last one
// yielded.
func (s *MemorySink) Events(ctx context.Context, from uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var buf []Event
		next := from
		for {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			s.mu.RLock()
			c, j := s.search(next)
			if c < len(s.chunks) {
				buf = append(buf[:0], s.chunks[c][j:]...)
			} else {
				buf = buf[:0]
			}
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
	if len(s.chunks) == 0 {
		return Event{}, nil
	}
	c := s.chunks[len(s.chunks)-1]
	return c[len(c)-1], nil
}

// Snapshot returns a copy of the stored events in sequence order.
func (s *MemorySink) Snapshot() []Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Concat(s.chunks...)
}
