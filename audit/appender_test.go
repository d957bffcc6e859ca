package audit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
)

// flakyAppender is a MemorySink whose Append fails while down is set.
type flakyAppender struct {
	*audit.MemorySink
	down    atomic.Bool
	appends atomic.Int64
}

func (s *flakyAppender) Append(ctx context.Context, b *audit.Batch) error {
	s.appends.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.MemorySink.Append(ctx, b)
}

func TestLoggersShareOneAppendersChain(t *testing.T) {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	a, b := newLogger(t, sink), newLogger(t, sink)
	var wg sync.WaitGroup
	for _, l := range []*audit.Logger{a, b, a, b} {
		wg.Go(func() { logN(t, l, 50) })
	}
	wg.Wait()
	if got := len(sink.Snapshot()); got != 200 {
		t.Fatalf("stored %d events, want 200", got)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Fatalf("two Loggers on one sink must form one chain: %v", err)
	}
	if got := a.Stats().Recorded + b.Stats().Recorded; got != 200 {
		t.Errorf("Recorded sums to %d, want 200", got)
	}
}

func TestChosenIDIsLoggedOnce(t *testing.T) {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	l := newLogger(t, sink)
	id := audit.EventID("erasure/req_1/completed")
	for range 3 {
		if err := l.Log(ctx, audit.Event{ID: id, Type: audit.DataDeletion, Subject: "user_1"}); err != nil {
			t.Fatal(err)
		}
	}
	// A second Logger (another process) logging it again changes nothing.
	if err := newLogger(t, sink).Log(ctx, audit.Event{ID: id, Type: audit.DataDeletion, Subject: "user_1"}); err != nil {
		t.Fatal(err)
	}
	got := sink.Snapshot()
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("stored %d events (%v), want the one with ID %s", len(got), got, id)
	}
	if id != audit.EventID("erasure/req_1/completed") || id == audit.EventID("erasure/req_2/completed") {
		t.Error("EventID must be a function of its name")
	}
}

func TestChosenIDMustBeAUUID(t *testing.T) {
	l := newLogger(t, audit.NewMemorySink())
	for _, id := range []string{"mine", "0B0E6B8E-8F47-4D2A-9A53-2E8F1C0D3B7A", "0b0e6b8e_8f47_4d2a_9a53_2e8f1c0d3b7a"} {
		err := l.Log(context.Background(), audit.Event{ID: id, Type: audit.DataAccess})
		if !errors.Is(err, audit.ErrInvalidEvent) || !strings.Contains(err.Error(), "ID") {
			t.Errorf("Log with ID %q = %v, want ErrInvalidEvent naming ID", id, err)
		}
	}
}

func TestAppenderDownFailClosed(t *testing.T) {
	ctx := context.Background()
	sink := &flakyAppender{MemorySink: audit.NewMemorySink()}
	l := newLogger(t, sink)
	logN(t, l, 1)
	sink.down.Store(true)
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess}); !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, errDown) {
		t.Fatalf("Log with the appender down = %v, want ErrNotRecorded wrapping its error", err)
	}
	sink.down.Store(false)
	logN(t, l, 1)
	if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1, 2}) {
		t.Errorf("sequences = %v, want [1 2]", got)
	}
	if s := l.Stats(); s != (audit.Stats{Recorded: 2}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestAppenderDownFailOpenHoldsEventsUnlinked(t *testing.T) {
	ctx := context.Background()
	sink := &flakyAppender{MemorySink: audit.NewMemorySink()}
	var dropped []int
	l := newLogger(t, sink, audit.WithFailOpen(), audit.WithQueueLimit(3), audit.WithOnDrop(func(n int, err error) {
		if !errors.Is(err, errDown) {
			t.Errorf("OnDrop err = %v", err)
		}
		dropped = append(dropped, n)
	}))
	logN(t, l, 1)
	sink.down.Store(true)
	logN(t, l, 3) // held
	if s := l.Stats(); s != (audit.Stats{Recorded: 1, Pending: 3}) {
		t.Errorf("Stats while down = %+v, want 1 recorded, 3 pending", s)
	}
	logN(t, l, 1) // the queue is full: dropped and counted
	if s := l.Stats(); s != (audit.Stats{Recorded: 1, Pending: 3, Dropped: 1}) {
		t.Errorf("Stats after overflow = %+v", s)
	}
	if err := l.Flush(ctx); err == nil || !errors.Is(err, errDown) {
		t.Errorf("Flush while down = %v, want an error wrapping the sink's", err)
	}
	sink.down.Store(false)
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	// Held events were linked when they were stored: the chain has no
	// gap, and the drop shows in Stats, not as a hole.
	if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("sequences = %v, want [1 2 3 4]", got)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Error(err)
	}
	if s := l.Stats(); s != (audit.Stats{Recorded: 4, Dropped: 1}) {
		t.Errorf("Stats after recovery = %+v", s)
	}
	if !cmp.Equal(dropped, []int{1}) {
		t.Errorf("OnDrop calls = %v, want [1]", dropped)
	}
}

// stuckSink blocks every Write until its context ends.
type stuckSink struct{ calls atomic.Int64 }

func (s *stuckSink) Write(ctx context.Context, _ []audit.Event) error {
	s.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func TestUnreachableCopyDoesNotDelayLog(t *testing.T) {
	ctx := context.Background()
	primary, stuck := audit.NewMemorySink(), &stuckSink{}
	l := newLogger(t, primary, audit.WithSinks(stuck))
	start := time.Now()
	logN(t, l, 20)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20 Logs took %v with a copy that never answers", d)
	}
	if n := len(primary.Snapshot()); n != 20 {
		t.Fatalf("first sink holds %d events, want 20", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stuck.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if stuck.calls.Load() == 0 {
		t.Error("the copy was never written to")
	}
	if s := l.Stats(); s.Pending != 20 {
		t.Errorf("Pending = %d, want the 20 events the copy has not taken", s.Pending)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := l.Close(short); err == nil {
		t.Error("Close with the copy stuck = nil, want an error saying events still wait")
	}
}
