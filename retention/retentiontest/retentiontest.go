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

// RunHoldStoreConformance runs every HoldStore case (and NoticeStore case,
// when the store is a NoticeStore) against fresh stores.
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
	t.Run("NoticeStore", func(t tb) {
		if _, ok := newStore(t).(retention.NoticeStore); !ok {
			t.Skipf("the store is not a NoticeStore")
		}
		runNotices(t, func(t tb) retention.NoticeStore { return newStore(t).(retention.NoticeStore) })
	})
}

// RunNoticeStoreConformance runs every NoticeStore case against fresh,
// empty stores. Claims expire by the store's clock: the cases that wait
// for one use claims of a fraction of a second and sleep past them.
func RunNoticeStoreConformance(t *testing.T, newStore func(t *testing.T) retention.NoticeStore) {
	t.Helper()
	runNotices(conformance.Wrap(t), func(t tb) retention.NoticeStore { return newStore(conformance.Testing(t)) })
}

// runNotices runs every NoticeStore case as a subtest of t.
func runNotices(t tb, newStore func(t tb) retention.NoticeStore) {
	ctx := context.Background()
	active := time.Date(2025, 4, 1, 9, 30, 15, 123456000, time.UTC)
	const long = time.Hour
	claim := func(t tb, s retention.NoticeStore, user string, at time.Time, owner string, ttl time.Duration) (retention.Notice, bool) {
		t.Helper()
		n, ok, err := s.ClaimNotice(ctx, user, at, owner, ttl)
		if err != nil {
			t.Fatalf("ClaimNotice(%s, %s) = %v", user, owner, err)
		}
		return n, ok
	}
	mustClaim := func(t tb, s retention.NoticeStore, user string, at time.Time, owner string, ttl time.Duration) retention.Notice {
		t.Helper()
		n, ok := claim(t, s, user, at, owner, ttl)
		if !ok {
			t.Fatalf("ClaimNotice(%s, %s) was refused: %+v", user, owner, n)
		}
		return n
	}
	finish := func(t tb, s retention.NoticeStore, n retention.Notice, state retention.NoticeState, at time.Time) {
		t.Helper()
		n.State, n.SentAt = state, at
		if err := s.FinishNotice(ctx, n); err != nil {
			t.Fatalf("FinishNotice(%s) = %v", state, err)
		}
	}
	type view struct {
		UserID   string
		ActiveAt time.Time
		State    retention.NoticeState
		Attempts int
		SentAt   time.Time
		Owner    string
	}
	see := func(n retention.Notice) view {
		return view{n.UserID, n.ActiveAt, n.State, n.Attempts, n.SentAt, n.Owner}
	}
	sentAt := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	t.Run("a first claim is granted, pending, with a positive token, one attempt and the activity to the microsecond in UTC", func(t tb) {
		s := newStore(t)
		n := mustClaim(t, s, "user_a", active.Add(789).In(time.FixedZone("CEST", 2*60*60)), "runner-1", long)
		if diff := cmp.Diff(view{"user_a", active, retention.NoticePending, 1, time.Time{}, "runner-1"}, see(n)); diff != "" {
			t.Errorf("claim (-want +got):\n%s", diff)
		}
		if n.Token <= 0 || n.Expires.IsZero() || n.ActiveAt.Location() != time.UTC {
			t.Errorf("Token %d, Expires %v, ActiveAt in %v; want a positive token, an expiry and UTC", n.Token, n.Expires, n.ActiveAt.Location())
		}
	})
	t.Run("a live claim is refused to everyone, its own owner too, and the record is returned unchanged", func(t tb) {
		s := newStore(t)
		first := mustClaim(t, s, "user_a", active, "runner-1", long)
		for _, owner := range []string{"runner-2", "runner-1"} {
			n, ok := claim(t, s, "user_a", active, owner, long)
			if ok {
				t.Fatalf("a second claim by %s was granted", owner)
			}
			if diff := cmp.Diff(see(first), see(n)); diff != "" || n.Token != first.Token {
				t.Errorf("refused claim by %s returned (-want +got):\n%s (token %d, want %d)", owner, diff, n.Token, first.Token)
			}
		}
	})
	t.Run("a sent notice is not claimed again for the same activity, and reports when it was sent", func(t tb) {
		s := newStore(t)
		finish(t, s, mustClaim(t, s, "user_a", active, "runner-1", long), retention.NoticeSent, sentAt.Add(1500*time.Nanosecond))
		for _, at := range []time.Time{active, active.Add(-time.Hour)} {
			n, ok := claim(t, s, "user_a", at, "runner-2", long)
			if ok {
				t.Fatalf("a sent notice was claimed again with activity %v", at)
			}
			if diff := cmp.Diff(view{"user_a", active, retention.NoticeSent, 1, sentAt.Add(time.Microsecond), "runner-1"}, see(n)); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		}
	})
	t.Run("a failed notice is claimed again with a greater token and one more attempt", func(t tb) {
		s := newStore(t)
		first := mustClaim(t, s, "user_a", active, "runner-1", long)
		finish(t, s, first, retention.NoticeFailed, time.Time{})
		again := mustClaim(t, s, "user_a", active, "runner-2", long)
		if diff := cmp.Diff(view{"user_a", active, retention.NoticePending, 2, time.Time{}, "runner-2"}, see(again)); diff != "" {
			t.Errorf("claim (-want +got):\n%s", diff)
		}
		if again.Token <= first.Token {
			t.Errorf("token %d after %d, want it greater", again.Token, first.Token)
		}
	})
	t.Run("a claim that ran out unfinished is claimed again, and its old holder can no longer finish it", func(t tb) {
		s := newStore(t)
		dead := mustClaim(t, s, "user_a", active, "runner-dead", 150*time.Millisecond)
		time.Sleep(400 * time.Millisecond)
		n := mustClaim(t, s, "user_a", active, "runner-2", long)
		if n.Attempts != 2 || n.Token <= dead.Token {
			t.Errorf("claim %+v, want attempt 2 with a token above %d", n, dead.Token)
		}
		dead.State, dead.SentAt = retention.NoticeSent, sentAt
		if err := s.FinishNotice(ctx, dead); !errors.Is(err, retention.ErrNoticeLost) {
			t.Errorf("FinishNotice by the old holder = %v, want ErrNoticeLost", err)
		}
		if got, ok := claim(t, s, "user_a", active, "runner-3", long); ok || got.State != retention.NoticePending || got.Owner != "runner-2" {
			t.Errorf("after the old holder's attempt: %+v (claimed %v), want runner-2's claim untouched", got, ok)
		}
	})
	t.Run("a later activity makes a new notice due even after one was sent, with attempts starting again", func(t tb) {
		s := newStore(t)
		first := mustClaim(t, s, "user_a", active, "runner-1", long)
		finish(t, s, first, retention.NoticeFailed, time.Time{})
		second := mustClaim(t, s, "user_a", active, "runner-1", long)
		finish(t, s, second, retention.NoticeSent, sentAt)
		later := active.Add(400 * 24 * time.Hour)
		n := mustClaim(t, s, "user_a", later, "runner-2", long)
		if diff := cmp.Diff(view{"user_a", later, retention.NoticePending, 1, time.Time{}, "runner-2"}, see(n)); diff != "" {
			t.Errorf("claim (-want +got):\n%s", diff)
		}
		if n.Token <= second.Token {
			t.Errorf("token %d after %d, want it greater", n.Token, second.Token)
		}
	})
	t.Run("a claim finishes once: a second FinishNotice fails with ErrNoticeLost and changes nothing", func(t tb) {
		s := newStore(t)
		n := mustClaim(t, s, "user_a", active, "runner-1", long)
		finish(t, s, n, retention.NoticeSent, sentAt)
		n.State = retention.NoticeFailed
		if err := s.FinishNotice(ctx, n); !errors.Is(err, retention.ErrNoticeLost) {
			t.Errorf("second FinishNotice = %v, want ErrNoticeLost", err)
		}
		if got, ok := claim(t, s, "user_a", active, "runner-2", long); ok || got.State != retention.NoticeSent {
			t.Errorf("after a second finish: %+v (claimed %v), want it still sent", got, ok)
		}
	})
	t.Run("ForgetNotice removes the record and is idempotent; the user can then be claimed afresh", func(t tb) {
		s := newStore(t)
		finish(t, s, mustClaim(t, s, "user_a", active, "runner-1", long), retention.NoticeSent, sentAt)
		for i := 0; i < 2; i++ {
			if err := s.ForgetNotice(ctx, "user_a"); err != nil {
				t.Fatalf("ForgetNotice #%d = %v", i+1, err)
			}
		}
		if err := s.ForgetNotice(ctx, "user_nobody"); err != nil {
			t.Errorf("ForgetNotice of a user without a record = %v", err)
		}
		if n := mustClaim(t, s, "user_a", active, "runner-2", long); n.Attempts != 1 || n.State != retention.NoticePending {
			t.Errorf("claim after forgetting: %+v", n)
		}
	})
	t.Run("notices of different users are independent", func(t tb) {
		s := newStore(t)
		mustClaim(t, s, "user_a", active, "runner-1", long)
		mustClaim(t, s, "user_b", active, "runner-1", long)
	})
	t.Run("of 8 concurrent claimers exactly one wins", func(t tb) {
		s := newStore(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.ClaimNotice(ctx, "user_a", active, fmt.Sprint("runner-", g), long)
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
			t.Errorf("%d runners claimed the notice, want 1", wins)
		}
	})
	t.Run("unusable arguments are refused with ErrInvalidNotice naming the field", func(t tb) {
		s := newStore(t)
		for field, c := range map[string]struct {
			user, owner string
			ttl         time.Duration
		}{"UserID": {"user'--", "runner-1", long}, "owner": {"user_a", "", long}, "ttl": {"user_a", "runner-1", 0}} {
			if _, _, err := s.ClaimNotice(ctx, c.user, active, c.owner, c.ttl); !errors.Is(err, retention.ErrInvalidNotice) || !strings.Contains(err.Error(), field) {
				t.Errorf("ClaimNotice with a bad %s = %v", field, err)
			}
		}
		n := mustClaim(t, s, "user_a", active, "runner-1", long)
		for field, bad := range map[string]retention.Notice{
			"State":  {UserID: n.UserID, Owner: n.Owner, Token: n.Token, State: retention.NoticePending},
			"SentAt": {UserID: n.UserID, Owner: n.Owner, Token: n.Token, State: retention.NoticeSent},
			"Token":  {UserID: n.UserID, Owner: n.Owner, State: retention.NoticeFailed},
		} {
			if err := s.FinishNotice(ctx, bad); !errors.Is(err, retention.ErrInvalidNotice) || !strings.Contains(err.Error(), field) {
				t.Errorf("FinishNotice with a bad %s = %v", field, err)
			}
		}
		if _, ok := claim(t, s, "user_a", active, "runner-2", long); ok {
			t.Errorf("a refused FinishNotice changed the claim")
		}
	})
	t.Run("a cancelled context gives an error", func(t tb) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.ClaimNotice(cctx, "user_a", active, "runner-1", long); err == nil {
			t.Errorf("ClaimNotice with a cancelled context succeeded")
		}
	})
}
