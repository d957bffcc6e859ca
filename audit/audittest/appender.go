package audittest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
)

// appenderCases apply to sinks that are an audit.Appender and a Reader.
var appenderCases = []struct {
	rule string
	run  func(t tb, s appender)
}{
	{"Append to an empty sink starts the chain at sequence 1 with no previous hash, and it verifies", appendEmpty},
	{"Append continues the chain after events that Write stored", appendAfterWrite},
	{"Loggers appending concurrently to one sink form one chain that verifies, with every event once", appendConcurrent},
	{"Append stores an event whose ID the caller chose at most once, and the rest of its batch", appendKeyed},
	{"Append with a canceled context fails and stores nothing", appendCanceled},
}

type appender interface {
	audit.Appender
	audit.Reader
}

// runAppenderCases runs the Appender cases when the sinks newSink makes
// are an Appender and a Reader (it makes one to find out).
func runAppenderCases(t tb, newSink func(t tb) audit.Sink) {
	if _, ok := newSink(t).(appender); !ok {
		return
	}
	for _, tc := range appenderCases {
		t.Run(tc.rule, func(t tb) { tc.run(t, newSink(t).(appender)) })
	}
}

func newAppendingLogger(t tb, s audit.Sink) *audit.Logger {
	t.Helper()
	l, err := audit.NewLogger(s, audit.WithKey("k1", key))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return l
}

func verify(t tb, s audit.Reader) {
	t.Helper()
	if err := audit.Verify(s.Events(t.Context(), 0)); err != nil {
		t.Errorf("Verify of the stored chain: %v", err)
	}
}

func appendEmpty(t tb, s appender) {
	b, err := audit.NewBatch(unlinked(3))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := s.Append(t.Context(), b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got := readAll(t, s, 0)
	if diff := cmp.Diff([]uint64{1, 2, 3}, seqs(got)); diff != "" {
		t.Fatalf("stored sequences (-want +got):\n%s", diff)
	}
	if got[0].PrevHash != "" {
		t.Errorf("first PrevHash = %q, want empty", got[0].PrevHash)
	}
	verify(t, s)
}

func appendAfterWrite(t tb, s appender) {
	write(t, s, chain(t, 4))
	l := newAppendingLogger(t, s)
	for i := range 3 {
		if err := l.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: "user_1", Details: map[string]any{"i": i}}); err != nil {
			t.Fatalf("%v", err)
		}
	}
	wantSeqs(t, s, []uint64{1, 2, 3, 4, 5, 6, 7})
	verify(t, s)
}

func appendConcurrent(t tb, s appender) {
	const loggers, goroutines, each = 3, 4, 25
	var wg sync.WaitGroup
	for l := range loggers {
		lg := newAppendingLogger(t, s)
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					err := lg.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: "user_1",
						Details: map[string]any{"l": l, "g": g, "i": i}})
					if err != nil {
						t.Errorf("logger %d: Log: %v", l, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	got := readAll(t, s, 0)
	if len(got) != loggers*goroutines*each {
		t.Fatalf("stored %d events, want %d", len(got), loggers*goroutines*each)
	}
	seen := map[string]bool{}
	for _, e := range got {
		k := fmt.Sprint(e.Details["l"], e.Details["g"], e.Details["i"])
		if seen[k] {
			t.Fatalf("event %s stored twice", k)
		}
		seen[k] = true
	}
	verify(t, s)
}

func appendKeyed(t tb, s appender) {
	ctx := t.Context()
	l := newAppendingLogger(t, s)
	id := audit.EventID("audittest/keyed")
	for range 2 {
		if err := l.Log(ctx, audit.Event{ID: id, Type: audit.DataDeletion, Subject: "user_1"}); err != nil {
			t.Fatalf("Log with a chosen ID: %v", err)
		}
	}
	ev := unlinked(2)
	ev[0].ID = id
	b, err := audit.NewBatch(ev, id)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := s.Append(ctx, b); err != nil {
		t.Fatalf("Append of a batch holding a stored ID: %v", err)
	}
	got := readAll(t, s, 0)
	if diff := cmp.Diff([]uint64{1, 2}, seqs(got)); diff != "" {
		t.Fatalf("stored sequences (-want +got):\n%s", diff)
	}
	if got[0].ID != id || got[1].ID == id {
		t.Errorf("stored IDs %q, %q; want the chosen one once, first", got[0].ID, got[1].ID)
	}
	verify(t, s)
}

func appendCanceled(t tb, s appender) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b, err := audit.NewBatch(unlinked(2))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := s.Append(ctx, b); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context = %v, want context.Canceled", err)
	}
	wantSeqs(t, s, []uint64{})
}

// unlinked returns n events as a Logger hands them to an Appender.
func unlinked(n int) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = audit.Event{
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Type: audit.DataAccess, Subject: "hmac-sha256:k1:00",
			Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), KeyID: "k1", Details: map[string]any{"i": i},
		}
	}
	return out
}
