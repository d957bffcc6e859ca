package audit_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stewardlabs/steward/audit"
)

func TestNewLoggerOptions(t *testing.T) {
	sink := audit.NewMemorySink()
	tests := []struct {
		name string
		sink audit.Sink
		opts []audit.Option
		want string // substring of the error; "" for success
	}{
		{"a key is enough", sink, []audit.Option{audit.WithKey("k1", testKey)}, ""},
		{"a key is required", sink, nil, "use WithKey"},
		{"the sink is required", nil, []audit.Option{audit.WithKey("k1", testKey)}, "sink is nil"},
		{"a short secret is refused", sink, []audit.Option{audit.WithKey("k1", []byte("short"))}, `key "k1": secret is 5 bytes, need at least 16`},
		{"a key ID with ':' is refused", sink, []audit.Option{audit.WithKey("k:1", testKey)}, `key ID "k:1"`},
		{"one active key only", sink, []audit.Option{audit.WithKey("k1", testKey), audit.WithKey("k2", testKey)}, "more than once"},
		{"batch size must be positive", sink, []audit.Option{audit.WithKey("k1", testKey), audit.WithBatchSize(0)}, "WithBatchSize"},
		{"queue limit must not be negative", sink, []audit.Option{audit.WithKey("k1", testKey), audit.WithQueueLimit(-1)}, "WithQueueLimit"},
		{"extra sinks must not be nil", sink, []audit.Option{audit.WithKey("k1", testKey), audit.WithSinks(nil)}, "nil sink"},
		{"the clock must not be nil", sink, []audit.Option{audit.WithKey("k1", testKey), audit.WithNow(nil)}, "nil clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.NewLogger(tt.sink, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), string(testKey)) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestLogAssignsFields(t *testing.T) {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	l := newLogger(t, sink)
	p, _ := audit.NewPseudonymizer(audit.Key{ID: "k1", Secret: testKey})
	in := audit.Event{
		Type: audit.DataExport, Subject: "user_123", Actor: "user_admin",
		Details: map[string]any{"stores": 3},
		// Ignored: the Logger assigns these.
		Time: time.Unix(1, 0), Sequence: 99, KeyID: "x", PrevHash: "x", Hash: "x",
	}
	if err := l.Log(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(ctx, audit.Event{Type: audit.RoleChange, Subject: "user_123"}); err != nil {
		t.Fatal(err)
	}
	got := sink.Snapshot()
	if len(got) != 2 {
		t.Fatalf("stored %d events, want 2", len(got))
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, e := range got {
		if !uuid.MatchString(e.ID) {
			t.Errorf("ID %q is not a random UUID", e.ID)
		}
	}
	if got[0].ID == got[1].ID {
		t.Error("two events share an ID")
	}
	wantTime := time.Date(2025, 3, 1, 11, 0, 0, 123456000, time.UTC)
	want := []audit.Event{
		{ID: got[0].ID, Type: audit.DataExport, Subject: p.Pseudonym("user_123"), Actor: p.Pseudonym("user_admin"),
			Details: map[string]any{"stores": 3}, Time: wantTime, Sequence: 1, KeyID: "k1", PrevHash: "", Hash: got[0].Hash},
		{ID: got[1].ID, Type: audit.RoleChange, Subject: p.Pseudonym("user_123"),
			Time: wantTime, Sequence: 2, KeyID: "k1", PrevHash: got[0].Hash, Hash: got[1].Hash},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored events (-want +got):\n%s", diff)
	}
	if got[0].Time.Location() != time.UTC {
		t.Errorf("Time is in %v, want UTC", got[0].Time.Location())
	}
	for _, e := range got {
		h, err := audit.Hash(e)
		if err != nil || h != e.Hash {
			t.Errorf("event %d: Hash = %q, recomputed %q (%v)", e.Sequence, e.Hash, h, err)
		}
	}
}

func TestLogPseudonymisesSubjectAndActor(t *testing.T) {
	p, _ := audit.NewPseudonymizer(audit.Key{ID: "k1", Secret: testKey})
	tests := []struct {
		name                 string
		subject, actor       string
		wantSubject, wantAct string
	}{
		{"a user subject and actor become pseudonyms", "user_1", "user_2", p.Pseudonym("user_1"), p.Pseudonym("user_2")},
		{"an empty actor stays empty", "user_1", "", p.Pseudonym("user_1"), ""},
		{"a system actor is kept as given", "user_1", "system:retention", p.Pseudonym("user_1"), "system:retention"},
		{"an empty subject stays empty", "", "user_2", "", p.Pseudonym("user_2")},
		{"the actor is pseudonymised even when it is the subject", "user_1", "user_1", p.Pseudonym("user_1"), p.Pseudonym("user_1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := audit.NewMemorySink()
			l := newLogger(t, sink)
			if err := l.Log(context.Background(), audit.Event{Type: audit.DataAccess, Subject: tt.subject, Actor: tt.actor}); err != nil {
				t.Fatal(err)
			}
			e := sink.Snapshot()[0]
			if e.Subject != tt.wantSubject || e.Actor != tt.wantAct {
				t.Errorf("Subject, Actor = %q, %q; want %q, %q", e.Subject, e.Actor, tt.wantSubject, tt.wantAct)
			}
		})
	}
}

func TestLogRejectsInvalidEvents(t *testing.T) {
	tests := []struct {
		name string
		e    audit.Event
		want string
	}{
		{"Type is required", audit.Event{Subject: "u"}, "Type"},
		{"Type is lower-case identifier", audit.Event{Type: "Data Access"}, "Type"},
		{"Details must encode: NaN", audit.Event{Type: audit.DataAccess, Details: map[string]any{"x": nan()}}, "Details"},
		{"Details must encode: channel", audit.Event{Type: audit.DataAccess, Details: map[string]any{"c": make(chan int)}}, "Details"},
		{"a system actor must be valid UTF-8", audit.Event{Type: audit.DataAccess, Actor: "system:\xff"}, "Actor"},
		{"a system actor must be printable", audit.Event{Type: audit.DataAccess, Actor: "system:a\x00b"}, "Actor"},
		{"a system actor is at most 128 bytes", audit.Event{Type: audit.DataAccess, Actor: "system:" + strings.Repeat("x", 122)}, "Actor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := audit.NewMemorySink()
			l := newLogger(t, sink)
			err := l.Log(context.Background(), tt.e)
			if !errors.Is(err, audit.ErrInvalidEvent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidEvent naming %s", err, tt.want)
			}
			logN(t, l, 1)
			if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1}) {
				t.Errorf("sequences after a refused event = %v, want [1]", got)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestLogWithCanceledContextRecordsNothing(t *testing.T) {
	sink := audit.NewMemorySink()
	l := newLogger(t, sink)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "u"})
	if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrNotRecorded and context.Canceled", err)
	}
	if n := len(sink.Snapshot()); n != 0 {
		t.Fatalf("stored %d events", n)
	}
}

func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	sink := newFlaky()
	l := newLogger(t, sink)
	logN(t, l, 2)
	sink.down.Store(true)
	for range 3 {
		err := l.Log(ctx, audit.Event{Type: audit.DataDeletion, Subject: "user_1"})
		if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, errDown) {
			t.Fatalf("Log with the only sink down: err = %v, want ErrNotRecorded wrapping the sink's error", err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Errorf("Flush: nothing waits in fail-closed mode, got %v", err)
	}
	sink.down.Store(false)
	logN(t, l, 1)
	if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("refused events must leave the chain: sequences = %v, want [1 2 3]", got)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Error(err)
	}
	if s := l.Stats(); s != (audit.Stats{Recorded: 3}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestFailOpenQueuesAndRetries(t *testing.T) {
	ctx := context.Background()
	sink := newFlaky()
	var dropped []int
	l := newLogger(t, sink, audit.WithFailOpen(), audit.WithQueueLimit(3),
		audit.WithOnDrop(func(n int, err error) {
			if !errors.Is(err, errDown) {
				t.Errorf("OnDrop err = %v", err)
			}
			dropped = append(dropped, n)
		}))
	logN(t, l, 1)
	sink.down.Store(true)
	logN(t, l, 3) // queued: 2, 3, 4
	if s := l.Stats(); s != (audit.Stats{Recorded: 4, Pending: 3}) {
		t.Errorf("Stats while down = %+v", s)
	}
	if err := l.Flush(ctx); err == nil || !strings.Contains(err.Error(), "3 events still waiting") || !errors.Is(err, errDown) {
		t.Errorf("Flush while down: %v", err)
	}
	logN(t, l, 1) // queue full: 5 dropped
	if s := l.Stats(); s != (audit.Stats{Recorded: 5, Pending: 3, Dropped: 1}) {
		t.Errorf("Stats after overflow = %+v", s)
	}
	if !cmp.Equal(dropped, []int{1}) {
		t.Errorf("OnDrop calls = %v, want [1]", dropped)
	}
	sink.down.Store(false)
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	logN(t, l, 1)
	if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3, 4, 6}) {
		t.Errorf("sequences = %v, want [1 2 3 4 6]: queued events in order, the dropped one missing", got)
	}
	var ce *audit.ChainError
	if err := audit.Verify(sink.Events(ctx, 0)); !errors.As(err, &ce) || ce.Sequence != 5 {
		t.Errorf("Verify = %v, want the dropped event 5 reported missing", err)
	}
	if s := l.Stats(); s != (audit.Stats{Recorded: 6, Dropped: 1}) {
		t.Errorf("Stats after recovery = %+v", s)
	}
}

func TestFailingSecondSinkCatchesUp(t *testing.T) {
	ctx := context.Background()
	primary, secondary := newFlaky(), newFlaky()
	l := newLogger(t, primary, audit.WithSinks(secondary))
	logN(t, l, 1)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	secondary.down.Store(true)
	logN(t, l, 2) // primary accepts: Log succeeds even fail-closed
	if s := l.Stats(); s.Pending != 2 {
		t.Errorf("Pending = %d, want 2", s.Pending)
	}
	secondary.down.Store(false)
	logN(t, l, 1)
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after the second sink is back: %v", err)
	}
	for name, s := range map[string]*flakySink{"primary": primary, "secondary": secondary} {
		if got := sequences(s.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3, 4}) {
			t.Errorf("%s sequences = %v", name, got)
		}
		if err := audit.Verify(s.Events(ctx, 0)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if diff := cmp.Diff(primary.Snapshot(), secondary.Snapshot()); diff != "" {
		t.Errorf("sinks differ:\n%s", diff)
	}
}

func TestRetriedBatchAlreadyStoredCountsAsWritten(t *testing.T) {
	ctx := context.Background()
	sink := &lyingSink{memory: audit.NewMemorySink()}
	l := newLogger(t, sink, audit.WithFailOpen())
	sink.lie = true // stores the batch but reports failure
	logN(t, l, 1)
	sink.lie = false
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush: a queued batch the sink already holds must count as written: %v", err)
	}
	logN(t, l, 1)
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Error(err)
	}
}

