package audittest

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/internal/conformance"
)

// These tests check the suite itself: it passes a correct sink and
// catches sinks that break a rule.

// runRecorded runs the suite on the sink newSink makes and returns the
// failed rules.
func runRecorded(newSink func() audit.Sink) map[string][]string {
	r := conformance.NewRecorder("suite")
	run(r, func(tb) audit.Sink { return newSink() })
	return r.Failures()
}

func TestSuitePassesMemorySink(t *testing.T) {
	for rule, msgs := range runRecorded(func() audit.Sink { return audit.NewMemorySink() }) {
		t.Errorf("rule %q failed on MemorySink: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestRunConformance(t *testing.T) {
	RunConformance(t, func(*testing.T) audit.Sink { return audit.NewMemorySink() })
}

// reader is the audit.Sink and audit.Reader a MemorySink is, for wrappers
// that break one rule and delegate the rest.
type reader interface {
	audit.Sink
	audit.Reader
}

// wrap forwards everything to a MemorySink; its fields replace methods.
type wrap struct {
	m      *audit.MemorySink
	write  func(ctx context.Context, events []audit.Event) error
	events func(ctx context.Context, from uint64) iter.Seq2[audit.Event, error]
	last   func(ctx context.Context) (audit.Event, error)
}

var _ reader = (*wrap)(nil)

func (w *wrap) Write(ctx context.Context, events []audit.Event) error {
	if w.write != nil {
		return w.write(ctx, events)
	}
	return w.m.Write(ctx, events)
}

func (w *wrap) Events(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
	if w.events != nil {
		return w.events(ctx, from)
	}
	return w.m.Events(ctx, from)
}

func (w *wrap) Last(ctx context.Context) (audit.Event, error) {
	if w.last != nil {
		return w.last(ctx)
	}
	return w.m.Last(ctx)
}

// naiveSink stores events in a map without any check: the kind of sink
// the suite exists to catch.
type naiveSink struct {
	mu     sync.Mutex
	events []audit.Event
	// keepSlice stores the caller's slice itself.
	keepSlice bool
	// partial stores the fresh events of a batch holding a duplicate,
	// then reports the duplicate.
	partial bool
}

func (s *naiveSink) Write(ctx context.Context, events []audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint64]bool{}
	for _, e := range s.events {
		seen[e.Sequence] = true
	}
	var fresh []audit.Event
	dup := false
	for _, e := range events {
		if seen[e.Sequence] {
			dup = true
			continue
		}
		seen[e.Sequence] = true
		fresh = append(fresh, e)
	}
	if dup {
		if s.partial {
			s.events = append(s.events, fresh...)
		}
		return audit.ErrDuplicateSequence
	}
	if s.keepSlice && len(s.events) == 0 {
		s.events = events
		return nil
	}
	s.events = append(s.events, events...)
	return nil
}

func (s *naiveSink) Events(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		s.mu.Lock()
		evs := slices.Clone(s.events)
		s.mu.Unlock()
		slices.SortFunc(evs, func(a, b audit.Event) int { return compare(a.Sequence, b.Sequence) })
		for _, e := range evs {
			if err := ctx.Err(); err != nil {
				yield(audit.Event{}, err)
				return
			}
			if e.Sequence >= from && !yield(e, nil) {
				return
			}
		}
	}
}

