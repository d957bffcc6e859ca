package retentiontest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/retention"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// TargetHarness connects the Target suite to one instance of a target.
type TargetHarness interface {
	// Target returns the target under test, empty at first.
	Target() retention.Target
	// Add stores a record of subject (a user ID, or "" for none) made at.
	Add(ctx context.Context, subject string, at time.Time) error
}

// tb is the part of *testing.T the suites use, so that the suites' own
// tests can run them with a conformance.Recorder instead of a *testing.T.
type tb = conformance.T

// RunTargetConformance runs every Target case against fresh harnesses.
func RunTargetConformance(t *testing.T, newHarness func(t *testing.T) TargetHarness) {
	t.Helper()
	runTarget(conformance.Wrap(t), func(t tb) TargetHarness { return newHarness(conformance.Testing(t)) })
}

// runTarget runs every Target case as a subtest of t.
func runTarget(t tb, newHarness func(t tb) TargetHarness) {
	ctx := context.Background()
	seed := func(t tb) TargetHarness {
		h := newHarness(t)
		// 10 expired records of user_a, 5 of user_held, 3 without a
		// subject, and 4 recent ones; one exactly at the cutoff.
		add := func(subject string, at time.Time, n int) {
			for i := 0; i < n; i++ {
				if err := h.Add(ctx, subject, at.Add(-time.Duration(i)*time.Minute)); err != nil {
					t.Fatalf("%v", err)
				}
			}
		}
		add("user_a", t0.Add(-time.Hour), 10)
		add("user_held", t0.Add(-time.Hour), 5)
		add("", t0.Add(-time.Hour), 3)
		add("user_a", t0.Add(time.Hour), 3)
		add("user_a", t0, 1)
		return h
	}
	exclude := []string{"user_held"}
	t.Run("Count counts records strictly older than the cutoff, leaving out excluded users", func(t tb) {
		h := seed(t)
		n, err := h.Target().Count(ctx, t0, exclude)
		if err != nil || n != 13 {
			t.Errorf("Count = %d, %v; want 13", n, err)
		}
		if n, _ := h.Target().Count(ctx, t0, nil); n != 18 {
			t.Errorf("Count without exclusions = %d, want 18", n)
		}
	})
	t.Run("Purge deletes at most limit records per call until none is left", func(t tb) {
		h := seed(t)
		var batches []int
		for i := 0; i < 20; i++ {
			n, err := h.Target().Purge(ctx, t0, 4, exclude)
			if err != nil {
				t.Fatalf("%v", err)
			}
			batches = append(batches, n)
			if n == 0 {
				break
			}
		}
		if diff := cmp.Diff([]int{4, 4, 4, 1, 0}, batches); diff != "" {
			t.Errorf("batch sizes (-want +got):\n%s", diff)
		}
		if n, _ := h.Target().Count(ctx, t0, nil); n != 5 {
			t.Errorf("%d expired records left, want the 5 held ones", n)
		}
		if n, _ := h.Target().Count(ctx, t0.Add(2*time.Hour), nil); n != 9 {
			t.Errorf("%d records left in all, want 9 (5 held, 3 recent, 1 at the cutoff)", n)
		}
	})
	t.Run("concurrent purges delete every expired record once", func(t tb) {
		h := seed(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n, err := h.Target().Purge(ctx, t0, 2, exclude)
					if err != nil {
						t.Errorf("%v", err)
						return
					}
					if n == 0 {
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if total != 13 {
			t.Errorf("purged %d in all, want 13", total)
		}
	})
	t.Run("a record exactly at the cutoff is kept; one a microsecond older is not", func(t tb) {
		h := newHarness(t)
		for _, at := range []time.Time{t0, t0.Add(-time.Microsecond)} {
			if err := h.Add(ctx, "user_a", at); err != nil {
				t.Fatalf("%v", err)
			}
		}
		if n, err := h.Target().Purge(ctx, t0, 10, nil); err != nil || n != 1 {
			t.Errorf("Purge = %d, %v; want 1", n, err)
		}
		if n, _ := h.Target().Count(ctx, t0.Add(time.Second), nil); n != 1 {
			t.Errorf("%d records left, want the one at the cutoff", n)
		}
	})
	t.Run("a cancelled context gives an error", func(t tb) {
		h := seed(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := h.Target().Purge(cctx, t0, 10, nil); err == nil {
			t.Errorf("Purge with a cancelled context succeeded")
		}
	})
	t.Run("Anonymise strips expired records once and keeps them", func(t tb) {
		h := seed(t)
		an, ok := h.Target().(retention.Anonymiser)
		if !ok {
			t.Skipf("the target is not an Anonymiser")
		}
		if n, err := an.CountIdentified(ctx, t0, exclude); err != nil || n != 10 {
			t.Fatalf("CountIdentified = %d, %v; want 10", n, err)
		}
		done := 0
		for {
			n, err := an.Anonymise(ctx, t0, 3, exclude)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if n == 0 {
				break
			}
			done += n
		}
		if done != 10 {
			t.Errorf("anonymised %d, want 10", done)
		}
		if n, _ := an.CountIdentified(ctx, t0, exclude); n != 0 {
			t.Errorf("%d identified records left", n)
		}
		if n, _ := an.Count(ctx, t0, nil); n != 18 {
			t.Errorf("anonymised records were deleted: %d left, want 18", n)
		}
	})
}

// RunHoldStoreConformance runs every HoldStore case (and Lease case, when
// the store is a Lease) against fresh stores.
func RunHoldStoreConformance(t *testing.T, newStore func(t *testing.T) retention.HoldStore) {
	t.Helper()
	runHolds(conformance.Wrap(t), func(t tb) retention.HoldStore { return newStore(conformance.Testing(t)) })
}

// runHolds runs every HoldStore case as a subtest of t.
func runHolds(t tb, newStore func(t tb) retention.HoldStore) {
	ctx := context.Background()
	hold := func(id string) retention.Hold {
		return retention.Hold{UserID: id, Reason: "litigation 2026-17", PlacedBy: "user_counsel", PlacedAt: t0}
	}
	t.Run("a placed hold is returned by Get and List with all fields", func(t tb) {
		s := newStore(t)
		for _, id := range []string{"user_b", "user_a"} {
			if err := s.Place(ctx, hold(id)); err != nil {
				t.Fatalf("%v", err)
			}
		}
		got, ok, err := s.Get(ctx, "user_a")
		if err != nil || !ok {
			t.Fatalf("Get = %v, %v", ok, err)
		}
		if diff := cmp.Diff(hold("user_a"), got); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		all, err := s.List(ctx)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if diff := cmp.Diff([]retention.Hold{hold("user_a"), hold("user_b")}, all); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
	})
	t.Run("Get of a user without a hold reports none, and an empty store lists none", func(t tb) {
		s := newStore(t)
		if _, ok, err := s.Get(ctx, "user_nobody"); err != nil || ok {
			t.Errorf("Get = %v, %v; want no hold", ok, err)
		}
		if all, err := s.List(ctx); err != nil || len(all) != 0 {
			t.Errorf("List = %v, %v; want none", all, err)
		}
	})
	t.Run("PlacedAt is kept to the microsecond and read back in UTC", func(t tb) {
		s := newStore(t)
		h := hold("user_a")
		h.PlacedAt = time.Date(2026, 6, 1, 14, 30, 15, 123456789, time.FixedZone("CEST", 2*60*60))
		if err := s.Place(ctx, h); err != nil {
			t.Fatalf("%v", err)
		}
		got, _, err := s.Get(ctx, "user_a")
		if err != nil {
			t.Fatalf("%v", err)
		}
		if want := time.Date(2026, 6, 1, 12, 30, 15, 123456000, time.UTC); !got.PlacedAt.Equal(want) || got.PlacedAt.Location() != time.UTC {
			t.Errorf("PlacedAt = %v, want %v", got.PlacedAt, want)
		}
	})
	t.Run("Place replaces a user's hold; Release lifts it and is idempotent", func(t tb) {
		s := newStore(t)
		_ = s.Place(ctx, hold("user_a"))
		h2 := hold("user_a")
		h2.Reason = "regulator inquiry"
		if err := s.Place(ctx, h2); err != nil {
			t.Fatalf("%v", err)
		}
		if got, _, _ := s.Get(ctx, "user_a"); got.Reason != "regulator inquiry" {
			t.Errorf("reason = %q", got.Reason)
		}
		for i := 0; i < 2; i++ {
			if err := s.Release(ctx, "user_a"); err != nil {
				t.Fatalf("Release #%d: %v", i+1, err)
			}
		}
		if _, ok, _ := s.Get(ctx, "user_a"); ok {
			t.Errorf("hold still there after Release")
		}
		if all, _ := s.List(ctx); len(all) != 0 {
			t.Errorf("List = %v", all)
		}
	})
	t.Run("an invalid hold is refused naming the field", func(t tb) {
		s := newStore(t)
		for field, h := range map[string]retention.Hold{
			"UserID":   {Reason: "r", PlacedBy: "p", PlacedAt: t0},
			"Reason":   {UserID: "user_a", PlacedBy: "p", PlacedAt: t0},
			"PlacedBy": {UserID: "user_a", Reason: "r", PlacedAt: t0},
			"PlacedAt": {UserID: "user_a", Reason: "r", PlacedBy: "p"},
		} {
			err := s.Place(ctx, h)
			if !errors.Is(err, retention.ErrInvalidHold) || !strings.Contains(err.Error(), field) {
				t.Errorf("Place without %s = %v", field, err)
			}
		}
	})
	t.Run("Lease", func(t tb) {
		if _, ok := newStore(t).(retention.Lease); !ok {
			t.Skipf("the store is not a Lease")
		}
		t.Run("one owner at a time until the lease expires", func(t tb) {
			l := newStore(t).(retention.Lease)
			acquire := func(owner string, at time.Time) bool {
				ok, err := l.AcquireLease(ctx, "retention", owner, at, time.Hour)
				if err != nil {
					t.Fatalf("%v", err)
				}
				return ok
			}
			if !acquire("a", t0) {
				t.Fatalf("a free lease was not granted")
			}
			if acquire("b", t0.Add(30*time.Minute)) {
				t.Errorf("a held lease was granted to another owner")
			}
			if !acquire("a", t0.Add(30*time.Minute)) {
				t.Errorf("the owner could not renew its lease")
			}
			if !acquire("b", t0.Add(91*time.Minute)) {
				t.Errorf("an expired lease was not granted")
			}
			if err := l.ReleaseLease(ctx, "retention", "a"); err != nil {
				t.Fatalf("%v", err)
			}
			if acquire("c", t0.Add(92*time.Minute)) {
				t.Errorf("a release by a former owner freed the current owner's lease")
			}
			_ = l.ReleaseLease(ctx, "retention", "b")
			if !acquire("c", t0.Add(92*time.Minute)) {
				t.Errorf("a released lease was not granted")
			}
		})
		t.Run("releasing a lease nobody holds is not an error", func(t tb) {
			l := newStore(t).(retention.Lease)
			if err := l.ReleaseLease(ctx, "retention", "a"); err != nil {
				t.Errorf("ReleaseLease = %v", err)
			}
		})
		t.Run("leases of different names are independent", func(t tb) {
			l := newStore(t).(retention.Lease)
			for _, name := range []string{"retention", "retention-eu"} {
				if ok, err := l.AcquireLease(ctx, name, "owner-"+name, t0, time.Hour); err != nil || !ok {
					t.Errorf("AcquireLease(%s) = %v, %v", name, ok, err)
				}
			}
		})
		t.Run("of 8 concurrent acquirers exactly one wins", func(t tb) {
			l := newStore(t).(retention.Lease)
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := l.AcquireLease(ctx, "retention", fmt.Sprint("owner", g), t0, time.Hour)
					if err != nil {
						t.Errorf("%v", err)
					}
					if ok {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Errorf("%d owners got the lease", wins)
			}
		})
	})
}