type lyingSink struct {
	memory
	lie bool
}

func (s *lyingSink) Write(ctx context.Context, events []audit.Event) error {
	if err := s.memory.Write(ctx, events); err != nil {
		return err
	}
	if s.lie {
		return errors.New("connection lost before the answer")
	}
	return nil
}

func TestLoggerResumesChain(t *testing.T) {
	ctx := context.Background()
	sink := newFlaky()
	logN(t, newLogger(t, sink), 2)

	t.Run("from its first sink when it is a Reader", func(t *testing.T) {
		l := newLogger(t, sink)
		logN(t, l, 1)
		if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
			t.Fatal(err)
		}
		if got := sequences(sink.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3}) {
			t.Errorf("sequences = %v", got)
		}
	})
	t.Run("a failed resume fails the write and is retried", func(t *testing.T) {
		l := newLogger(t, sink, audit.WithResume(failingReader{audit.NewMemorySink()}))
		err := l.Log(ctx, audit.Event{Type: audit.DataAccess})
		if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, errDown) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("WithResume(nil) starts a new chain, which the sink refuses", func(t *testing.T) {
		l := newLogger(t, sink, audit.WithResume(nil))
		err := l.Log(ctx, audit.Event{Type: audit.DataAccess})
		if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, audit.ErrDuplicateSequence) {
			t.Fatalf("err = %v, want ErrDuplicateSequence", err)
		}
	})
}

