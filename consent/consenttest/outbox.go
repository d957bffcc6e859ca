package consenttest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
)

// claimTTL is the claim length of cases that wait for a claim to expire:
// long enough for a few calls to a database, short enough to wait out.
const claimTTL = 300 * time.Millisecond

// expire waits until claims taken claimTTL long have expired on the
// store's clock (the machine's, for the stores this suite knows).
func expire() { time.Sleep(claimTTL + claimTTL/2) }

// later is a Now by which every entry the cases queue is due.
var later = t0.Add(24 * time.Hour)

type outboxRule struct {
	name string
	f    func(t tb, o consent.Outbox)
}

func runOutbox(t tb, newOutbox func(t tb) consent.Outbox) {
	for _, r := range outboxRules {
		t.Run(r.name, func(t tb) { r.f(t, newOutbox(t)) })
	}
}

var outboxRules = []outboxRule{
	{"Depth (an OutboxDepth) counts every queued user once, due or not, claimed or not, until Done", func(t tb, o consent.Outbox) {
		d, ok := o.(consent.OutboxDepth)
		if !ok {
			t.Skipf("the outbox is not an OutboxDepth")
		}
		depth := func() int {
			t.Helper()
			n, err := d.Depth(context.Background())
			if err != nil {
				t.Fatalf("Depth: %v", err)
			}
			return n
		}
		if n := depth(); n != 0 {
			t.Errorf("Depth of an empty outbox = %d", n)
		}
		mustEnqueue(t, o, "user_a", t0)
		mustEnqueue(t, o, "user_a", t0.Add(time.Second))
		mustEnqueue(t, o, "user_b", later.Add(time.Hour)) // not due
		c := mustClaimOne(t, o, "owner-1", claimTTL)
		if n := depth(); n != 2 {
			t.Errorf("Depth with user_a queued twice and claimed, user_b not due = %d, want 2", n)
		}
		if err := o.Done(context.Background(), c); err != nil {
			t.Fatalf("Done: %v", err)
		}
		if n := depth(); n != 1 {
			t.Errorf("Depth after user_a's sync is done = %d, want 1", n)
		}
	}},
	{"Enqueue queues a user once, a later Enqueue superseding the earlier with a greater Version", func(t tb, o consent.Outbox) {
		v1 := mustEnqueue(t, o, "user_a", t0)
		v2 := mustEnqueue(t, o, "user_a", t0.Add(time.Second))
		if v2 <= v1 {
			t.Errorf("Versions %d then %d, want them to grow", v1, v2)
		}
		got := pendings(mustClaim(t, o, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: later}))
		want := []consent.Pending{{UserID: "user_a", Version: v2, Due: t0.Add(time.Second)}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
	}},
	{"Claim takes only entries due by Now, oldest due first, up to Limit", func(t tb, o consent.Outbox) {
		for i, u := range []string{"user_c", "user_a", "user_b"} {
			mustEnqueue(t, o, u, t0.Add(time.Duration(i)*time.Minute))
		}
		got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: t0.Add(time.Minute), Limit: 10}))
		if diff := cmp.Diff([]string{"user_c", "user_a"}, got); diff != "" {
			t.Errorf("claimed by Now (-want +got):\n%s", diff)
		}
		mustEnqueue(t, o, "user_d", t0.Add(3*time.Minute))
		got = users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later, Limit: 1}))
		if diff := cmp.Diff([]string{"user_b"}, got); diff != "" {
			t.Errorf("claimed with Limit 1 (-want +got):\n%s", diff)
		}
	}},
	{"Claim with a UserID takes only that user's entry", func(t tb, o consent.Outbox) {
		mustEnqueue(t, o, "user_a", t0)
		mustEnqueue(t, o, "user_b", t0)
		got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: later, UserID: "user_b"}))
		if diff := cmp.Diff([]string{"user_b"}, got); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: later, UserID: "user_nobody"})); len(got) != 0 {
			t.Errorf("Claim of a user with no entry took %v", got)
		}
	}},
	{"a claim has its owner, a positive Token and an Expires about TTL after the call, by the store's clock", func(t tb, o consent.Outbox) {
		mustEnqueue(t, o, "user_a", t0)
		before := time.Now()
		c := mustClaimOne(t, o, "a", time.Hour)
		if c.Owner != "a" || c.Token <= 0 {
			t.Errorf("claim = %+v, want owner a and a positive Token", c)
		}
		// The store's clock is this machine's for the stores the suite
		// knows; allow for a slow call.
		if d := c.Expires.Sub(before); d < time.Hour-10*time.Second || d > time.Hour+10*time.Second {
			t.Errorf("Expires is %v after the call began, want about an hour", d)
		}
	}},
	{"a claimed entry is refused to every other claim, its own owner's included, while the claim lasts", func(t tb, o consent.Outbox) {
		mustEnqueue(t, o, "user_a", t0)
		mustClaimOne(t, o, "a", time.Minute)
		for _, owner := range []string{"b", "a"} {
			if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: owner, TTL: time.Minute, Now: later})); len(got) != 0 {
				t.Errorf("Claim by %s while claimed took %v", owner, got)
			}
		}
	}},
	{"Enqueue of a claimed entry keeps its claim", func(t tb, o consent.Outbox) {
		mustEnqueue(t, o, "user_a", t0)
		mustClaimOne(t, o, "a", time.Minute)
		mustEnqueue(t, o, "user_a", t0)
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later})); len(got) != 0 {
			t.Errorf("Claim after a newer Enqueue took %v from its holder", got)
		}
	}},
	{"an expired claim is taken by another owner with a greater Token, and its old holder can no longer renew or release it", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		old := mustClaimOne(t, o, "a", claimTTL)
		expire()
		next := mustClaimOne(t, o, "b", time.Minute)
		if next.Token <= old.Token {
			t.Errorf("Token after takeover = %d, want > %d", next.Token, old.Token)
		}
		if _, err := o.Renew(ctx, old, time.Minute); !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("Renew by the old holder = %v, want ErrLeaseLost", err)
		}
		if err := o.Release(ctx, old); err != nil {
			t.Errorf("Release by the old holder = %v, want nil", err)
		}
		if _, err := o.Renew(ctx, next, time.Minute); err != nil {
			t.Errorf("Renew by the new holder after the old one's Release = %v", err)
		}
	}},
	{"an expired claim nobody took is still its holder's: Renew and Done succeed", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", claimTTL)
		expire()
		r, err := o.Renew(ctx, c, time.Minute)
		if err != nil {
			t.Fatalf("Renew of an expired claim nobody took = %v", err)
		}
		if err := o.Done(ctx, r); err != nil {
			t.Errorf("Done = %v", err)
		}
		assertEmpty(t, o)
	}},
	{"Renew extends a held claim and reports a Version enqueued since", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", claimTTL)
		v2 := mustEnqueue(t, o, "user_a", t0)
		time.Sleep(10 * time.Millisecond)
		r, err := o.Renew(ctx, c, time.Hour)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if r.Version != v2 || r.Token != c.Token || r.Owner != "a" {
			t.Errorf("Renew = %+v, want Version %d, the same owner and Token as %+v", r, v2, c)
		}
		if !r.Expires.After(c.Expires) {
			t.Errorf("renewed Expires %v is not after %v", r.Expires, c.Expires)
		}
		expire()
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later})); len(got) != 0 {
			t.Errorf("a renewed claim was taken at its first expiry: %v", got)
		}
	}},
	{"Done removes the entry when nothing was enqueued since the claim's Version, and a later Enqueue queues the user again", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", time.Minute)
		if err := o.Done(ctx, c); err != nil {
			t.Fatalf("Done = %v", err)
		}
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later})); len(got) != 0 {
			t.Errorf("entries left after Done: %v", got)
		}
		v := mustEnqueue(t, o, "user_a", t0)
		if v <= c.Version {
			t.Errorf("Version after Done and Enqueue = %d, want > %d", v, c.Version)
		}
		if got := mustClaimOne(t, o, "b", time.Minute); got.Version != v || got.Rewrite || got.Attempts != 0 {
			t.Errorf("claimed %+v, want a fresh entry with Version %d", got, v)
		}
	}},
	{"Done after a newer Enqueue fails with ErrSuperseded and keeps the claim for the newer Version", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", time.Minute)
		v2 := mustEnqueue(t, o, "user_a", t0)
		if err := o.Done(ctx, c); !errors.Is(err, consent.ErrSuperseded) {
			t.Fatalf("Done = %v, want ErrSuperseded", err)
		}
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later})); len(got) != 0 {
			t.Errorf("the superseded entry was claimable: %v", got)
		}
		r, err := o.Renew(ctx, c, time.Minute)
		if err != nil || r.Version != v2 {
			t.Fatalf("Renew = %+v, %v; want Version %d", r, err, v2)
		}
		if err := o.Done(ctx, r); err != nil {
			t.Errorf("Done with the newer Version = %v", err)
		}
		assertEmpty(t, o)
	}},
	{"Done by a holder whose claim was taken over fails with ErrLeaseLost and queues the entry again marked Rewrite, the new holder keeping its claim", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		old := mustClaimOne(t, o, "a", claimTTL)
		expire()
		next := mustClaimOne(t, o, "b", time.Minute)
		if err := o.Done(ctx, old); !errors.Is(err, steward.ErrLeaseLost) {
			t.Fatalf("Done by the old holder = %v, want ErrLeaseLost", err)
		}
		r, err := o.Renew(ctx, next, time.Minute)
		if err != nil {
			t.Fatalf("Renew by the new holder = %v", err)
		}
		if r.Version <= next.Version || !r.Rewrite {
			t.Errorf("entry after the lost Done = %+v, want a Version > %d and Rewrite", r.Pending, next.Version)
		}
		if err := o.Done(ctx, next); !errors.Is(err, consent.ErrSuperseded) {
			t.Errorf("Done by the new holder with its first Version = %v, want ErrSuperseded", err)
		}
		if err := o.Done(ctx, r); err != nil {
			t.Errorf("Done by the new holder = %v", err)
		}
		assertEmpty(t, o)
	}},
	{"Done by a holder whose entry was finished by another fails with ErrLeaseLost and queues the entry again, due at once and marked Rewrite", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		old := mustClaimOne(t, o, "a", claimTTL)
		expire()
		if err := o.Done(ctx, mustClaimOne(t, o, "b", time.Minute)); err != nil {
			t.Fatalf("%v", err)
		}
		if err := o.Done(ctx, old); !errors.Is(err, steward.ErrLeaseLost) {
			t.Fatalf("Done by the old holder = %v, want ErrLeaseLost", err)
		}
		got := mustClaim(t, o, consent.ClaimQuery{Owner: "c", TTL: time.Minute, Now: t0})
		if len(got) != 1 || !got[0].Rewrite || !got[0].Due.Equal(t0) || got[0].Version <= old.Version {
			t.Errorf("claimed at the old due time %+v, want user_a marked Rewrite with a greater Version", pendings(got))
		}
	}},
	{"Retry counts an attempt, records the error, postpones the entry and frees its claim", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		v := mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", time.Minute)
		if err := o.Retry(ctx, c, t0.Add(time.Hour), "boom"); err != nil {
			t.Fatalf("Retry = %v", err)
		}
		if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: t0.Add(time.Minute)})); len(got) != 0 {
			t.Errorf("a postponed entry is due early: %v", got)
		}
		got := pendings(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: t0.Add(time.Hour)}))
		want := []consent.Pending{{UserID: "user_a", Version: v, Due: t0.Add(time.Hour), Attempts: 1, LastErr: "boom"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after Retry (-want +got):\n%s", diff)
		}
	}},
	{"Retry after a newer Enqueue only frees the claim: the newer change stays due with no attempts", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", time.Minute)
		v2 := mustEnqueue(t, o, "user_a", t0)
		if err := o.Retry(ctx, c, t0.Add(48*time.Hour), "stale"); err != nil {
			t.Fatalf("Retry = %v", err)
		}
		got := pendings(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: t0}))
		want := []consent.Pending{{UserID: "user_a", Version: v2, Due: t0}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after a superseded Retry (-want +got):\n%s", diff)
		}
	}},
	{"Retry by a holder whose claim was taken over fails with ErrLeaseLost, counts nothing and queues the entry again marked Rewrite", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		old := mustClaimOne(t, o, "a", claimTTL)
		expire()
		next := mustClaimOne(t, o, "b", time.Minute)
		if err := o.Retry(ctx, old, t0.Add(time.Hour), "late"); !errors.Is(err, steward.ErrLeaseLost) {
			t.Fatalf("Retry by the old holder = %v, want ErrLeaseLost", err)
		}
		r, err := o.Renew(ctx, next, time.Minute)
		if err != nil {
			t.Fatalf("Renew by the new holder = %v", err)
		}
		if !r.Rewrite || r.Attempts != 0 || r.LastErr != "" || r.Version <= next.Version {
			t.Errorf("entry after the lost Retry = %+v, want Rewrite, no attempts and a Version > %d", r.Pending, next.Version)
		}
	}},
	{"Release frees a held claim without counting an attempt", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		v := mustEnqueue(t, o, "user_a", t0)
		c := mustClaimOne(t, o, "a", time.Minute)
		if err := o.Release(ctx, c); err != nil {
			t.Fatalf("Release = %v", err)
		}
		got := pendings(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: t0}))
		want := []consent.Pending{{UserID: "user_a", Version: v, Due: t0}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after Release (-want +got):\n%s", diff)
		}
		if _, err := o.Renew(ctx, c, time.Minute); !errors.Is(err, steward.ErrLeaseLost) {
			t.Errorf("Renew of a released claim = %v, want ErrLeaseLost", err)
		}
	}},
	{"Claim and Renew reject an empty owner and a TTL under a millisecond with ErrInvalidLease", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		for _, q := range []consent.ClaimQuery{{Owner: "", TTL: time.Minute, Now: later}, {Owner: "a", TTL: time.Microsecond, Now: later}} {
			if _, err := o.Claim(ctx, q); !errors.Is(err, steward.ErrInvalidLease) {
				t.Errorf("Claim(%+v) = %v, want ErrInvalidLease", q, err)
			}
		}
		c := mustClaimOne(t, o, "a", time.Minute)
		if _, err := o.Renew(ctx, c, 0); !errors.Is(err, steward.ErrInvalidLease) {
			t.Errorf("Renew with ttl 0 = %v, want ErrInvalidLease", err)
		}
	}},
	{"concurrent Claims by many owners hand each entry to exactly one of them", func(t tb, o consent.Outbox) {
		const n = 60
		var all []string
		for i := range n {
			u := "user_" + string(rune('a'+i/26)) + string(rune('a'+i%26))
			all = append(all, u)
			mustEnqueue(t, o, u, t0)
		}
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					cs, err := o.Claim(context.Background(), consent.ClaimQuery{Owner: "owner_" + string(rune('a'+g)), TTL: time.Minute, Now: later, Limit: 4})
					if err != nil {
						t.Errorf("%v", err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					got = append(got, users(cs)...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(got)
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("users claimed (-want each once +got):\n%s", diff)
		}
	}},
	{"Erase of a user drops their outbox entry, claimed or not, and only theirs", func(t tb, o consent.Outbox) {
		ctx := t.Context()
		mustEnqueue(t, o, "user_a", t0)
		mustEnqueue(t, o, "user_b", t0)
		mustEnqueue(t, o, "user_c", t0)
		mustClaim(t, o, consent.ClaimQuery{Owner: "a", TTL: time.Minute, Now: later, UserID: "user_c"})
		for _, u := range []string{"user_a", "user_c"} {
			if _, err := o.(consent.Store).Erase(ctx, u, nil); err != nil {
				t.Fatalf("%v", err)
			}
		}
		expire() // user_c's claim would have lapsed
		got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "b", TTL: time.Minute, Now: later}))
		if diff := cmp.Diff([]string{"user_b"}, got); diff != "" {
			t.Errorf("entries after erasing user_a and user_c (-want +got):\n%s", diff)
		}
	}},
}

