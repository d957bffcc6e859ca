package privacytest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

// memHarness serves any DataStore built over a MemoryStore.
type memHarness struct {
	m *privacy.MemoryStore
	s privacy.DataStore
}

func (h memHarness) Store() privacy.DataStore { return h.s }
func (h memHarness) Capabilities() DataStoreCapabilities {
	return DataStoreCapabilities{Ordered: true, ExactCount: true}
}
func (h memHarness) Close() {}
func (h memHarness) Seed(_ context.Context, userID string) ([]privacy.Record, error) {
	recs := []privacy.Record{
		{Category: "profile", Data: map[string]any{"displayName": "Ada", "bio": "math"}},
		{Category: "orders", Data: map[string]any{"total": 42, "items": []any{"tea", "cake"}}},
		{Category: "orders", Data: map[string]any{"total": 7.5, "note": map[string]any{"gift": true}}},
		{Category: "activityLog", Data: map[string]any{"action": "login"}},
	}
	h.m.Add(userID, recs...)
	return recs, nil
}

func runDataStoreRecorded(wrap func(*privacy.MemoryStore) privacy.DataStore) map[string][]string {
	r := conformance.NewRecorder("suite")
	runDataStore(r, func(ctx context.Context, t tb) (DataStoreHarness, error) {
		m := privacy.NewMemoryStore("app")
		return memHarness{m: m, s: wrap(m)}, nil
	}, config{blockTimeout: 300 * time.Millisecond})
	return r.Failures()
}

func TestDataStoreSuitePassesMemoryStore(t *testing.T) {
	for rule, msgs := range runDataStoreRecorded(func(m *privacy.MemoryStore) privacy.DataStore { return m }) {
		t.Errorf("rule %q failed on MemoryStore: %s", rule, strings.Join(msgs, "\n"))
	}
}

// oneCategory seeds records of a single category: a store that keeps only
// one kind of data can run the suite too.
type oneCategory struct{ memHarness }

func (h oneCategory) Seed(_ context.Context, userID string) ([]privacy.Record, error) {
	recs := []privacy.Record{
		{Category: "orders", Data: map[string]any{"total": 42}},
		{Category: "orders", Data: map[string]any{"total": 7.5}},
	}
	h.m.Add(userID, recs...)
	return recs, nil
}

func TestDataStoreSuiteAcceptsOneCategory(t *testing.T) {
	r := conformance.NewRecorder("suite")
	runDataStore(r, func(ctx context.Context, t tb) (DataStoreHarness, error) {
		m := privacy.NewMemoryStore("app")
		return oneCategory{memHarness{m: m, s: m}}, nil
	}, config{blockTimeout: 300 * time.Millisecond})
	for rule, msgs := range r.Failures() {
		t.Errorf("rule %q failed on a one-category store: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestRunDataStoreConformance(t *testing.T) {
	RunDataStoreConformance(t, func(ctx context.Context, t *testing.T) (DataStoreHarness, error) {
		m := privacy.NewMemoryStore("app")
		return memHarness{m: m, s: m}, nil
	})
}

func TestDataStoreSuiteCatchesBrokenStores(t *testing.T) {
	tests := []struct {
		name       string
		wrap       func(*privacy.MemoryStore) privacy.DataStore
		wantFailed []string
	}{
		{
			name: "Erase fails for a user with no data",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return strictErase{m} },
			wantFailed: []string{
				"Erase is idempotent: a second Erase reports zero and no error",
				"Erase of a user with no data reports zero and no error",
			},
		},
		{
			name: "Export keeps yielding after the consumer stops",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return ignoresStop{m} },
			wantFailed: []string{
				"Export stops when the consumer stops",
			},
		},
		{
			name: "Export interleaves categories",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return interleaved{m} },
			wantFailed: []string{
				"Export yields the records of one category together",
			},
		},
		{
			name: "Export yields stored maps",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return newSharedMaps(m) },
			wantFailed: []string{
				"changing an exported record changes nothing stored",
			},
		},
		{
			name: "calls ignore their context",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return ignoresContext{m} },
			wantFailed: []string{
				"Export with a cancelled context yields the context's error, last",
				"Erase with a cancelled context returns the context's error and erases nothing",
			},
		},
		{
			name: "errors name the user",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return leaksID{m} },
			wantFailed: []string{
				"errors never contain the user ID",
			},
		},
		{
			name: "Erase counts wrongly and leaves data behind",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return &halfErase{MemoryStore: m} },
			wantFailed: []string{
				"after Erase, Export of the user yields nothing",
				"Erase of a user with data reports what it erased",
			},
		},
		{
			name: "Export leaks another user's records",
			wrap: func(m *privacy.MemoryStore) privacy.DataStore { return &leaky{MemoryStore: m} },
			wantFailed: []string{
				"Export yields only the requested user's records",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runDataStoreRecorded(tt.wrap)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q", rule)
				}
			}
			if t.Failed() {
				t.Logf("rules reported broken: %v", failed)
			}
		})
	}
}

