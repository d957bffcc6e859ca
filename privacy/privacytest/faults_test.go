package privacytest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
)

// seeded returns a MemoryStore holding three records of user_1.
func seeded() *privacy.MemoryStore {
	m := privacy.NewMemoryStore("orders")
	for i := range 3 {
		m.Add("user_1", privacy.Record{Category: "orders", Data: map[string]any{"n": i}})
	}
	return m
}

// export drains an Export and returns how many records came and the
// error that ended it.
func export(ctx context.Context, s privacy.DataStore) (int, error) {
	n := 0
	for _, err := range s.Export(ctx, "user_1") {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func TestFaultyStore(t *testing.T) {
	boom := errors.New("deadlock detected")
	type outcome struct {
		Records   int
		ExportErr string
		Erased    int
		EraseErr  string
	}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	tests := []struct {
		name  string
		setup func(f *privacytest.FaultyStore)
		want  []outcome // one Export then one Erase per round
	}{
		{"no faults forwards every call", func(*privacytest.FaultyStore) {},
			[]outcome{{3, "", 3, ""}, {0, "", 0, ""}}},
		{"FailNext fails the next n calls of each, then forwards", func(f *privacytest.FaultyStore) { f.FailNext(1, boom) },
			[]outcome{{0, boom.Error(), 0, boom.Error()}, {3, "", 3, ""}}},
		{"FailNextErase leaves Export alone", func(f *privacytest.FaultyStore) { f.FailNextErase(2, nil) },
			[]outcome{{3, "", 0, privacytest.ErrInjected.Error()}, {3, "", 0, privacytest.ErrInjected.Error()}, {3, "", 3, ""}}},
		{"FailNextExport leaves Erase alone", func(f *privacytest.FaultyStore) { f.FailNextExport(1, nil) },
			[]outcome{{0, privacytest.ErrInjected.Error(), 3, ""}, {0, "", 0, ""}}},
		{"a negative n fails every call", func(f *privacytest.FaultyStore) { f.FailNext(-1, boom) },
			[]outcome{{0, boom.Error(), 0, boom.Error()}, {0, boom.Error(), 0, boom.Error()}, {0, boom.Error(), 0, boom.Error()}}},
		{"FailAfter cuts every Export after n records", func(f *privacytest.FaultyStore) { f.FailAfter(2, boom) },
			[]outcome{{2, boom.Error(), 3, ""}, {0, boom.Error(), 0, ""}}},
		{"FailAfter past the last record still cuts", func(f *privacytest.FaultyStore) { f.FailAfter(5, nil) },
			[]outcome{{3, privacytest.ErrInjected.Error(), 3, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := privacytest.NewFaultyStore(seeded())
			tt.setup(f)
			var got []outcome
			for range tt.want {
				n, err := export(t.Context(), f)
				er, eerr := f.Erase(t.Context(), "user_1")
				got = append(got, outcome{n, errText(err), er.Count, errText(eerr)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rounds (-want +got):\n%s", diff)
			}
			if e, r := f.Calls(); e != len(tt.want) || r != len(tt.want) {
				t.Errorf("Calls = %d exports, %d erases; want %d each", e, r, len(tt.want))
			}
		})
	}
}

func TestFaultyStoreDelayHonoursContext(t *testing.T) {
	f := privacytest.NewFaultyStore(seeded())
	f.Delay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if n, err := export(ctx, f); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Export behind an hour's delay: %d records, %v; want none and DeadlineExceeded", n, err)
	}
	if _, err := f.Erase(ctx, "user_1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Erase behind an hour's delay: %v, want DeadlineExceeded", err)
	}
	f.Delay(time.Millisecond)
	start := time.Now()
	if n, err := export(t.Context(), f); n != 3 || err != nil {
		t.Errorf("Export with a short delay: %d, %v", n, err)
	}
	if took := time.Since(start); took < 3*time.Millisecond {
		t.Errorf("three records with a 1 ms delay each came in %v", took)
	}
	f.Reset()
	if e, r := f.Calls(); e != 0 || r != 0 {
		t.Errorf("Calls after Reset = %d, %d", e, r)
	}
}

func TestFaultyStoreStopsWhenTheConsumerStops(t *testing.T) {
	f := privacytest.NewFaultyStore(seeded())
	f.FailAfter(2, nil)
	n := 0
	for range f.Export(t.Context(), "user_1") {
		n++
		break
	}
	if n != 1 {
		t.Errorf("%d records after the consumer stopped at 1", n)
	}
}

func TestFaultyStorePassesTheSuite(t *testing.T) {
	privacytest.RunDataStoreConformance(t, func(ctx context.Context, t *testing.T) (privacytest.DataStoreHarness, error) {
		m := privacy.NewMemoryStore("app")
		return faultyHarness{m: m, f: privacytest.NewFaultyStore(m)}, nil
	})
}

// faultyHarness runs the DataStore suite on a FaultyStore without faults.
type faultyHarness struct {
	m *privacy.MemoryStore
	f *privacytest.FaultyStore
}

func (h faultyHarness) Store() privacy.DataStore { return h.f }
func (h faultyHarness) Capabilities() privacytest.DataStoreCapabilities {
	return privacytest.DataStoreCapabilities{Ordered: true, ExactCount: true}
}
func (h faultyHarness) Close() {}
func (h faultyHarness) Seed(_ context.Context, userID string) ([]privacy.Record, error) {
	recs := []privacy.Record{
		{Category: "profile", Data: map[string]any{"displayName": "Ada"}},
		{Category: "orders", Data: map[string]any{"total": 42}},
	}
	h.m.Add(userID, recs...)
	return recs, nil
}
