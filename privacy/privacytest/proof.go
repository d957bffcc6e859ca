package privacytest

import (
	"errors"
	"time"

	"github.com/stewardlabs/steward/privacy"
)

// proofCases are the RequestStore rules that erasure's proofs rely on.
func proofCases() []rsCase {
	return []rsCase{
		{Name: "a second pending or partial export for a user returns ErrActiveRequest; a finished one does not count", Run: rsOnePendingExport},
		{Name: "Update replaces UserID and Actor by pseudonyms as a request finishes", Run: rsPseudonymise},
		{Name: "NotBefore and ExpiresAt read back, and List filters by ExpiresBefore (strictly, zero never matching)", Run: rsExpiry},
	}
}

func rsOnePendingExport(e *rsEnv) {
	user := newUserID()
	first := e.create(e.req(privacy.KindExport, user, privacy.StatusPending, 0))
	for _, st := range []privacy.Status{privacy.StatusPending, privacy.StatusPartial} {
		if err := e.s.Create(e.ctx, e.req(privacy.KindExport, user, st, 1)); !errors.Is(err, privacy.ErrActiveRequest) {
			e.Errorf("Create of a second %s export returned %v; want ErrActiveRequest", st, err)
		}
	}
	e.create(e.req(privacy.KindExport, user, privacy.StatusCompleted, 2))
	e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, 3))
	done := first
	done.Status = privacy.StatusCompleted
	if err := e.s.Update(e.ctx, done); err != nil {
		e.Fatalf("Update completing the pending export: %v", err)
	}
	e.create(e.req(privacy.KindExport, user, privacy.StatusPending, 4))
}

func rsPseudonymise(e *rsEnv) {
	user := newUserID()
	r := e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 0))
	r.Actor = newUserID()
	r = e.update(r)
	r.Status, r.CompletedAt = privacy.StatusCompleted, r.UpdatedAt
	r.UserID, r.Actor = pseudonymizer.Pseudonym(user), pseudonymizer.Pseudonym(r.Actor)
	want := e.update(r)
	e.check("Get after pseudonymising", want, e.get(r.ID))
	if got := e.list(privacy.RequestFilter{UserID: user}); len(got) != 0 {
		e.Errorf("List by the user ID still finds %d requests after they were pseudonymised", len(got))
	}
	if got := e.list(privacy.RequestFilter{UserID: want.UserID}); len(got) != 1 {
		e.Errorf("List by the pseudonym finds %d requests, want 1", len(got))
	}
	// The user may open a new erasure once the old one is finished.
	e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 1))
}

func rsExpiry(e *rsEnv) {
	at := func(i int) time.Time { return e.base.Add(time.Duration(i) * time.Hour) }
	mk := func(i int, expires time.Time) privacy.Request {
		r := e.req(privacy.KindExport, newUserID(), privacy.StatusCompleted, i)
		r.ExpiresAt = expires
		return e.create(r)
	}
	a, b := mk(0, at(10)), mk(1, at(20))
	mk(2, time.Time{})
	er := e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 3)
	er.NotBefore = at(4)
	er = e.create(er)
	e.check("Get of a request with NotBefore", er, e.get(er.ID))
	e.check("Get of an export with ExpiresAt", a, e.get(a.ID))
	for _, tt := range []struct {
		before time.Time
		want   []string
	}{
		{at(10), nil},
		{at(10).Add(time.Microsecond), []string{a.ID}},
		{at(30), []string{a.ID, b.ID}},
	} {
		got := ids(e.list(privacy.RequestFilter{ExpiresBefore: tt.before}))
		if len(got) != len(tt.want) || len(got) > 0 && (got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1]) {
			e.Errorf("List with ExpiresBefore %v = %v, want %v", tt.before, got, tt.want)
		}
	}
}

// update stores r and returns it as stored.
func (e *rsEnv) update(r privacy.Request) privacy.Request {
	e.Helper()
	if err := e.s.Update(e.ctx, r); err != nil {
		e.Fatalf("Update: %v", err)
	}
	r.Version++
	return r
}

// purgeCases are the RequestPurger rules, run when the store is one.
func purgeCases() []rsCase {
	return []rsCase{
		{Name: "RequestPurger: CountFinished and PurgeFinished touch only finished requests that finished strictly before the cutoff", Run: rpPurge},
		{Name: "RequestPurger: PurgeFinished honours its limit, and refuses one under 1", Run: rpLimit},
	}
}

func (e *rsEnv) purger() privacy.RequestPurger { return e.s.(privacy.RequestPurger) }

func rpPurge(e *rsEnv) {
	at := func(i int) time.Time { return e.base.Add(time.Duration(i) * time.Hour) }
	finished := func(st privacy.Status, kind privacy.Kind, i int) privacy.Request {
		r := e.req(kind, newUserID(), st, i)
		r.CompletedAt = at(i)
		return e.create(r)
	}
	old := []privacy.Request{
		finished(privacy.StatusCompleted, privacy.KindErasure, 0),
		finished(privacy.StatusCancelled, privacy.KindErasure, 1),
		finished(privacy.StatusExpired, privacy.KindExport, 2),
	}
	recent := finished(privacy.StatusCompleted, privacy.KindErasure, 5)
	open := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPartial, 0))
	if n, err := e.purger().CountFinished(e.ctx, at(5)); err != nil || n != 3 {
		e.Errorf("CountFinished = %d, %v; want 3", n, err)
	}
	if n, err := e.purger().PurgeFinished(e.ctx, at(5), 100); err != nil || n != 3 {
		e.Errorf("PurgeFinished = %d, %v; want 3", n, err)
	}
	for _, r := range old {
		if _, err := e.s.Get(e.ctx, r.ID); !errors.Is(err, privacy.ErrRequestNotFound) {
			e.Errorf("purged request %s (%s) is still there: %v", r.ID, r.Status, err)
		}
	}
	e.get(recent.ID)
	e.get(open.ID)
	if n, err := e.purger().CountFinished(e.ctx, at(5)); err != nil || n != 0 {
		e.Errorf("CountFinished after the purge = %d, %v; want 0", n, err)
	}
}

func rpLimit(e *rsEnv) {
	for i := range 5 {
		r := e.req(privacy.KindErasure, newUserID(), privacy.StatusCompleted, i)
		r.CompletedAt = r.UpdatedAt
		e.create(r)
	}
	cutoff := e.base.Add(24 * time.Hour)
	if n, err := e.purger().PurgeFinished(e.ctx, cutoff, 2); err != nil || n != 2 {
		e.Errorf("PurgeFinished with limit 2 = %d, %v; want 2", n, err)
	}
	if n, _ := e.purger().CountFinished(e.ctx, cutoff); n != 3 {
		e.Errorf("%d finished requests left, want 3", n)
	}
	if _, err := e.purger().PurgeFinished(e.ctx, cutoff, 0); err == nil {
		e.Errorf("PurgeFinished with limit 0 returned no error")
	}
}
