package privacytest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// claimTTL is the claim length of cases that wait for a claim to expire:
// long enough for a few calls to a database, short enough to wait out.
const claimTTL = 300 * time.Millisecond

// claimCases are the RequestClaimer rules, run when the store is one.
func claimCases() []rsCase {
	return []rsCase{
		{Name: "RequestClaimer: ClaimRequest of a free request sets ClaimedBy and ClaimExpires and increments Version", Run: rcClaim},
		{Name: "RequestClaimer: a live claim is refused with ErrRequestClaimed, to its own owner too", Run: rcHeld},
		{Name: "RequestClaimer: an Update by the holder keeps the claim, and one with the version from before the claim fails with ErrConflict", Run: rcFence},
		{Name: "RequestClaimer: an expired claim is taken by another owner, and the old holder can no longer renew it", Run: rcExpired},
		{Name: "RequestClaimer: RenewClaim keeps a claim past its first expiry and leaves Version alone", Run: rcRenew},
		{Name: "RequestClaimer: ReleaseClaim frees the request at once; a non-holder's release does nothing", Run: rcRelease},
		{Name: "RequestClaimer: ClaimRequest of an unknown ID returns ErrRequestNotFound", Run: rcUnknown},
		{Name: "RequestClaimer: of concurrent claims by many owners exactly one wins", Run: rcRace},
	}
}

func (e *rsEnv) claimer() privacy.RequestClaimer { return e.s.(privacy.RequestClaimer) }

func (e *rsEnv) mustClaim(id, owner string, ttl time.Duration) privacy.Request {
	e.Helper()
	r, err := e.claimer().ClaimRequest(e.ctx, id, owner, ttl)
	if err != nil {
		e.Fatalf("ClaimRequest(%s): %v", owner, err)
	}
	return r
}

func rcClaim(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	before := time.Now()
	got := e.mustClaim(r.ID, "worker-a", time.Hour)
	if got.ClaimedBy != "worker-a" || got.Version != 2 {
		e.Errorf("claimed request: ClaimedBy %q, Version %d; want worker-a, 2", got.ClaimedBy, got.Version)
	}
	if d := got.ClaimExpires.Sub(before); d < time.Hour-time.Minute || d > time.Hour+time.Minute {
		e.Errorf("ClaimExpires is %v after the call, want about an hour", d)
	}
	if stored := e.get(r.ID); stored.ClaimedBy != "worker-a" || stored.Version != 2 {
		e.Errorf("Get after ClaimRequest: ClaimedBy %q, Version %d; want worker-a, 2", stored.ClaimedBy, stored.Version)
	}
	if free := e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, 1)); e.get(free.ID).ClaimedBy != "" || !e.get(free.ID).ClaimExpires.IsZero() {
		e.Errorf("an unclaimed request reads back with a claim")
	}
}

func rcHeld(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	e.mustClaim(r.ID, "worker-a", time.Hour)
	for _, owner := range []string{"worker-b", "worker-a"} {
		if _, err := e.claimer().ClaimRequest(e.ctx, r.ID, owner, time.Hour); !errors.Is(err, privacy.ErrRequestClaimed) || !errors.Is(err, steward.ErrLeaseHeld) {
			e.Errorf("ClaimRequest by %s while held = %v, want ErrRequestClaimed", owner, err)
		}
	}
}

func rcFence(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	claimed := e.mustClaim(r.ID, "worker-a", time.Hour)
	stale := r // version 1, read before the claim
	stale.Reason = "stale"
	if err := e.s.Update(e.ctx, stale); !errors.Is(err, privacy.ErrConflict) {
		e.Errorf("Update with the version from before the claim = %v, want ErrConflict", err)
	}
	claimed.Status = privacy.StatusPartial
	if err := e.s.Update(e.ctx, claimed); err != nil {
		e.Fatalf("Update by the holder: %v", err)
	}
	if got := e.get(r.ID); got.ClaimedBy != "worker-a" || got.Status != privacy.StatusPartial || got.Version != 3 {
		e.Errorf("after the holder's Update: ClaimedBy %q, Status %s, Version %d; want worker-a, partial, 3", got.ClaimedBy, got.Status, got.Version)
	}
}

func rcExpired(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	e.mustClaim(r.ID, "worker-a", claimTTL)
	time.Sleep(claimTTL + claimTTL/2)
	got := e.mustClaim(r.ID, "worker-b", time.Hour)
	if got.ClaimedBy != "worker-b" || got.Version != 3 {
		e.Errorf("takeover: ClaimedBy %q, Version %d; want worker-b, 3", got.ClaimedBy, got.Version)
	}
	if err := e.claimer().RenewClaim(e.ctx, r.ID, "worker-a", time.Hour); !errors.Is(err, privacy.ErrClaimLost) || !errors.Is(err, steward.ErrLeaseLost) {
		e.Errorf("RenewClaim by the old holder = %v, want ErrClaimLost", err)
	}
}

func rcRenew(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	e.mustClaim(r.ID, "worker-a", claimTTL)
	time.Sleep(claimTTL * 2 / 3)
	if err := e.claimer().RenewClaim(e.ctx, r.ID, "worker-a", claimTTL); err != nil {
		e.Fatalf("RenewClaim: %v", err)
	}
	time.Sleep(claimTTL * 2 / 3)
	if _, err := e.claimer().ClaimRequest(e.ctx, r.ID, "worker-b", time.Hour); !errors.Is(err, privacy.ErrRequestClaimed) {
		e.Errorf("ClaimRequest past the first expiry of a renewed claim = %v, want ErrRequestClaimed", err)
	}
	if got := e.get(r.ID); got.Version != 2 {
		e.Errorf("Version after RenewClaim = %d, want 2 (renewing does not fence the holder)", got.Version)
	}
}

func rcRelease(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	e.mustClaim(r.ID, "worker-a", time.Hour)
	if err := e.claimer().ReleaseClaim(e.ctx, r.ID, "worker-b"); err != nil {
		e.Errorf("ReleaseClaim by a non-holder = %v, want nil", err)
	}
	if _, err := e.claimer().ClaimRequest(e.ctx, r.ID, "worker-c", time.Hour); !errors.Is(err, privacy.ErrRequestClaimed) {
		e.Errorf("a non-holder's release freed the claim: ClaimRequest = %v", err)
	}
	if err := e.claimer().ReleaseClaim(e.ctx, r.ID, "worker-a"); err != nil {
		e.Fatalf("ReleaseClaim: %v", err)
	}
	if got := e.get(r.ID); got.ClaimedBy != "" || got.Version != 2 {
		e.Errorf("after ReleaseClaim: ClaimedBy %q, Version %d; want none, 2", got.ClaimedBy, got.Version)
	}
	e.mustClaim(r.ID, "worker-b", time.Hour)
}

func rcUnknown(e *rsEnv) {
	if _, err := e.claimer().ClaimRequest(e.ctx, "req_unknown", "worker-a", time.Hour); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("ClaimRequest of an unknown ID = %v, want ErrRequestNotFound", err)
	}
}

func rcRace(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			_, err := e.claimer().ClaimRequest(e.ctx, r.ID, fmt.Sprint("worker-", i), time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case !errors.Is(err, privacy.ErrRequestClaimed):
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if won != 1 || len(errs) > 0 {
		e.Errorf("%d of %d claims won (errors: %v), want exactly 1", won, n, errs)
	}
}