func (s *naiveSink) Last(ctx context.Context) (audit.Event, error) {
	var last audit.Event
	for e, err := range s.Events(ctx, 0) {
		if err != nil {
			return audit.Event{}, err
		}
		last = e
	}
	return last, nil
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSuitePassesTheNaiveSinkWhenCorrect(t *testing.T) {
	// The broken variants below change one thing each; the baseline must
	// pass, so the failures they cause are theirs.
	for rule, msgs := range runRecorded(func() audit.Sink { return &naiveSink{} }) {
		t.Errorf("rule %q failed on the correct naive sink: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestSuiteCatchesBrokenSinks(t *testing.T) {
	mem := func(f func(w *wrap)) func() audit.Sink {
		return func() audit.Sink {
			w := &wrap{m: audit.NewMemorySink()}
			f(w)
			return w
		}
	}
	tests := []struct {
		name       string
		sink       func() audit.Sink
		wantFailed []string
	}{
		{
			name: "Write stores what it is given even when a sequence is taken",
			sink: mem(func(w *wrap) {
				var mu sync.Mutex
				w.write = func(ctx context.Context, events []audit.Event) error {
					mu.Lock()
					defer mu.Unlock()
					// Drop the stored duplicates instead of refusing.
					var fresh []audit.Event
					seen := map[uint64]bool{}
					for e, err := range w.m.Events(ctx, 0) {
						if err != nil {
							return err
						}
						seen[e.Sequence] = true
					}
					for _, e := range events {
						if !seen[e.Sequence] {
							seen[e.Sequence] = true
							fresh = append(fresh, e)
						}
					}
					return w.m.Write(ctx, fresh)
				}
			}),
			wantFailed: []string{
				"Write of a batch holding a stored sequence fails with ErrDuplicateSequence and stores nothing of the batch",
				"Write of a batch repeating a sequence fails with ErrDuplicateSequence and stores nothing",
			},
		},
		{
			name: "Write keeps the fresh part of a batch holding a duplicate",
			sink: func() audit.Sink { return &naiveSink{partial: true} },
			wantFailed: []string{
				"Write of a batch holding a stored sequence fails with ErrDuplicateSequence and stores nothing of the batch",
				"Write of a batch repeating a sequence fails with ErrDuplicateSequence and stores nothing",
			},
		},
		{
			name: "Write ignores a canceled context",
			sink: mem(func(w *wrap) {
				w.write = func(_ context.Context, events []audit.Event) error {
					return w.m.Write(context.Background(), events)
				}
			}),
			wantFailed: []string{"Write with a canceled context fails and stores nothing"},
		},
		{
			name: "Write refuses an empty batch",
			sink: mem(func(w *wrap) {
				w.write = func(ctx context.Context, events []audit.Event) error {
					if len(events) == 0 {
						return context.DeadlineExceeded
					}
					return w.m.Write(ctx, events)
				}
			}),
			wantFailed: []string{"Write of an empty batch succeeds and stores nothing"},
		},
		{
			name:       "Write keeps the caller's slice",
			sink:       func() audit.Sink { return &naiveSink{keepSlice: true} },
			wantFailed: []string{"Write does not keep the caller's slice"},
		},
		{
			name: "Events ignores from",
			sink: mem(func(w *wrap) {
				w.events = func(ctx context.Context, _ uint64) iter.Seq2[audit.Event, error] { return w.m.Events(ctx, 0) }
			}),
			wantFailed: []string{"Events yields only events at or after from"},
		},
		{
			name: "Events yields newest first",
			sink: mem(func(w *wrap) {
				w.events = func(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
					return func(yield func(audit.Event, error) bool) {
						var all []audit.Event
						for e, err := range w.m.Events(ctx, from) {
							if err != nil {
								yield(audit.Event{}, err)
								return
							}
							all = append(all, e)
						}
						for _, e := range slices.Backward(all) {
							if !yield(e, nil) {
								return
							}
						}
					}
				}
			}),
			wantFailed: []string{
				"Events returns stored events in sequence order",
				"concurrent Writes of disjoint batches all succeed and read back in sequence order",
			},
		},
		{
			name: "Events stops after one page",
			sink: mem(func(w *wrap) {
				w.events = func(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
					return func(yield func(audit.Event, error) bool) {
						n := 0
						for e, err := range w.m.Events(ctx, from) {
							if n++; n > 1000 || !yield(e, err) {
								return
							}
						}
					}
				}
			}),
			wantFailed: []string{"Events streams more events than fit in one page"},
		},
		{
			name: "Events ignores a canceled context",
			sink: mem(func(w *wrap) {
				w.events = func(_ context.Context, from uint64) iter.Seq2[audit.Event, error] {
					return w.m.Events(context.Background(), from)
				}
			}),
			wantFailed: []string{"Events with a canceled context yields the context's error"},
		},
		{
			name: "Events keeps yielding after the consumer stops",
			sink: mem(func(w *wrap) {
				w.events = func(ctx context.Context, from uint64) iter.Seq2[audit.Event, error] {
					return func(yield func(audit.Event, error) bool) {
						for e, err := range w.m.Events(ctx, from) {
							yield(e, err)
						}
					}
				}
			}),
			wantFailed: []string{"Events can be stopped early, and the sink keeps working"},
		},
		{
			name: "Last returns the first event",
			sink: mem(func(w *wrap) {
				w.last = func(ctx context.Context) (audit.Event, error) {
					for e, err := range w.m.Events(ctx, 0) {
						return e, err
					}
					return audit.Event{}, nil
				}
			}),
			wantFailed: []string{"Last returns the zero Event when nothing is stored, then the highest sequence"},
		},
		{
			name: "the sink stores times to the second",
			sink: mem(func(w *wrap) {
				w.write = func(ctx context.Context, events []audit.Event) error {
					out := slices.Clone(events)
					for i := range out {
						out[i].Time = out[i].Time.Truncate(time.Second)
					}
					return w.m.Write(ctx, out)
				}
			}),
			wantFailed: []string{"every field round-trips: Time to the microsecond, Details to the same canonical JSON"},
		},
		{
			name: "the sink loses Details",
			sink: mem(func(w *wrap) {
				w.write = func(ctx context.Context, events []audit.Event) error {
					out := slices.Clone(events)
					for i := range out {
						out[i].Details = nil
					}
					return w.m.Write(ctx, out)
				}
			}),
			wantFailed: []string{
				"every field round-trips: Time to the microsecond, Details to the same canonical JSON",
				"a chain written by a Logger is accepted and, when read back, verifies",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runRecorded(tt.sink)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q; it reported %v", rule, keys(failed))
				}
			}
			if len(failed) == 0 {
				t.Error("the suite passed a broken sink")
			}
		})
	}
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// naiveAppender links a batch after the sink's last event without a lock
// and without looking up chosen IDs; fromZero always starts a new chain.
type naiveAppender struct {
	*audit.MemorySink
	fromZero bool
}

func (n *naiveAppender) Append(ctx context.Context, b *audit.Batch) error {
	last, err := n.Last(ctx)
	if err != nil {
		return err
	}
	if n.fromZero {
		last = audit.Event{}
	}
	b.Link(last.Sequence, last.Hash)
	return n.Write(ctx, b.Events())
}

func TestSuiteCatchesBrokenAppenders(t *testing.T) {
	tests := []struct {
		name       string
		sink       func() audit.Sink
		wantFailed []string
	}{
		{"chosen IDs are not looked up", func() audit.Sink { return &naiveAppender{MemorySink: audit.NewMemorySink()} },
			[]string{"Append stores an event whose ID the caller chose at most once, and the rest of its batch"}},
		{"every batch starts a new chain", func() audit.Sink { return &naiveAppender{MemorySink: audit.NewMemorySink(), fromZero: true} },
			[]string{"Append continues the chain after events that Write stored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runRecorded(tt.sink)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q; it reported %v", rule, keys(failed))
				}
			}
		})
	}
}