type failingReader struct{ memory }

func (failingReader) Last(context.Context) (audit.Event, error) { return audit.Event{}, errDown }

func TestConcurrentLogsFormOneChain(t *testing.T) {
	ctx := context.Background()
	sink := newFlaky()
	l := newLogger(t, sink, audit.WithBatchSize(16))
	const goroutines, each = 8, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "u", Details: map[string]any{"g": g, "i": i}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(sink.Snapshot()); n != goroutines*each {
		t.Fatalf("stored %d events, want %d", n, goroutines*each)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Fatal(err)
	}
	// Each goroutine's events keep its order.
	last := map[any]int{}
	for _, e := range sink.Snapshot() {
		g, i := e.Details["g"], e.Details["i"].(int)
		if prev, ok := last[g]; ok && i != prev+1 {
			t.Fatalf("goroutine %v: event %d after %d", g, i, prev)
		}
		last[g] = i
	}
	t.Logf("%d events in %d sink writes", goroutines*each, sink.writes.Load())
}

func TestOneCallerGivingUpDoesNotFailTheBatch(t *testing.T) {
	gate := newGate()
	l := newLogger(t, gate)
	first := make(chan error, 1)
	go func() { first <- l.Log(context.Background(), audit.Event{Type: audit.DataAccess}) }()
	<-gate.entered // the first write is in progress; the next calls queue

	ctxA, cancelA := context.WithCancel(context.Background())
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- l.Log(ctxA, audit.Event{Type: audit.DataAccess}) }()
	waitQueued(t, l, gate)
	ctxB, cancelB := context.WithCancel(context.Background()) // cancellable, not canceled
	defer cancelB()
	go func() { errB <- l.Log(ctxB, audit.Event{Type: audit.DataAccess}) }()
	time.Sleep(10 * time.Millisecond)
	cancelA()
	close(gate.release)
	for name, ch := range map[string]chan error{"first": first, "A": errA, "B": errB} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := sequences(gate.Snapshot()); !cmp.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("sequences = %v", got)
	}
}

func TestBatchIsAbandonedWhenEveryCallerGivesUp(t *testing.T) {
	gate := newGate()
	l := newLogger(t, gate)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Log(ctx, audit.Event{Type: audit.DataAccess}) }()
	<-gate.entered
	cancel()
	if err := <-done; !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	close(gate.release)
	logN(t, l, 1)
	if got := sequences(gate.Snapshot()); !cmp.Equal(got, []uint64{1}) {
		t.Errorf("sequences = %v", got)
	}
}

// waitQueued gives a just-started Log call time to queue behind the write
// blocked in gate.
func waitQueued(t *testing.T, _ *audit.Logger, _ *gateSink) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	l := newLogger(t, sink)
	logN(t, l, 1)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Log after Close: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestQueuedEventsDoNotShareTheCallersMap(t *testing.T) {
	ctx := context.Background()
	sink := newFlaky()
	l := newLogger(t, sink, audit.WithFailOpen())
	sink.down.Store(true)
	details := map[string]any{"n": 1}
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Details: details}); err != nil {
		t.Fatal(err)
	}
	details["n"] = 2 // the caller reuses its map
	sink.down.Store(false)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Errorf("a retried event must be the one logged: %v", err)
	}
}
