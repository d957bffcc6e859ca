package consenttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/internal/conformance"
)

// NewStore returns an empty store for one test.
type NewStore func(t *testing.T) consent.Store

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func rec(user string, p consent.Purpose, granted bool, version int, at time.Time) consent.Record {
	return consent.Record{UserID: user, Purpose: p, Granted: granted, PolicyVersion: version, Source: "settings", Actor: user, Time: at}
}

// ignoreSeq compares records without the store-assigned Seq.
var ignoreSeq = cmpopts.IgnoreFields(consent.Record{}, "Seq")

// tb is the part of *testing.T the suite uses, so that the suite's own
// tests can run it with a conformance.Recorder instead of a *testing.T.
type tb = conformance.T

// RunConformance runs every case against stores made by newStore.
func RunConformance(t *testing.T, newStore NewStore) {
	t.Helper()
	run(conformance.Wrap(t), func(t tb) consent.Store { return newStore(conformance.Testing(t)) })
}

// run runs every case as a subtest of t, each on a fresh store.
func run(t tb, newStore func(t tb) consent.Store) {
	ctx := context.Background()
	t.Run("History yields every appended record in append order with all fields", func(t tb) {
		s := newStore(t)
		want := []consent.Record{
			rec("user_a", consent.Marketing, true, 1, t0),
			rec("user_a", consent.Analytics, false, 1, t0),
			rec("user_a", consent.Marketing, false, 2, t0.Add(time.Hour)),
		}
		want[2].Actor, want[2].Source = "user_admin", "api"
		if err := s.Append(ctx, want[:2]...); err != nil {
			t.Fatalf("%v", err)
		}
		if err := s.Append(ctx, want[2]); err != nil {
			t.Fatalf("%v", err)
		}
		got := collect(t, s, "user_a")
		if diff := cmp.Diff(want, got, ignoreSeq); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Errorf("Seq not increasing: %d then %d", got[i-1].Seq, got[i].Seq)
			}
		}
	})
	t.Run("Current is the latest record per purpose", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0))
		mustAppend(t, s, rec("user_a", consent.Marketing, false, 1, t0.Add(time.Minute)))
		mustAppend(t, s, rec("user_a", consent.Analytics, true, 1, t0.Add(2*time.Minute)))
		st, err := s.Current(ctx, "user_a")
		if err != nil {
			t.Fatalf("%v", err)
		}
		want := consent.State{
			consent.Marketing: rec("user_a", consent.Marketing, false, 1, t0.Add(time.Minute)),
			consent.Analytics: rec("user_a", consent.Analytics, true, 1, t0.Add(2*time.Minute)),
		}
		if diff := cmp.Diff(want, st, ignoreSeq); diff != "" {
			t.Errorf("Current (-want +got):\n%s", diff)
		}
	})
	t.Run("records at the same time are ordered by append order", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0))
		mustAppend(t, s, rec("user_a", consent.Marketing, false, 1, t0))
		st, _ := s.Current(ctx, "user_a")
		if st[consent.Marketing].Granted {
			t.Errorf("the later of two same-time records must decide")
		}
	})
	t.Run("At answers the state at any past time, boundaries included", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0))
		mustAppend(t, s, rec("user_a", consent.Marketing, false, 1, t0.Add(time.Hour)))
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 2, t0.Add(2*time.Hour)))
		for _, tc := range []struct {
			at      time.Time
			present bool
			granted bool
		}{
			{t0.Add(-time.Second), false, false},
			{t0, true, true},
			{t0.Add(time.Hour - time.Microsecond), true, true},
			{t0.Add(time.Hour), true, false},
			{t0.Add(90 * time.Minute), true, false},
			{t0.Add(3 * time.Hour), true, true},
		} {
			st, err := s.At(ctx, "user_a", tc.at)
			if err != nil {
				t.Fatalf("%v", err)
			}
			r, ok := st[consent.Marketing]
			if ok != tc.present || r.Granted != tc.granted {
				t.Errorf("At(%v) = present %v granted %v; want %v %v", tc.at.Sub(t0), ok, r.Granted, tc.present, tc.granted)
			}
		}
	})
	t.Run("users do not see each other's records", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0), rec("user_b", consent.Analytics, true, 1, t0))
		st, _ := s.Current(ctx, "user_a")
		if _, leaked := st[consent.Analytics]; leaked || len(collect(t, s, "user_b")) != 1 {
			t.Errorf("state of user_a = %v", st)
		}
		st, _ = s.Current(ctx, "user_nobody")
		if len(st) != 0 {
			t.Errorf("a user with no records must have an empty state, got %v", st)
		}
	})
	t.Run("Append of an invalid record stores nothing of the batch", func(t tb) {
		s := newStore(t)
		bad := rec("user_a", "Not A Purpose", true, 1, t0)
		err := s.Append(ctx, rec("user_a", consent.Marketing, true, 1, t0), bad)
		if err == nil {
			t.Fatalf("Append accepted an invalid purpose")
		}
		if n := len(collect(t, s, "user_a")); n != 0 {
			t.Errorf("a failed batch left %d records", n)
		}
		for _, r := range []consent.Record{
			{Purpose: consent.Marketing, Time: t0},
			{UserID: "user_a", Purpose: consent.Marketing},
		} {
			if err := s.Append(ctx, r); !errors.Is(err, consent.ErrInvalidRecord) {
				t.Errorf("Append(%+v) = %v, want ErrInvalidRecord", r, err)
			}
		}
	})
	t.Run("Erase removes every record of the user and only theirs", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0), rec("user_a", consent.Analytics, true, 1, t0), rec("user_b", consent.Marketing, true, 1, t0))
		n, err := s.Erase(ctx, "user_a", nil)
		if err != nil || n != 2 {
			t.Fatalf("Erase = %d, %v; want 2", n, err)
		}
		if got := collect(t, s, "user_a"); len(got) != 0 {
			t.Errorf("records left: %v", got)
		}
		if n, err := s.Erase(ctx, "user_a", nil); err != nil || n != 0 {
			t.Errorf("a second Erase = %d, %v; want 0, nil", n, err)
		}
		if len(collect(t, s, "user_b")) != 1 {
			t.Errorf("Erase touched another user")
		}
	})
	t.Run("Erase with keep replaces the user's records by the kept ones in one step", func(t tb) {
		s := newStore(t)
		mustAppend(t, s,
			rec("user_a", consent.Marketing, true, 1, t0),
			rec("user_b", consent.Marketing, true, 1, t0),
			rec("user_a", consent.Analytics, true, 1, t0.Add(time.Minute)),
			rec("user_a", consent.Marketing, false, 2, t0.Add(2*time.Minute)))
		var seen []consent.Purpose
		n, err := s.Erase(ctx, "user_a", func(r consent.Record) (consent.Record, bool) {
			seen = append(seen, r.Purpose)
			if r.Purpose == consent.Analytics {
				return r, false
			}
			r.UserID, r.Actor = "proof:a", "proof:a"
			return r, true
		})
		if err != nil || n != 3 {
			t.Fatalf("Erase = %d, %v; want 3", n, err)
		}
		if diff := cmp.Diff([]consent.Purpose{consent.Marketing, consent.Analytics, consent.Marketing}, seen); diff != "" {
			t.Errorf("keep saw (-want +got), want the erased records in append order:\n%s", diff)
		}
		if got := collect(t, s, "user_a"); len(got) != 0 {
			t.Errorf("records left under the erased ID: %v", got)
		}
		want := []consent.Record{
			rec("proof:a", consent.Marketing, true, 1, t0),
			rec("proof:a", consent.Marketing, false, 2, t0.Add(2*time.Minute)),
		}
		if diff := cmp.Diff(want, collect(t, s, "proof:a"), ignoreSeq); diff != "" {
			t.Errorf("kept records (-want +got):\n%s", diff)
		}
		if n, err := s.Erase(ctx, "user_a", func(r consent.Record) (consent.Record, bool) { return r, true }); err != nil || n != 0 {
			t.Errorf("a second Erase = %d, %v; want 0, nil", n, err)
		}
		if len(collect(t, s, "user_b")) != 1 {
			t.Errorf("Erase touched another user")
		}
	})
	t.Run("Erase whose keep returns an invalid record or the erased user ID changes nothing", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0), rec("user_a", consent.Analytics, true, 1, t0))
		for name, keep := range map[string]func(consent.Record) (consent.Record, bool){
			"same user ID":  func(r consent.Record) (consent.Record, bool) { return r, true },
			"empty user ID": func(r consent.Record) (consent.Record, bool) { r.UserID = ""; return r, true },
		} {
			if _, err := s.Erase(ctx, "user_a", keep); !errors.Is(err, consent.ErrInvalidRecord) {
				t.Errorf("%s: Erase = %v, want ErrInvalidRecord", name, err)
			}
			if n := len(collect(t, s, "user_a")); n != 2 {
				t.Errorf("%s: a failed Erase left %d of 2 records", name, n)
			}
		}
	})
	t.Run("Time, Source and Actor round-trip; Time to the microsecond in UTC", func(t tb) {
		s := newStore(t)
		at := time.Date(2026, 3, 1, 13, 30, 15, 123456000, time.FixedZone("CET", 3600))
		want := []consent.Record{
			{UserID: "user_a", Purpose: "app_defined_9", Granted: true, PolicyVersion: 7, Source: "bänner ✓", Actor: "system:import", Time: at},
			{UserID: "user_a", Purpose: consent.Analytics, Time: at.Add(time.Microsecond)},
		}
		mustAppend(t, s, want...)
		got := collect(t, s, "user_a")
		for i := range want {
			want[i].Time = want[i].Time.UTC()
		}
		if diff := cmp.Diff(want, got, ignoreSeq); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		for _, r := range got {
			if r.Time.Location() != time.UTC {
				t.Errorf("Time %v is not in UTC", r.Time)
			}
		}
	})
	t.Run("At the zero time is the empty state", func(t tb) {
		s := newStore(t)
		mustAppend(t, s, rec("user_a", consent.Marketing, true, 1, t0))
		if st, err := s.At(ctx, "user_a", time.Time{}); err != nil || len(st) != 0 {
			t.Errorf("At(zero) = %v, %v; want an empty state", st, err)
		}
	})
	t.Run("History streams a long history in order and stops when the caller stops", func(t tb) {
		s := newStore(t)
		const n = 1234
		batch := make([]consent.Record, n)
		for i := range batch {
			batch[i] = rec("user_a", consent.Marketing, i%2 == 0, i, t0.Add(time.Duration(i)*time.Second))
		}
		mustAppend(t, s, batch...)
		got := collect(t, s, "user_a")
		if len(got) != n {
			t.Fatalf("History yielded %d of %d records", len(got), n)
		}
		for i, r := range got {
			if r.PolicyVersion != i {
				t.Fatalf("record %d has policy version %d: out of order", i, r.PolicyVersion)
			}
		}
		seen := 0
		for _, err := range s.History(ctx, "user_a") {
			if err != nil {
				t.Fatalf("%v", err)
			}
			if seen++; seen == 3 {
				break
			}
		}
		if seen != 3 {
			t.Errorf("iteration went on to %d after the caller stopped", seen)
		}
		st, err := s.Current(ctx, "user_a")
		if err != nil || st[consent.Marketing].PolicyVersion != n-1 {
			t.Errorf("Current after a long history = %+v, %v", st[consent.Marketing], err)
		}
	})
	t.Run("concurrent appends lose nothing", func(t tb) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8*10)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					errs <- s.Append(ctx, rec("user_a", consent.Marketing, i%2 == 0, g, t0.Add(time.Duration(g*10+i)*time.Second)))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%v", err)
			}
		}
		if n := len(collect(t, s, "user_a")); n != 80 {
			t.Errorf("%d records after 80 concurrent appends", n)
		}
	})
	t.Run("a cancelled context gives an error", func(t tb) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Append(cctx, rec("user_a", consent.Marketing, true, 1, t0)); err == nil {
			t.Errorf("Append with a cancelled context succeeded")
		}
		if _, err := s.Current(cctx, "user_a"); err == nil {
			t.Errorf("Current with a cancelled context succeeded")
		}
	})
	t.Run("Outbox", func(t tb) {
		if _, ok := newStore(t).(consent.Outbox); !ok {
			t.Skipf("the store is not an Outbox")
		}
		runOutbox(t, func(t tb) consent.Outbox { return newStore(t).(consent.Outbox) })
	})
}

func mustAppend(t tb, s consent.Store, rs ...consent.Record) {
	t.Helper()
	if err := s.Append(context.Background(), rs...); err != nil {
		t.Fatalf("%v", err)
	}
}

func collect(t tb, s consent.Store, user string) []consent.Record {
	t.Helper()
	var out []consent.Record
	for r, err := range s.History(context.Background(), user) {
		if err != nil {
			t.Fatalf("%v", fmt.Errorf("History: %w", err))
		}
		out = append(out, r)
	}
	return out
}
