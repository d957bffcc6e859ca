package audit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/audit/audittest"
)

func TestMemoryCursorsConformance(t *testing.T) {
	audittest.RunCursorConformance(t, func(*testing.T) audittest.CursorHarness {
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		return audittest.CursorHarness{Store: audit.NewMemoryCursors(clock), TTL: time.Minute,
			Wait: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }}
	})
}

// recordingSink keeps every batch written to it, and fails while down.
type recordingSink struct {
	mu      sync.Mutex
	batches [][]audit.Event
	down    atomic.Bool
	block   chan struct{} // when not nil, Write waits for it
	entered chan struct{} // when not nil, closed by the first Write
	once    sync.Once
}

func (s *recordingSink) Write(ctx context.Context, events []audit.Event) error {
	if s.entered != nil {
		s.once.Do(func() { close(s.entered) })
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.down.Load() {
		return errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, slices.Clone(events))
	return nil
}

func (s *recordingSink) sequences() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, b := range s.batches {
		out = append(out, sequences(b)...)
	}
	return out
}

func upTo(n uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func newForwarder(t *testing.T, src audit.Reader, dst audit.Sink, cursors audit.CursorStore, opts ...audit.ForwarderOption) *audit.Forwarder {
	t.Helper()
	f, err := audit.NewForwarder(src, dst, cursors, "collector", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestForwarderSendsTheStoredChainInOrder(t *testing.T) {
	ctx := context.Background()
	chain := audit.NewMemorySink()
	logN(t, newLogger(t, chain), 12)
	dst := &recordingSink{}
	f := newForwarder(t, chain, dst, audit.NewMemoryCursors(nil), audit.WithForwardBatch(5))
	n, err := f.Forward(ctx)
	if err != nil || n != 12 {
		t.Fatalf("Forward = %d, %v; want 12, nil", n, err)
	}
	if diff := cmp.Diff(upTo(12), dst.sequences()); diff != "" {
		t.Errorf("forwarded sequences (-want +got):\n%s", diff)
	}
	var sizes []int
	for _, b := range dst.batches {
		sizes = append(sizes, len(b))
	}
	if diff := cmp.Diff([]int{5, 5, 2}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if n, err := f.Forward(ctx); err != nil || n != 0 {
		t.Errorf("second Forward = %d, %v; want nothing to send", n, err)
	}
	// Batches end at multiples of the batch size, so a resend after a
	// crash carries the same events: the partial batch is completed.
	logN(t, newLogger(t, chain), 4)
	if _, err := f.Forward(ctx); err != nil {
		t.Fatal(err)
	}
	last := dst.batches[len(dst.batches)-2:]
	if got := [][]uint64{sequences(last[0]), sequences(last[1])}; !cmp.Equal(got, [][]uint64{{13, 14, 15}, {16}}) {
		t.Errorf("batches after 12 = %v, want [[13 14 15] [16]]", got)
	}
	if s := f.Stats(); s.Forwarded != 16 || s.Cursor != 16 || s.Lag != 0 || s.Failing {
		t.Errorf("Stats = %+v", s)
	}
}

func TestForwarderCatchesUpAfterAnOutageAndARestart(t *testing.T) {
	ctx := context.Background()
	chain := audit.NewMemorySink()
	cursors := audit.NewMemoryCursors(nil)
	dst := &recordingSink{}
	l := newLogger(t, chain)
	logN(t, l, 3)
	f := newForwarder(t, chain, dst, cursors)
	if _, err := f.Forward(ctx); err != nil {
		t.Fatal(err)
	}
	dst.down.Store(true)
	start := time.Now()
	logN(t, l, 4) // Log does not wait for the collector
	if d := time.Since(start); d > time.Second {
		t.Errorf("Log took %v while the collector was down", d)
	}
	if _, err := f.Forward(ctx); !errors.Is(err, errDown) {
		t.Fatalf("Forward while down = %v, want the collector's error", err)
	}
	if s := f.Stats(); !s.Failing || s.Lag != 4 || !errors.Is(s.LastError, errDown) {
		t.Errorf("Stats during the outage = %+v, want Failing with a lag of 4", s)
	}
	// The process restarts: a new Forwarder on the same cursors.
	dst.down.Store(false)
	g := newForwarder(t, chain, dst, cursors)
	if n, err := g.Forward(ctx); err != nil || n != 4 {
		t.Fatalf("Forward after the restart = %d, %v; want the 4 missed events", n, err)
	}
	if diff := cmp.Diff(upTo(7), dst.sequences()); diff != "" {
		t.Errorf("the collector received (-want +got):\n%s", diff)
	}
}

func TestOnlyOneForwarderSendsToADestination(t *testing.T) {
	ctx := context.Background()
	chain := audit.NewMemorySink()
	logN(t, newLogger(t, chain), 3)
	cursors := audit.NewMemoryCursors(nil)
	dst := &recordingSink{block: make(chan struct{}), entered: make(chan struct{})}
	first := newForwarder(t, chain, dst, cursors)
	second := newForwarder(t, chain, dst, cursors)
	done := make(chan error, 1)
	go func() { _, err := first.Forward(ctx); done <- err }()
	<-dst.entered
	if _, err := second.Forward(ctx); !errors.Is(err, audit.ErrCursorHeld) {
		t.Errorf("second Forward while the first sends = %v, want ErrCursorHeld", err)
	}
	close(dst.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(upTo(3), dst.sequences()); diff != "" {
		t.Errorf("the collector received (-want +got):\n%s", diff)
	}
}

func TestForwarderStopsWhenItsClaimIsTaken(t *testing.T) {
	ctx := context.Background()
	chain := audit.NewMemorySink()
	logN(t, newLogger(t, chain), 2)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cursors := audit.NewMemoryCursors(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	dst := &recordingSink{block: make(chan struct{})}
	f := newForwarder(t, chain, dst, cursors, audit.WithForwardLease(30*time.Millisecond))
	done := make(chan error, 1)
	go func() { _, err := f.Forward(ctx); done <- err }()
	time.Sleep(10 * time.Millisecond)
	mu.Lock()
	now = now.Add(time.Hour) // the claim lapses...
	mu.Unlock()
	if _, err := cursors.ClaimCursor(ctx, "collector", "other", time.Hour); err != nil {
		t.Fatal(err) // ...and another process takes it
	}
	select {
	case err := <-done:
		if !errors.Is(err, audit.ErrCursorLost) {
			t.Errorf("Forward = %v, want ErrCursorLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not stop after losing its claim")
	}
	if got := dst.sequences(); len(got) != 0 {
		t.Errorf("a forwarder that lost its claim delivered %v", got)
	}
}

func TestForwarderRun(t *testing.T) {
	chain := audit.NewMemorySink()
	l := newLogger(t, chain)
	dst := &recordingSink{}
	f := newForwarder(t, chain, dst, audit.NewMemoryCursors(nil), audit.WithForwardInterval(5*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, nil) }()
	logN(t, l, 5)
	deadline := time.Now().Add(5 * time.Second)
	for len(dst.sequences()) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(upTo(5), dst.sequences()); diff != "" {
		t.Errorf("Run forwarded (-want +got):\n%s", diff)
	}
}
