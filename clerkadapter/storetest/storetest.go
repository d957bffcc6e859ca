package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/internal/conformance"
)

// tb is the part of *testing.T the suites use, so that their own tests
// can run them with a conformance.Recorder.
type tb = conformance.T

// ReplayHarness is one clerkadapter.ReplayStore under test.
type ReplayHarness struct {
	// Store is the implementation under test, holding no IDs.
	Store clerkadapter.ReplayStore
	// Peer, when set, is a second handle on Store's storage, as another
	// process would open it; nil means Store.
	Peer clerkadapter.ReplayStore
	// TTL is the short lifetime the expiry cases give an ID; two calls
	// in a row must fall well within it. Wait lets d pass on the store's
	// clock (advance a fake clock, or sleep).
	TTL  time.Duration
	Wait func(d time.Duration)
}

// RunReplayConformance runs the ReplayStore rules, each on a fresh
// harness.
func RunReplayConformance(t *testing.T, newHarness func(t *testing.T) ReplayHarness) {
	t.Helper()
	runReplay(conformance.Wrap(t), func(t tb) ReplayHarness { return newHarness(conformance.Testing(t)) })
}

func runReplay(t tb, newHarness func(t tb) ReplayHarness) {
	for _, c := range replayCases {
		t.Run(c.rule, func(t tb) {
			h := newHarness(t)
			if h.Peer == nil {
				h.Peer = h.Store
			}
			c.run(t, h)
		})
	}
}

// long is a lifetime no case outlives.
const long = time.Hour

func seen(t tb, s clerkadapter.ReplayStore, id string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.SeenMessage(t.Context(), id, ttl)
	if err != nil {
		t.Fatalf("SeenMessage(%q, %v): %v", id, ttl, err)
	}
	return ok
}

func handled(t tb, s clerkadapter.ReplayStore, id string) bool {
	t.Helper()
	ok, err := s.MessageHandled(t.Context(), id)
	if err != nil {
		t.Fatalf("MessageHandled(%q): %v", id, err)
	}
	return ok
}

func handle(t tb, s clerkadapter.ReplayStore, id string) {
	t.Helper()
	if err := s.HandleMessage(t.Context(), id); err != nil {
		t.Fatalf("HandleMessage(%q): %v", id, err)
	}
}

