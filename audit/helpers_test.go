package audit_test

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardlabs/steward/audit"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testClock = func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)) }
	errDown   = errors.New("sink down")
)

func newLogger(t testing.TB, sink audit.Sink, opts ...audit.Option) *audit.Logger {
	t.Helper()
	l, err := audit.NewLogger(sink, append([]audit.Option{audit.WithKey("k1", testKey), audit.WithNow(testClock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// memory is a MemorySink without its Append method: sinks built on it
// are plain Sinks, which the Logger links itself.
type memory interface {
	audit.Sink
	audit.Reader
	Snapshot() []audit.Event
}

// flakySink is a MemorySink that fails while down is set and counts
// writes.
type flakySink struct {
	memory
	down   atomic.Bool
	writes atomic.Int64
}

func newFlaky() *flakySink { return &flakySink{memory: audit.NewMemorySink()} }

func (s *flakySink) Write(ctx context.Context, events []audit.Event) error {
	s.writes.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.memory.Write(ctx, events)
}

// gateSink blocks every Write until release is closed (or ctx ends).
type gateSink struct {
	memory
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gateSink {
	return &gateSink{memory: audit.NewMemorySink(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *gateSink) Write(ctx context.Context, events []audit.Event) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.memory.Write(ctx, events)
}

func seqOf(events []audit.Event) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func sequences(events []audit.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Sequence
	}
	return out
}

func logN(t testing.TB, l *audit.Logger, n int) {
	t.Helper()
	for i := range n {
		if err := l.Log(context.Background(), audit.Event{Type: audit.DataAccess, Subject: "user_1",
			Details: map[string]any{"i": i}}); err != nil {
			t.Fatalf("Log %d: %v", i, err)
		}
	}
}
