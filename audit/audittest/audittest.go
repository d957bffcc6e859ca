package audittest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/internal/conformance"
)

// NewSink returns a new, empty sink for one case. Register any clean-up
// with t.Cleanup.
type NewSink func(t *testing.T) audit.Sink

// tb is the part of *testing.T the suite uses, so that the suite's own
// tests can run it with a conformance.Recorder instead of a *testing.T.
type tb = conformance.T

type testCase struct {
	rule       string
	needReader bool
	run        func(t tb, s audit.Sink)
}

// RunConformance runs every case on a fresh sink from newSink.
func RunConformance(t *testing.T, newSink NewSink) {
	t.Helper()
	run(conformance.Wrap(t), func(t tb) audit.Sink { return newSink(conformance.Testing(t)) })
}

// run runs every case as a subtest of t, each on a fresh sink.
func run(t tb, newSink func(t tb) audit.Sink) {
	for _, tc := range cases {
		t.Run(tc.rule, func(t tb) {
			s := newSink(t)
			if _, ok := s.(audit.Reader); tc.needReader && !ok {
				t.Skipf("the sink is not an audit.Reader")
			}
			tc.run(t, s)
		})
	}
	runAppenderCases(t, newSink)
}

var cases = []testCase{
	{"Write of an empty batch succeeds and stores nothing", false, emptyBatch},
	{"Write with a canceled context fails and stores nothing", false, canceledWrite},
	{"a chain written by a Logger is accepted and, when read back, verifies", false, loggerChain},
	{"concurrent Writes of disjoint batches all succeed and read back in sequence order", false, concurrentWrites},
	{"Events returns stored events in sequence order", true, ordering},
	{"Events yields only events at or after from", true, eventsFrom},
	{"Events streams more events than fit in one page", true, manyEvents},
	{"Events can be stopped early, and the sink keeps working", true, earlyStop},
	{"Events with a canceled context yields the context's error", true, canceledEvents},
	{"Last returns the zero Event when nothing is stored, then the highest sequence", true, last},
	{"Write of a batch holding a stored sequence fails with ErrDuplicateSequence and stores nothing of the batch", true, duplicateStored},
	{"Write of a batch repeating a sequence fails with ErrDuplicateSequence and stores nothing", true, duplicateInBatch},
	{"every field round-trips: Time to the microsecond, Details to the same canonical JSON", true, roundTrip},
	{"Write does not keep the caller's slice", true, noAliasing},
}

var key = []byte("audittest key, 32 bytes long....")

// chain returns n chained events made by a Logger.
func chain(t tb, n int) []audit.Event {
	t.Helper()
	mem := audit.NewMemorySink()
	clock := time.Date(2025, 3, 1, 12, 0, 0, 987654321, time.UTC)
	l, err := audit.NewLogger(mem, audit.WithKey("k1", key), audit.WithNow(func() time.Time {
		clock = clock.Add(time.Millisecond + time.Nanosecond)
		return clock
	}))
	if err != nil {
		t.Fatalf("%v", err)
	}
	types := []audit.Type{audit.DataAccess, audit.DataExport, audit.DataDeletion, audit.ConsentChange,
		audit.AccessDenied, audit.RetentionPurge, audit.RoleChange}
	for i := range n {
		err := l.Log(t.Context(), audit.Event{Type: types[i%len(types)], Subject: fmt.Sprintf("user_%d", i%5),
			Actor: "user_admin", Details: map[string]any{"i": i}})
		if err != nil {
			t.Fatalf("%v", err)
		}
	}
	return mem.Snapshot()
}

// plain returns n unchained events numbered from first.
func plain(first uint64, n int) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		seq := first + uint64(i)
		out[i] = audit.Event{
			ID: fmt.Sprintf("id-%d", seq), Type: audit.DataAccess, Subject: "hmac-sha256:k1:00",
			Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Sequence: seq, KeyID: "k1",
			PrevHash: fmt.Sprintf("p%d", seq), Hash: fmt.Sprintf("h%d", seq),
		}
	}
	return out
}

func write(t tb, s audit.Sink, events []audit.Event) {
	t.Helper()
	if err := s.Write(t.Context(), events); err != nil {
		t.Fatalf("Write of sequences %v: %v", seqs(events), err)
	}
}