var replayCases = []struct {
	rule string
	run  func(t tb, h ReplayHarness)
}{
	{"an ID never recorded is not seen, and SeenMessage records it", func(t tb, h ReplayHarness) {
		if seen(t, h.Store, "msg_1", long) {
			t.Errorf("SeenMessage of a new ID = true, want false")
		}
		if !seen(t, h.Store, "msg_1", long) {
			t.Errorf("second SeenMessage of the ID = false, want true")
		}
	}},
	{"an ID recorded through one handle is seen through another, as by another process", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", long)
		if !seen(t, h.Peer, "msg_1", long) {
			t.Errorf("SeenMessage through the peer = false, want true")
		}
	}},
	{"IDs are independent: recording one does not record another", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", long)
		if seen(t, h.Store, "msg_2", long) {
			t.Errorf("SeenMessage of another ID = true, want false")
		}
	}},
	{"an ID whose ttl has passed is not seen, and is recorded afresh", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", h.TTL)
		h.Wait(2 * h.TTL)
		if seen(t, h.Peer, "msg_1", long) {
			t.Errorf("SeenMessage after the ttl = true, want false")
		}
		if !seen(t, h.Store, "msg_1", long) {
			t.Errorf("SeenMessage after recording afresh = false, want true")
		}
	}},
	{"finding an ID seen leaves its expiry as it was", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", h.TTL)
		if !seen(t, h.Store, "msg_1", long) {
			t.Fatalf("SeenMessage within the ttl = false, want true")
		}
		h.Wait(2 * h.TTL)
		if seen(t, h.Store, "msg_1", long) {
			t.Errorf("SeenMessage after the first ttl = true: a replay extended the record")
		}
	}},
	{"a forgotten ID is not seen; forgetting an ID never recorded is not an error", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", long)
		if err := h.Store.ForgetMessage(t.Context(), "msg_1"); err != nil {
			t.Fatalf("ForgetMessage: %v", err)
		}
		if seen(t, h.Peer, "msg_1", long) {
			t.Errorf("SeenMessage of a forgotten ID = true, want false")
		}
		if err := h.Store.ForgetMessage(t.Context(), "msg_unknown"); err != nil {
			t.Errorf("ForgetMessage of an unknown ID: %v", err)
		}
	}},
	{"of concurrent SeenMessage calls with one ID, through both handles, exactly one finds it unseen", func(t tb, h ReplayHarness) {
		for round := range 5 {
			id := fmt.Sprintf("msg_race_%d", round)
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				unseen int
			)
			for i := range 8 {
				s := h.Store
				if i%2 == 1 {
					s = h.Peer
				}
				wg.Go(func() {
					ok, err := s.SeenMessage(t.Context(), id, long)
					if err != nil {
						t.Errorf("SeenMessage: %v", err)
						return
					}
					if !ok {
						mu.Lock()
						unseen++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if unseen != 1 {
				t.Errorf("round %d: %d of 8 concurrent calls found the ID unseen, want 1", round, unseen)
			}
		}
	}},
	{"a recorded ID is not handled until HandleMessage, then handled through both handles, and still seen", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", long)
		if handled(t, h.Peer, "msg_1") {
			t.Errorf("MessageHandled of an ID just recorded = true, want false")
		}
		handle(t, h.Peer, "msg_1")
		if !handled(t, h.Store, "msg_1") || !handled(t, h.Peer, "msg_1") {
			t.Errorf("MessageHandled after HandleMessage = false, want true through both handles")
		}
		if !seen(t, h.Store, "msg_1", long) {
			t.Errorf("SeenMessage of a handled ID = false, want true")
		}
		if handled(t, h.Store, "msg_2") {
			t.Errorf("MessageHandled of another ID = true, want false")
		}
	}},
	{"HandleMessage of an ID never recorded records nothing and is not an error", func(t tb, h ReplayHarness) {
		handle(t, h.Store, "msg_unknown")
		if handled(t, h.Peer, "msg_unknown") {
			t.Errorf("MessageHandled of an ID never recorded = true, want false")
		}
		if seen(t, h.Peer, "msg_unknown", long) {
			t.Errorf("HandleMessage recorded an ID it was not given by SeenMessage")
		}
	}},
	{"a handled ID is unhandled once forgotten or expired, and recorded afresh unhandled", func(t tb, h ReplayHarness) {
		seen(t, h.Store, "msg_1", long)
		handle(t, h.Store, "msg_1")
		if err := h.Store.ForgetMessage(t.Context(), "msg_1"); err != nil {
			t.Fatalf("ForgetMessage: %v", err)
		}
		if handled(t, h.Peer, "msg_1") {
			t.Errorf("MessageHandled of a forgotten ID = true, want false")
		}
		seen(t, h.Store, "msg_2", h.TTL)
		handle(t, h.Store, "msg_2")
		h.Wait(2 * h.TTL)
		if handled(t, h.Peer, "msg_2") {
			t.Errorf("MessageHandled after the ttl = true, want false")
		}
		if seen(t, h.Peer, "msg_2", long) {
			t.Fatalf("SeenMessage after the ttl = true, want false")
		}
		if handled(t, h.Store, "msg_2") {
			t.Errorf("an ID recorded afresh after its handled record expired is handled, want not")
		}
	}},
	{"SeenMessage refuses an empty ID and a ttl that is not positive", func(t tb, h ReplayHarness) {
		for _, a := range []struct {
			id  string
			ttl time.Duration
		}{{"", long}, {"msg_1", 0}, {"msg_1", -time.Second}} {
			if _, err := h.Store.SeenMessage(t.Context(), a.id, a.ttl); err == nil {
				t.Errorf("SeenMessage(%q, %v) succeeded, want an error", a.id, a.ttl)
			}
		}
		if seen(t, h.Store, "msg_1", long) {
			t.Errorf("a refused call recorded its ID")
		}
	}},
}

// InvalidationHarness is one clerkadapter.InvalidationLog under test.
type InvalidationHarness struct {
	// Log is the implementation under test, holding no records.
	Log clerkadapter.InvalidationLog
	// Peer, when set, is a second handle on Log's storage, as another
	// process would open it; nil means Log.
	Peer clerkadapter.InvalidationLog
	// TTL is the short keep the expiry case gives a record. Wait lets d
	// pass on the log's clock (advance a fake clock, or sleep).
	TTL  time.Duration
	Wait func(d time.Duration)
}

// RunInvalidationConformance runs the InvalidationLog rules, each on a
// fresh harness.
func RunInvalidationConformance(t *testing.T, newHarness func(t *testing.T) InvalidationHarness) {
	t.Helper()
	runInvalidations(conformance.Wrap(t), func(t tb) InvalidationHarness { return newHarness(conformance.Testing(t)) })
}

func runInvalidations(t tb, newHarness func(t tb) InvalidationHarness) {
	for _, c := range invalidationCases {
		t.Run(c.rule, func(t tb) {
			h := newHarness(t)
			if h.Peer == nil {
				h.Peer = h.Log
			}
			c.run(t, h)
		})
	}
}

func record(t tb, l clerkadapter.InvalidationLog, keep time.Duration, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := l.Invalidate(t.Context(), id, keep); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
	}
}