// sharedCursors lets every owner claim a cursor.
type sharedCursors struct{ *audit.MemoryCursors }

func (s sharedCursors) ClaimCursor(ctx context.Context, name, _ string, ttl time.Duration) (uint64, error) {
	return s.MemoryCursors.ClaimCursor(ctx, name, "everyone", ttl)
}

func TestCursorSuiteCatchesBrokenStores(t *testing.T) {
	newHarness := func(store func(*audit.MemoryCursors) audit.CursorStore) func(tb) CursorHarness {
		return func(tb) CursorHarness {
			var mu sync.Mutex
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			return CursorHarness{Store: store(audit.NewMemoryCursors(clock)), TTL: time.Minute,
				Wait: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }}
		}
	}
	r := conformance.NewRecorder("suite")
	runCursors(r, newHarness(func(m *audit.MemoryCursors) audit.CursorStore { return m }))
	if f := r.Failures(); len(f) > 0 {
		t.Errorf("the suite failed MemoryCursors: %v", f)
	}
	r = conformance.NewRecorder("suite")
	runCursors(r, newHarness(func(m *audit.MemoryCursors) audit.CursorStore { return sharedCursors{m} }))
	if _, ok := r.Failures()["a claimed cursor is refused to another owner with ErrCursorHeld"]; !ok {
		t.Errorf("the suite did not catch a store that lets every owner claim; it reported %v", keys(r.Failures()))
	}
}