func readAll(t tb, s audit.Sink, from uint64) []audit.Event {
	t.Helper()
	r, ok := s.(audit.Reader)
	if !ok {
		return nil
	}
	var out []audit.Event
	for e, err := range r.Events(t.Context(), from) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func seqs(events []audit.Event) []uint64 {
	out := make([]uint64, 0, len(events))
	for _, e := range events {
		out = append(out, e.Sequence)
	}
	return out
}

func wantSeqs(t tb, s audit.Sink, want []uint64) {
	t.Helper()
	if _, ok := s.(audit.Reader); !ok {
		return
	}
	got := seqs(readAll(t, s, 0))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored sequences (-want +got):\n%s", diff)
	}
}

func emptyBatch(t tb, s audit.Sink) {
	write(t, s, nil)
	write(t, s, []audit.Event{})
	wantSeqs(t, s, []uint64{})
}

func canceledWrite(t tb, s audit.Sink) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, chain(t, 3)); err == nil {
		t.Fatalf("Write with a canceled context succeeded")
	}
	wantSeqs(t, s, []uint64{})
}

func loggerChain(t tb, s audit.Sink) {
	l, err := audit.NewLogger(s, audit.WithKey("k1", key))
	if err != nil {
		t.Fatalf("%v", err)
	}
	for i := range 20 {
		err := l.Log(t.Context(), audit.Event{Type: audit.DataExport, Subject: "user_1", Actor: "user_2",
			Details: map[string]any{"i": i, "f": 0.1 * float64(i), "big": uint64(math.MaxUint64), "s": "é\n\"<>"}})
		if err != nil {
			t.Fatalf("Log %d: %v", i, err)
		}
	}
	if r, ok := s.(audit.Reader); ok {
		if err := audit.Verify(r.Events(t.Context(), 0)); err != nil {
			t.Fatalf("Verify of the events read back: %v", err)
		}
	}
}