// readAll reads from cursor until the log returns nothing, and returns
// the IDs and the last cursor.
func readAll(t tb, l clerkadapter.InvalidationLog, cursor int64) ([]string, int64) {
	t.Helper()
	var all []string
	for range 10_000 {
		ids, next, err := l.InvalidatedSince(t.Context(), cursor)
		if err != nil {
			t.Fatalf("InvalidatedSince(%d): %v", cursor, err)
		}
		if len(ids) == 0 {
			if next != cursor {
				t.Errorf("InvalidatedSince(%d) returned nothing and next %d, want next = cursor", cursor, next)
			}
			return all, cursor
		}
		if next == cursor {
			t.Fatalf("InvalidatedSince(%d) returned %d IDs without moving the cursor", cursor, len(ids))
		}
		all = append(all, ids...)
		cursor = next
	}
	t.Fatalf("InvalidatedSince never ran out of records")
	return nil, 0
}

var invalidationCases = []struct {
	rule string
	run  func(t tb, h InvalidationHarness)
}{
	{"an empty log returns no IDs, and next equal to the cursor", func(t tb, h InvalidationHarness) {
		ids, next, err := h.Log.InvalidatedSince(t.Context(), 0)
		if err != nil || len(ids) != 0 || next != 0 {
			t.Errorf("InvalidatedSince(0) = %v, %d, %v; want none, 0, nil", ids, next, err)
		}
	}},
	{"records come back oldest first, repeats included, and next reads only later ones", func(t tb, h InvalidationHarness) {
		record(t, h.Log, long, "user_a", "user_b", "user_a", "user_c")
		got, cursor := readAll(t, h.Log, 0)
		if diff := cmp.Diff([]string{"user_a", "user_b", "user_a", "user_c"}, got); diff != "" {
			t.Errorf("from 0 (-want +got):\n%s", diff)
		}
		record(t, h.Log, long, "user_d")
		got, _ = readAll(t, h.Log, cursor)
		if diff := cmp.Diff([]string{"user_d"}, got); diff != "" {
			t.Errorf("from the cursor after the first four (-want +got):\n%s", diff)
		}
	}},
	{"a record made through one handle is read through another, as by another process", func(t tb, h InvalidationHarness) {
		_, cursor := readAll(t, h.Peer, 0)
		record(t, h.Log, long, "user_a")
		got, _ := readAll(t, h.Peer, cursor)
		if diff := cmp.Diff([]string{"user_a"}, got); diff != "" {
			t.Errorf("through the peer (-want +got):\n%s", diff)
		}
	}},
	{"more records than one call returns are all read, in order, over several calls", func(t tb, h InvalidationHarness) {
		var want []string
		for i := range 700 {
			want = append(want, fmt.Sprintf("user_%03d", i))
		}
		record(t, h.Log, long, want...)
		got, _ := readAll(t, h.Peer, 0)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("700 records (-want +got):\n%s", diff)
		}
	}},
	{"a reader polling while both handles record misses none and reads each once", func(t tb, h InvalidationHarness) {
		const writers, each = 4, 40
		done := make(chan struct{})
		var (
			got    []string
			cursor int64
		)
		reader := make(chan struct{})
		go func() {
			defer close(reader)
			for {
				select {
				case <-done:
					return
				default:
				}
				ids, next, err := h.Peer.InvalidatedSince(t.Context(), cursor)
				if err != nil {
					t.Errorf("InvalidatedSince: %v", err)
					return
				}
				got, cursor = append(got, ids...), next
			}
		}()
		var wg sync.WaitGroup
		var want []string
		for w := range writers {
			l := h.Log
			if w%2 == 1 {
				l = h.Peer
			}
			for i := range each {
				want = append(want, fmt.Sprintf("user_w%d_%02d", w, i))
			}
			wg.Go(func() {
				for i := range each {
					if err := l.Invalidate(t.Context(), fmt.Sprintf("user_w%d_%02d", w, i), long); err != nil {
						t.Errorf("Invalidate: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(done)
		<-reader
		rest, _ := readAll(t, h.Peer, cursor)
		got = append(got, rest...)
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("records read while %d writers recorded (-want +got):\n%s", writers, diff)
		}
	}},
	{"a record is kept at least until its keep has passed", func(t tb, h InvalidationHarness) {
		record(t, h.Log, long, "user_kept")
		record(t, h.Log, h.TTL, "user_brief")
		h.Wait(2 * h.TTL)
		record(t, h.Peer, long, "user_later") // a log may drop expired records here
		got, _ := readAll(t, h.Log, 0)
		got = slices.DeleteFunc(got, func(id string) bool { return id == "user_brief" })
		if diff := cmp.Diff([]string{"user_kept", "user_later"}, got); diff != "" {
			t.Errorf("records after one expired (-want +got):\n%s", diff)
		}
	}},
	{"Invalidate refuses an empty user ID and a keep that is not positive", func(t tb, h InvalidationHarness) {
		for _, a := range []struct {
			id   string
			keep time.Duration
		}{{"", long}, {"user_a", 0}, {"user_a", -time.Second}} {
			if err := h.Log.Invalidate(t.Context(), a.id, a.keep); err == nil {
				t.Errorf("Invalidate(%q, %v) succeeded, want an error", a.id, a.keep)
			}
		}
		if got, _ := readAll(t, h.Log, 0); len(got) != 0 {
			t.Errorf("refused calls recorded %v", got)
		}
	}},
}
