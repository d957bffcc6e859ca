package consenttest

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/internal/conformance"
)

// These tests check the suite itself: it passes a correct store and
// catches stores that break a rule.

func runRecorded(newStore func() consent.Store) map[string][]string {
	r := conformance.NewRecorder("suite")
	run(r, func(tb) consent.Store { return newStore() })
	return r.Failures()
}

func TestSuitePassesMemoryStore(t *testing.T) {
	t.Parallel()
	for rule, msgs := range runRecorded(func() consent.Store { return consent.NewMemoryStore() }) {
		t.Errorf("rule %q failed on MemoryStore: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestRunConformance(t *testing.T) {
	t.Parallel()
	RunConformance(t, func(*testing.T) consent.Store { return consent.NewMemoryStore() })
}

// Each broken store embeds a MemoryStore (so it stays an Outbox) and
// breaks one rule.

// partialAppend stores the valid records of a batch holding an invalid
// one.
type partialAppend struct{ *consent.MemoryStore }

func (s partialAppend) Append(ctx context.Context, rs ...consent.Record) error {
	var err error
	for _, r := range rs {
		if e := s.MemoryStore.Append(ctx, r); e != nil {
			err = e
		}
	}
	return err
}

// reversedHistory yields the newest record first.
type reversedHistory struct{ *consent.MemoryStore }

func (s reversedHistory) History(ctx context.Context, userID string) iter.Seq2[consent.Record, error] {
	return func(yield func(consent.Record, error) bool) {
		var all []consent.Record
		for r, err := range s.MemoryStore.History(ctx, userID) {
			if err != nil {
				yield(consent.Record{}, err)
				return
			}
			all = append(all, r)
		}
		for _, r := range slices.Backward(all) {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// firstWins answers Current with the earliest record per purpose.
type firstWins struct{ *consent.MemoryStore }

func (s firstWins) Current(ctx context.Context, userID string) (consent.State, error) {
	st := consent.State{}
	for r, err := range s.MemoryStore.History(ctx, userID) {
		if err != nil {
			return nil, err
		}
		if _, ok := st[r.Purpose]; !ok {
			st[r.Purpose] = r
		}
	}
	return st, nil
}

// atIsCurrent answers every At with the current state.
type atIsCurrent struct{ *consent.MemoryStore }

func (s atIsCurrent) At(ctx context.Context, userID string, _ time.Time) (consent.State, error) {
	return s.MemoryStore.Current(ctx, userID)
}

// eraseEveryone erases every user's records.
type eraseEveryone struct {
	*consent.MemoryStore
	mu    *sync.Mutex
	users *[]string
}

func (s eraseEveryone) Append(ctx context.Context, rs ...consent.Record) error {
	s.mu.Lock()
	for _, r := range rs {
		*s.users = append(*s.users, r.UserID)
	}
	s.mu.Unlock()
	return s.MemoryStore.Append(ctx, rs...)
}

func (s eraseEveryone) Erase(ctx context.Context, userID string, keep func(consent.Record) (consent.Record, bool)) (int, error) {
	n, err := s.MemoryStore.Erase(ctx, userID, keep)
	s.mu.Lock()
	users := slices.Compact(slices.Sorted(slices.Values(*s.users)))
	s.mu.Unlock()
	for _, u := range users {
		if u != userID {
			_, _ = s.MemoryStore.Erase(ctx, u, nil)
		}
	}
	return n, err
}

// unvalidatedKeep appends whatever keep returns, after the erase, one by
// one, without checking it.
type unvalidatedKeep struct{ *consent.MemoryStore }

func (s unvalidatedKeep) Erase(ctx context.Context, userID string, keep func(consent.Record) (consent.Record, bool)) (int, error) {
	var erased []consent.Record
	for r, err := range s.MemoryStore.History(ctx, userID) {
		if err != nil {
			return 0, err
		}
		erased = append(erased, r)
	}
	n, err := s.MemoryStore.Erase(ctx, userID, nil)
	if err != nil || keep == nil {
		return n, err
	}
	for _, r := range erased {
		if k, ok := keep(r); ok {
			_ = s.MemoryStore.Append(ctx, k)
		}
	}
	return n, nil
}

// secondsOnly stores times to the second.
type secondsOnly struct{ *consent.MemoryStore }

func (s secondsOnly) Append(ctx context.Context, rs ...consent.Record) error {
	out := slices.Clone(rs)
	for i := range out {
		out[i].Time = out[i].Time.Truncate(time.Second)
	}
	return s.MemoryStore.Append(ctx, out...)
}

// ignoresStop keeps yielding after the consumer stops.
type ignoresStop struct{ *consent.MemoryStore }

func (s ignoresStop) History(ctx context.Context, userID string) iter.Seq2[consent.Record, error] {
	return func(yield func(consent.Record, error) bool) {
		for r, err := range s.MemoryStore.History(ctx, userID) {
			yield(r, err)
		}
	}
}

// ignoresContext answers a cancelled context as a live one.
type ignoresContext struct{ *consent.MemoryStore }

func (s ignoresContext) Append(_ context.Context, rs ...consent.Record) error {
	return s.MemoryStore.Append(context.Background(), rs...)
}

func (s ignoresContext) Current(_ context.Context, userID string) (consent.State, error) {
	return s.MemoryStore.Current(context.Background(), userID)
}

// doneIgnoresVersion removes an entry even when it was re-enqueued
// since the claim read it.
type doneIgnoresVersion struct{ *consent.MemoryStore }

func (s doneIgnoresVersion) Done(ctx context.Context, c consent.Claim) error {
	err := s.MemoryStore.Done(ctx, c)
	if errors.Is(err, consent.ErrSuperseded) {
		if c, err = s.MemoryStore.Renew(ctx, c, time.Minute); err != nil {
			return err
		}
		return s.MemoryStore.Done(ctx, c)
	}
	return err
}

// claimIgnoresLimit hands out every due entry.
type claimIgnoresLimit struct{ *consent.MemoryStore }

func (s claimIgnoresLimit) Claim(ctx context.Context, q consent.ClaimQuery) ([]consent.Claim, error) {
	q.Limit = 1 << 20
	return s.MemoryStore.Claim(ctx, q)
}

// eraseKeepsOutbox erases records but leaves the pending sync.
type eraseKeepsOutbox struct{ *consent.MemoryStore }

func (s eraseKeepsOutbox) Erase(ctx context.Context, userID string, keep func(consent.Record) (consent.Record, bool)) (int, error) {
	queued, err := s.MemoryStore.Queued(ctx, 1<<20)
	if err != nil {
		return 0, err
	}
	n, err := s.MemoryStore.Erase(ctx, userID, keep)
	for _, c := range queued {
		if c.UserID == userID {
			_, _ = s.MemoryStore.Enqueue(ctx, userID, c.Due)
		}
	}
	return n, err
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	mem := consent.NewMemoryStore
	tests := []struct {
		name       string
		store      func() consent.Store
		wantFailed []string
	}{
		{"Append keeps the valid part of a failed batch", func() consent.Store { return partialAppend{mem()} },
			[]string{"Append of an invalid record stores nothing of the batch"}},
		{"History yields newest first", func() consent.Store { return reversedHistory{mem()} },
			[]string{
				"History yields every appended record in append order with all fields",
				"History streams a long history in order and stops when the caller stops",
			}},
		{"Current keeps the first record of each purpose", func() consent.Store { return firstWins{mem()} },
			[]string{"Current is the latest record per purpose", "records at the same time are ordered by append order"}},
		{"At ignores the time", func() consent.Store { return atIsCurrent{mem()} },
			[]string{"At answers the state at any past time, boundaries included", "At the zero time is the empty state"}},
		{"Erase erases every user", func() consent.Store { return eraseEveryone{mem(), &sync.Mutex{}, new([]string)} },
			[]string{"Erase removes every record of the user and only theirs", "Erase with keep replaces the user's records by the kept ones in one step"}},
		{"Erase keeps whatever keep returns", func() consent.Store { return unvalidatedKeep{mem()} },
			[]string{"Erase whose keep returns an invalid record or the erased user ID changes nothing"}},
		{"times are stored to the second", func() consent.Store { return secondsOnly{mem()} },
			[]string{"Time, Source and Actor round-trip; Time to the microsecond in UTC"}},
		{"History keeps yielding after the caller stops", func() consent.Store { return ignoresStop{mem()} },
			[]string{"History streams a long history in order and stops when the caller stops"}},
		{"a cancelled context is ignored", func() consent.Store { return ignoresContext{mem()} },
			[]string{"a cancelled context gives an error"}},
		{"Done ignores a newer Enqueue", func() consent.Store { return doneIgnoresVersion{mem()} },
			[]string{"Outbox/Done after a newer Enqueue fails with ErrSuperseded and keeps the claim for the newer Version"}},
		{"Claim ignores the limit", func() consent.Store { return claimIgnoresLimit{mem()} },
			[]string{"Outbox/Claim takes only entries due by Now, oldest due first, up to Limit"}},
		{"Erase leaves the pending sync", func() consent.Store { return eraseKeepsOutbox{mem()} },
			[]string{"Outbox/Erase of a user drops their outbox entry, claimed or not, and only theirs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each run waits out claims: run them side by side
			failed := runRecorded(tt.store)
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