func mustEnqueue(t tb, o consent.Outbox, user string, due time.Time) int64 {
	t.Helper()
	v, err := o.Enqueue(context.Background(), user, due)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return v
}

func mustClaim(t tb, o consent.Outbox, q consent.ClaimQuery) []consent.Claim {
	t.Helper()
	cs, err := o.Claim(context.Background(), q)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return cs
}

// mustClaimOne claims user_a for owner.
func mustClaimOne(t tb, o consent.Outbox, owner string, ttl time.Duration) consent.Claim {
	t.Helper()
	cs := mustClaim(t, o, consent.ClaimQuery{Owner: owner, TTL: ttl, Now: later, UserID: "user_a"})
	if len(cs) != 1 {
		t.Fatalf("Claim of user_a by %s took %d entries, want 1", owner, len(cs))
	}
	return cs[0]
}

// assertEmpty fails t when an unclaimed entry is left.
func assertEmpty(t tb, o consent.Outbox) {
	t.Helper()
	if got := users(mustClaim(t, o, consent.ClaimQuery{Owner: "probe", TTL: time.Minute, Now: later})); len(got) != 0 {
		t.Errorf("entries left: %v", got)
	}
}

func users(cs []consent.Claim) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.UserID)
	}
	return out
}

// pendings returns the entries of cs, their times in UTC.
func pendings(cs []consent.Claim) []consent.Pending {
	out := []consent.Pending{}
	for _, c := range cs {
		p := c.Pending
		p.Due = p.Due.UTC()
		out = append(out, p)
	}
	return out
}