func concurrentWrites(t tb, s audit.Sink) {
	const writers, batches, size = 6, 4, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				first := uint64(1 + (b*writers+w)*size)
				if err := s.Write(t.Context(), plain(first, size)); err != nil {
					t.Errorf("writer %d, batch from %d: %v", w, first, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := make([]uint64, writers*batches*size)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	wantSeqs(t, s, want)
}

func ordering(t tb, s audit.Sink) {
	ev := plain(1, 9)
	write(t, s, ev[6:9])
	write(t, s, []audit.Event{ev[1], ev[0]})
	write(t, s, ev[2:6])
	wantSeqs(t, s, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9})
}

func eventsFrom(t tb, s audit.Sink) {
	write(t, s, plain(1, 5))
	for _, tc := range []struct {
		from uint64
		want []uint64
	}{{0, []uint64{1, 2, 3, 4, 5}}, {1, []uint64{1, 2, 3, 4, 5}}, {4, []uint64{4, 5}}, {6, []uint64{}}, {math.MaxUint64, []uint64{}}} {
		if diff := cmp.Diff(tc.want, seqs(readAll(t, s, tc.from))); diff != "" {
			t.Errorf("Events from %d (-want +got):\n%s", tc.from, diff)
		}
	}
}

func manyEvents(t tb, s audit.Sink) {
	ev := chain(t, 1200)
	for i := 0; i < len(ev); i += 400 {
		write(t, s, ev[i:i+400])
	}
	got := readAll(t, s, 0)
	if len(got) != len(ev) {
		t.Fatalf("read %d events, want %d", len(got), len(ev))
	}
	if err := audit.Verify(s.(audit.Reader).Events(t.Context(), 0)); err != nil {
		t.Errorf("%v", err)
	}
}

func earlyStop(t tb, s audit.Sink) {
	write(t, s, plain(1, 600))
	r := s.(audit.Reader)
	for range 3 {
		for _, err := range r.Events(t.Context(), 0) {
			if err != nil {
				t.Fatalf("%v", err)
			}
			break
		}
	}
	write(t, s, plain(601, 1))
	if e, err := r.Last(t.Context()); err != nil || e.Sequence != 601 {
		t.Fatalf("Last after stopped reads = %d, %v", e.Sequence, err)
	}
}

func canceledEvents(t tb, s audit.Sink) {
	write(t, s, plain(1, 3))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var gotErr error
	n := 0
	for _, err := range s.(audit.Reader).Events(ctx, 0) {
		if err != nil {
			gotErr = err
			break
		}
		n++
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Errorf("Events with a canceled context yielded %d events and error %v, want context.Canceled", n, gotErr)
	}
}

func last(t tb, s audit.Sink) {
	r := s.(audit.Reader)
	e, err := r.Last(t.Context())
	if err != nil || e.Sequence != 0 || e.Hash != "" {
		t.Fatalf("Last on an empty sink = %+v, %v; want the zero Event", e, err)
	}
	ev := chain(t, 4)
	write(t, s, ev[2:4])
	write(t, s, ev[0:2])
	e, err = r.Last(t.Context())
	if err != nil {
		t.Fatalf("%v", err)
	}
	if diff := cmp.Diff(normalize(t, ev[3]), normalize(t, e)); diff != "" {
		t.Errorf("Last (-want +got):\n%s", diff)
	}
}

func duplicateStored(t tb, s audit.Sink) {
	write(t, s, plain(1, 3))
	err := s.Write(t.Context(), plain(3, 3)) // 3 is stored, 4 and 5 are new
	if !errors.Is(err, audit.ErrDuplicateSequence) {
		t.Fatalf("Write = %v, want ErrDuplicateSequence", err)
	}
	wantSeqs(t, s, []uint64{1, 2, 3})
	write(t, s, plain(4, 2))
	wantSeqs(t, s, []uint64{1, 2, 3, 4, 5})
}

func duplicateInBatch(t tb, s audit.Sink) {
	batch := append(plain(1, 3), plain(2, 1)...)
	if err := s.Write(t.Context(), batch); !errors.Is(err, audit.ErrDuplicateSequence) {
		t.Fatalf("Write = %v, want ErrDuplicateSequence", err)
	}
	wantSeqs(t, s, []uint64{})
}

// normalize makes an event comparable after a round trip: Time in UTC and
// Details as decoded from their canonical JSON.
func normalize(t tb, e audit.Event) audit.Event {
	t.Helper()
	e.Time = e.Time.UTC()
	raw, err := audit.CanonicalDetails(e.Details)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if e.Details, err = audit.ParseDetails(raw); err != nil {
		t.Fatalf("%v", err)
	}
	return e
}

type stringer struct{ A, B string }

func roundTrip(t tb, s audit.Sink) {
	when := time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.FixedZone("X", -5*3600))
	in := []audit.Event{
		{
			ID: "8c1e2f4a-1b2c-4d5e-8f90-a1b2c3d4e5f6", Type: audit.ConsentChange,
			Subject: "hmac-sha256:k1:" + hexOf(1), Actor: "hmac-sha256:k1:" + hexOf(2),
			Details: map[string]any{
				"purpose": "marketing", "granted": true, "version": json.Number("3"),
				"big": uint64(math.MaxUint64), "neg": -42, "pi": 3.141592653589793, "tiny": 1e-9,
				"nested": map[string]any{"list": []any{"a", 1, nil, false}, "z": map[string]any{}},
				"text":   "é ü 中文 \u2028 \"quoted\" \\ <tag> & \t\n", "struct": stringer{"x", "y"},
			},
			Time: when, Sequence: 1, KeyID: "k1", PrevHash: "", Hash: hexOf(3),
		},
		{
			ID: "e2", Type: audit.Type("custom_type"), Subject: "", Actor: "system:retention",
			Time: time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), Sequence: 2, KeyID: "", PrevHash: hexOf(3), Hash: hexOf(4),
		},
		{
			ID: "e3", Type: audit.AccessDenied, Subject: "hmac-sha256:k2:" + hexOf(5),
			Details: map[string]any{}, Time: time.Date(2999, 6, 1, 0, 0, 0, 0, time.UTC),
			Sequence: math.MaxInt64, KeyID: "k2", PrevHash: hexOf(4), Hash: hexOf(6),
		},
	}
	write(t, s, in)
	got := readAll(t, s, 0)
	want := make([]audit.Event, len(in))
	for i := range in {
		want[i] = normalize(t, in[i])
	}
	for i := range got {
		got[i] = normalize(t, got[i])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events read back (-want +got):\n%s", diff)
	}
}

func hexOf(b byte) string {
	out := make([]byte, 64)
	for i := range out {
		out[i] = "0123456789abcdef"[(int(b)+i)%16]
	}
	return string(out)
}

func noAliasing(t tb, s audit.Sink) {
	batch := plain(1, 3)
	write(t, s, batch)
	want := slices.Clone(batch)
	for i := range batch {
		batch[i].Hash = "changed"
		batch[i].Sequence += 100
	}
	got := readAll(t, s, 0)
	if diff := cmp.Diff(seqs(want), seqs(got)); diff != "" {
		t.Errorf("after the caller reused its slice (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.Hash == "changed" {
			t.Errorf("the sink kept the caller's slice")
			break
		}
	}
}