// ---- broken stores ----

type strictErase struct{ *privacy.MemoryStore }

func (s strictErase) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	if s.Len(id) == 0 {
		return privacy.Erased{}, errors.New("no such user")
	}
	return s.MemoryStore.Erase(ctx, id)
}

type ignoresStop struct{ *privacy.MemoryStore }

func (s ignoresStop) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		for r, err := range s.MemoryStore.Export(ctx, id) {
			defer func() { _ = recover() }() // a range loop body called after false panics
			yield(r, err)
		}
	}
}

type interleaved struct{ *privacy.MemoryStore }

func (s interleaved) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		var recs []privacy.Record
		for r, err := range s.MemoryStore.Export(ctx, id) {
			if err != nil {
				yield(r, err)
				return
			}
			recs = append(recs, r)
		}
		// Deal the records out round-robin by category.
		byCat := map[string][]privacy.Record{}
		var cats []string
		for _, r := range recs {
			if _, ok := byCat[r.Category]; !ok {
				cats = append(cats, r.Category)
			}
			byCat[r.Category] = append(byCat[r.Category], r)
		}
		for more := true; more; {
			more = false
			for _, c := range cats {
				if len(byCat[c]) == 0 {
					continue
				}
				more = true
				if !yield(byCat[c][0], nil) {
					return
				}
				byCat[c] = byCat[c][1:]
			}
		}
	}
}

// sharedMaps hands out the same Data maps on every Export of a user.
type sharedMaps struct {
	*privacy.MemoryStore
	mu    sync.Mutex
	cache map[string][]privacy.Record
}

func newSharedMaps(m *privacy.MemoryStore) *sharedMaps {
	return &sharedMaps{MemoryStore: m, cache: map[string][]privacy.Record{}}
}

func (s *sharedMaps) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		s.mu.Lock()
		recs, ok := s.cache[id]
		if !ok {
			for r, err := range s.MemoryStore.Export(ctx, id) {
				if err != nil {
					s.mu.Unlock()
					yield(r, err)
					return
				}
				recs = append(recs, r)
			}
			s.cache[id] = recs
		}
		s.mu.Unlock()
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

type ignoresContext struct{ *privacy.MemoryStore }

func (s ignoresContext) Export(_ context.Context, id string) iter.Seq2[privacy.Record, error] {
	return s.MemoryStore.Export(context.Background(), id)
}

func (s ignoresContext) Erase(_ context.Context, id string) (privacy.Erased, error) {
	return s.MemoryStore.Erase(context.Background(), id)
}

type leaksID struct{ *privacy.MemoryStore }

func (s leaksID) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	er, err := s.MemoryStore.Erase(ctx, id)
	if err != nil {
		err = fmt.Errorf("erase %s: %w", id, err)
	}
	return er, err
}

// halfErase erases only the first category and reports nothing.
type halfErase struct {
	*privacy.MemoryStore
}

func (s *halfErase) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	var keep []privacy.Record
	first := ""
	for r, err := range s.MemoryStore.Export(ctx, id) {
		if err != nil {
			return privacy.Erased{}, err
		}
		if first == "" {
			first = r.Category
		}
		if r.Category != first {
			keep = append(keep, r)
		}
	}
	if _, err := s.MemoryStore.Erase(ctx, id); err != nil {
		return privacy.Erased{}, err
	}
	s.Add(id, keep...)
	return privacy.Erased{}, nil
}

// leaky appends the first-seeded user's records to every other user's export.
type leaky struct {
	*privacy.MemoryStore
	mu    sync.Mutex
	first string
}

func (s *leaky) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	s.mu.Lock()
	if s.first == "" && s.Len(id) > 0 {
		s.first = id
	}
	first := s.first
	s.mu.Unlock()
	return func(yield func(privacy.Record, error) bool) {
		for r, err := range s.MemoryStore.Export(ctx, id) {
			if !yield(r, err) || err != nil {
				return
			}
		}
		if first == id {
			return
		}
		for r, err := range s.MemoryStore.Export(ctx, first) {
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}
