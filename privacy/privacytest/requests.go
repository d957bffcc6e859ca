package privacytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

// RequestStoreMaker returns a fresh, empty RequestStore for one case. It
// is called once per case with that case's t; register clean-up with
// t.Cleanup.
type RequestStoreMaker func(ctx context.Context, t *testing.T) (privacy.RequestStore, error)

// RunRequestStoreConformance runs every case of the RequestStore suite as
// a subtest of t, each with a fresh store from newStore:
//
//	func TestRequestStoreConformance(t *testing.T) {
//		privacytest.RunRequestStoreConformance(t, func(ctx context.Context, t *testing.T) (privacy.RequestStore, error) {
//			return privacy.NewMemoryRequestStore(), nil
//		})
//	}
//
// Times are written truncated to the microsecond, in UTC, and compared
// with time.Time.Equal, so a store may return them in another location.
func RunRequestStoreConformance(t *testing.T, newStore RequestStoreMaker) {
	t.Helper()
	runRequestStore(conformance.Wrap(t), func(ctx context.Context, t tb) (privacy.RequestStore, error) {
		return newStore(ctx, conformance.Testing(t))
	}, defaultConfig)
}

type rsMaker func(ctx context.Context, t tb) (privacy.RequestStore, error)

// rsCase is one rule of the RequestStore suite.
type rsCase = conformance.Case[*rsEnv]

func runRequestStore(t tb, mk rsMaker, cfg config) {
	env := func(ctx context.Context, t tb) *rsEnv {
		s, err := mk(ctx, t)
		if err != nil {
			t.Fatalf("making the store: %v", err)
		}
		return &rsEnv{tb: t, cfg: cfg, ctx: ctx, s: s, base: time.Date(2025, 1, 31, 9, 30, 0, 123456000, time.UTC)}
	}
	cases := append(requestStoreCases(), proofCases()...)
	probe := env(t.Context(), t).s
	if _, ok := probe.(privacy.RequestClaimer); ok {
		cases = append(cases, claimCases()...)
	}
	if _, ok := probe.(privacy.RequestPurger); ok {
		cases = append(cases, purgeCases()...)
	}
	conformance.RunCases(t, cases, env)
	if _, ok := probe.(privacy.Ledger); ok {
		conformance.RunCases(t, ledgerCases(), func(ctx context.Context, t tb) *lgEnv {
			s := env(ctx, t).s
			return &lgEnv{tb: t, ctx: ctx, l: s.(privacy.Ledger), base: time.Date(2025, 1, 31, 9, 30, 0, 123456000, time.UTC)}
		})
	}
}

func requestStoreCases() []rsCase {
	return []rsCase{
		{Name: "Get returns the request as Create stored it, with Version 1", Run: rsCreateGet},
		{Name: "empty optional fields read back empty", Run: rsEmptyFields},
		{Name: "Get of an unknown ID returns ErrRequestNotFound", Run: rsGetUnknown},
		{Name: "Get returns a copy: changing it changes nothing stored", Run: rsGetCopy},
		{Name: "Create of a taken ID returns ErrDuplicateRequest and changes nothing", Run: rsCreateDuplicate},
		{Name: "a second open erasure request for a user returns ErrActiveRequest", Run: rsCreateActive},
		{Name: "a held or partial erasure request is open too", Run: rsHeldPartialOpen},
		{Name: "a user may have a new erasure request once the old one is completed", Run: rsCreateAfterCompleted},
		{Name: "export requests and other users' erasures do not count as a user's open erasure", Run: rsOpenScope},
		{Name: "Update stores the request and increments Version", Run: rsUpdate},
		{Name: "Update with a stale Version returns ErrConflict and changes nothing", Run: rsUpdateStale},
		{Name: "of concurrent Updates from one version exactly one succeeds", Run: rsUpdateRace},
		{Name: "Update of an unknown ID returns ErrRequestNotFound", Run: rsUpdateUnknown},
		{Name: "Update that would reopen a second erasure for a user returns ErrActiveRequest", Run: rsUpdateReopen},
		{Name: "List of an empty store yields nothing", Run: rsListEmpty},
		{Name: "List yields every request once, ordered by ReceivedAt then ID", Run: rsListOrder},
		{Name: "List filters by Kind, UserID, Statuses, DueBefore and UpdatedBefore", Run: rsListFilters},
		{Name: "List honours Limit", Run: rsListLimit},
		{Name: "List with After yields what comes after the cursor, so pages of Limit cover every match once", Run: rsListAfter},
		{Name: "List stops when the consumer stops", Run: rsListStops},
		{Name: "calls with a cancelled context return the context's error and change nothing", Run: rsCancelled},
	}
}

type rsEnv struct {
	tb
	cfg  config
	ctx  context.Context
	s    privacy.RequestStore
	base time.Time
	n    int
}

// req returns a new full request; i shifts its times by i hours.
func (e *rsEnv) req(kind privacy.Kind, userID string, status privacy.Status, i int) privacy.Request {
	e.n++
	at := e.base.Add(time.Duration(i) * time.Hour)
	return privacy.Request{
		ID:              fmt.Sprintf("req_%s_%03d", newUserID()[7:], e.n),
		Kind:            kind,
		UserID:          userID,
		Actor:           "system:test",
		Regime:          privacy.GDPR,
		Status:          status,
		ReceivedAt:      at,
		DueAt:           privacy.GDPR.Deadline(at),
		ExtendedAt:      at.Add(time.Minute),
		ExtensionReason: "complex request",
		Reason:          "",
		UpdatedAt:       at.Add(2 * time.Minute),
		Steps: []privacy.Step{
			{Name: "orders", Kind: privacy.StepStore, Status: privacy.StepDone, Attempts: 2, Erased: 7, UpdatedAt: at.Add(time.Second)},
			{Name: "identity", Kind: privacy.StepIdentity, Status: privacy.StepFailed, Attempts: 5, Error: "503 unavailable", UpdatedAt: at.Add(2 * time.Second)},
			{Name: "analytics", Kind: privacy.StepExternal, Status: privacy.StepPending},
		},
		Location: "",
	}
}

func (e *rsEnv) create(r privacy.Request) privacy.Request {
	e.Helper()
	if err := e.s.Create(e.ctx, r); err != nil {
		e.Fatalf("Create: %v", err)
	}
	r.Version = 1
	return r
}

func (e *rsEnv) get(id string) privacy.Request {
	e.Helper()
	r, err := e.s.Get(e.ctx, id)
	if err != nil {
		e.Fatalf("Get: %v", err)
	}
	return r
}

func (e *rsEnv) list(f privacy.RequestFilter) []privacy.Request {
	e.Helper()
	var out []privacy.Request
	done := make(chan error, 1)
	go func() {
		for r, err := range e.s.List(e.ctx, f) {
			if err != nil {
				done <- err
				return
			}
			out = append(out, r)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			e.Fatalf("List(%+v): %v", f, err)
		}
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("List did not finish within %v", e.cfg.blockTimeout)
	}
	return out
}

var reqOpts = cmp.Options{cmpopts.EquateEmpty()}

func (e *rsEnv) check(what string, want, got privacy.Request) {
	e.Helper()
	if diff := cmp.Diff(want, got, reqOpts); diff != "" {
		e.Errorf("%s: request differs (-want +got):\n%s", what, diff)
	}
}

func ids(rs []privacy.Request) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func rsCreateGet(e *rsEnv) {
	want := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPartial, 0))
	e.check("Get after Create", want, e.get(want.ID))
	ex := e.req(privacy.KindExport, newUserID(), privacy.StatusCompleted, 1)
	ex.Regime, ex.DueAt = privacy.CCPA, privacy.CCPA.Deadline(ex.ReceivedAt)
	ex.Location, ex.CompletedAt, ex.Reason = ex.ID+".json", ex.UpdatedAt, "why not"
	ex = e.create(ex)
	e.check("Get after Create of a completed export", ex, e.get(ex.ID))
}

func rsEmptyFields(e *rsEnv) {
	r := privacy.Request{ID: "req_minimal_" + newUserID()[7:], Kind: privacy.KindErasure, UserID: newUserID(),
		Regime: privacy.GDPR, Status: privacy.StatusPending, ReceivedAt: e.base, DueAt: e.base, UpdatedAt: e.base}
	want := e.create(r)
	got := e.get(r.ID)
	e.check("Get of a request with empty optional fields", want, got)
	if !got.ExtendedAt.IsZero() || !got.CompletedAt.IsZero() {
		e.Errorf("zero times read back as ExtendedAt %v, CompletedAt %v", got.ExtendedAt, got.CompletedAt)
	}
}

func rsGetUnknown(e *rsEnv) {
	e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	if _, err := e.s.Get(e.ctx, "req_nosuchrequest"); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("Get of an unknown ID returned %v; want ErrRequestNotFound", err)
	}
}

func rsGetCopy(e *rsEnv) {
	want := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	got := e.get(want.ID)
	got.Steps[0].Status = privacy.StepFailed
	got.Steps = append(got.Steps, privacy.Step{Name: "extra"})
	got.Status = privacy.StatusCompleted
	e.check("Get after changing an earlier Get's result", want, e.get(want.ID))
}

func rsCreateDuplicate(e *rsEnv) {
	want := e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, 0))
	dup := e.req(privacy.KindExport, newUserID(), privacy.StatusCompleted, 3)
	dup.ID = want.ID
	if err := e.s.Create(e.ctx, dup); !errors.Is(err, privacy.ErrDuplicateRequest) {
		e.Errorf("Create of a taken ID returned %v; want ErrDuplicateRequest", err)
	}
	e.check("Get after a duplicate Create", want, e.get(want.ID))
}

func rsCreateActive(e *rsEnv) {
	user := newUserID()
	first := e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 0))
	second := e.req(privacy.KindErasure, user, privacy.StatusPending, 1)
	if err := e.s.Create(e.ctx, second); !errors.Is(err, privacy.ErrActiveRequest) {
		e.Errorf("second open erasure Create returned %v; want ErrActiveRequest", err)
	}
	if _, err := e.s.Get(e.ctx, second.ID); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("the refused request was stored (Get returned %v)", err)
	}
	e.check("the first request", first, e.get(first.ID))
}

func rsHeldPartialOpen(e *rsEnv) {
	for _, st := range []privacy.Status{privacy.StatusHeld, privacy.StatusPartial} {
		user := newUserID()
		e.create(e.req(privacy.KindErasure, user, st, 0))
		if err := e.s.Create(e.ctx, e.req(privacy.KindErasure, user, privacy.StatusPending, 1)); !errors.Is(err, privacy.ErrActiveRequest) {
			e.Errorf("Create beside a %s erasure returned %v; want ErrActiveRequest", st, err)
		}
	}
}

func rsCreateAfterCompleted(e *rsEnv) {
	user := newUserID()
	e.create(e.req(privacy.KindErasure, user, privacy.StatusCompleted, 0))
	e.create(e.req(privacy.KindErasure, user, privacy.StatusCompleted, 1))
	e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 2))
}

func rsOpenScope(e *rsEnv) {
	user := newUserID()
	e.create(e.req(privacy.KindExport, user, privacy.StatusPending, 0))
	e.create(e.req(privacy.KindExport, user, privacy.StatusCompleted, 1))
	e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 2))
	e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 3))
}

func rsUpdate(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	r.Status = privacy.StatusCompleted
	r.CompletedAt = e.base.Add(48 * time.Hour)
	r.UpdatedAt = r.CompletedAt
	r.Steps[1] = privacy.Step{Name: "identity", Kind: privacy.StepIdentity, Status: privacy.StepDone, Attempts: 6, Erased: 1, UpdatedAt: r.CompletedAt}
	r.Steps = append(r.Steps, privacy.Step{Name: "audit", Kind: privacy.StepAudit, Status: privacy.StepDone, Attempts: 1})
	if err := e.s.Update(e.ctx, r); err != nil {
		e.Fatalf("Update: %v", err)
	}
	r.Version = 2
	e.check("Get after Update", r, e.get(r.ID))
	r.Reason = "second update"
	if err := e.s.Update(e.ctx, r); err != nil {
		e.Fatalf("second Update: %v", err)
	}
	r.Version = 3
	e.check("Get after a second Update", r, e.get(r.ID))
}

func rsUpdateStale(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	fresh := r
	fresh.Status = privacy.StatusPartial
	if err := e.s.Update(e.ctx, fresh); err != nil {
		e.Fatalf("Update: %v", err)
	}
	fresh.Version = 2
	stale := r
	stale.Status = privacy.StatusCompleted
	if err := e.s.Update(e.ctx, stale); !errors.Is(err, privacy.ErrConflict) {
		e.Errorf("Update with Version 1 of a version-2 request returned %v; want ErrConflict", err)
	}
	e.check("Get after a stale Update", fresh, e.get(r.ID))
}

func rsUpdateRace(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := r.Clone()
			u.Reason = fmt.Sprintf("writer %d", i)
			errs[i] = e.s.Update(e.ctx, u)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			e.Errorf("writers %d and %d both updated version 1", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, privacy.ErrConflict):
			e.Errorf("writer %d: Update returned %v; want nil or ErrConflict", i, err)
		}
	}
	if won < 0 {
		e.Fatalf("no writer succeeded")
	}
	got := e.get(r.ID)
	if got.Version != 2 || got.Reason != fmt.Sprintf("writer %d", won) {
		e.Errorf("stored Version %d, Reason %q; want 2, the winner's (writer %d)", got.Version, got.Reason, won)
	}
}

func rsUpdateUnknown(e *rsEnv) {
	r := e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0)
	r.Version = 1
	if err := e.s.Update(e.ctx, r); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("Update of an unknown ID returned %v; want ErrRequestNotFound", err)
	}
	if _, err := e.s.Get(e.ctx, r.ID); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("Update of an unknown ID stored it (Get returned %v)", err)
	}
}

func rsUpdateReopen(e *rsEnv) {
	user := newUserID()
	old := e.create(e.req(privacy.KindErasure, user, privacy.StatusCompleted, 0))
	e.create(e.req(privacy.KindErasure, user, privacy.StatusPending, 1))
	reopened := old
	reopened.Status = privacy.StatusPartial
	if err := e.s.Update(e.ctx, reopened); !errors.Is(err, privacy.ErrActiveRequest) {
		e.Errorf("Update reopening a second erasure returned %v; want ErrActiveRequest", err)
	}
	e.check("Get after the refused Update", old, e.get(old.ID))
}

func rsListEmpty(e *rsEnv) {
	if got := e.list(privacy.RequestFilter{}); len(got) != 0 {
		e.Errorf("List of an empty store yielded %d requests", len(got))
	}
}

func rsListOrder(e *rsEnv) {
	var want []privacy.Request
	// Received out of order, two at the same time (ordered by ID).
	for _, i := range []int{3, 1, 2, 0} {
		want = append(want, e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusCompleted, i)))
	}
	same := e.req(privacy.KindExport, newUserID(), privacy.StatusCompleted, 2)
	same.ID = want[2].ID[:len(want[2].ID)-3] + "zzz"
	want = append(want, e.create(same))
	order := []int{3, 1, 2, 4, 0}
	wantIDs := make([]string, len(order))
	for i, j := range order {
		wantIDs[i] = want[j].ID
	}
	got := e.list(privacy.RequestFilter{})
	if diff := cmp.Diff(wantIDs, ids(got)); diff != "" {
		e.Errorf("List order (-want +got):\n%s", diff)
	}
	for _, r := range got {
		for _, w := range want {
			if w.ID == r.ID {
				e.check("List result", w, r)
			}
		}
	}
}

func rsListFilters(e *rsEnv) {
	alice, bob := newUserID(), newUserID()
	a0 := e.create(e.req(privacy.KindErasure, alice, privacy.StatusCompleted, 0))
	a1 := e.create(e.req(privacy.KindErasure, alice, privacy.StatusPartial, 1))
	a2 := e.create(e.req(privacy.KindExport, alice, privacy.StatusPending, 2))
	b3 := e.create(e.req(privacy.KindErasure, bob, privacy.StatusHeld, 3))
	b4 := e.create(e.req(privacy.KindExport, bob, privacy.StatusCompleted, 4))
	at := func(i int) time.Time { return e.base.Add(time.Duration(i) * time.Hour) }
	tests := []struct {
		name string
		f    privacy.RequestFilter
		want []privacy.Request
	}{
		{"no filter", privacy.RequestFilter{}, []privacy.Request{a0, a1, a2, b3, b4}},
		{"Kind", privacy.RequestFilter{Kind: privacy.KindExport}, []privacy.Request{a2, b4}},
		{"UserID", privacy.RequestFilter{UserID: bob}, []privacy.Request{b3, b4}},
		{"one status", privacy.RequestFilter{Statuses: []privacy.Status{privacy.StatusCompleted}}, []privacy.Request{a0, b4}},
		{"several statuses", privacy.RequestFilter{Statuses: []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld}}, []privacy.Request{a1, a2, b3}},
		{"DueBefore is strict", privacy.RequestFilter{DueBefore: privacy.GDPR.Deadline(at(2))}, []privacy.Request{a0, a1}},
		{"UpdatedBefore is strict", privacy.RequestFilter{UpdatedBefore: at(3).Add(2 * time.Minute)}, []privacy.Request{a0, a1, a2}},
		{"all together", privacy.RequestFilter{Kind: privacy.KindErasure, UserID: alice, Statuses: []privacy.Status{privacy.StatusPartial}, DueBefore: at(24 * 40), UpdatedBefore: at(100)}, []privacy.Request{a1}},
		{"nothing matches", privacy.RequestFilter{UserID: alice, Statuses: []privacy.Status{privacy.StatusHeld}}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(ids(tt.want), ids(e.list(tt.f))); diff != "" {
			e.Errorf("List filtered by %s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func rsListLimit(e *rsEnv) {
	var all []string
	for i := range 5 {
		all = append(all, e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, i)).ID)
	}
	for _, limit := range []int{1, 3, 5, 9} {
		want := all[:min(limit, len(all))]
		if diff := cmp.Diff(want, ids(e.list(privacy.RequestFilter{Limit: limit}))); diff != "" {
			e.Errorf("List with Limit %d (-want +got):\n%s", limit, diff)
		}
	}
	got := e.list(privacy.RequestFilter{Kind: privacy.KindExport, Statuses: []privacy.Status{privacy.StatusPending}, Limit: 2})
	if diff := cmp.Diff(all[:2], ids(got)); diff != "" {
		e.Errorf("List with a filter and Limit 2 (-want +got):\n%s", diff)
	}
}

func rsListAfter(e *rsEnv) {
	var all []privacy.Request
	for _, i := range []int{4, 0, 2, 2, 1, 3} {
		all = append(all, e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, i)))
	}
	// A request received at the same time as another, with a greater ID.
	tie := e.req(privacy.KindErasure, newUserID(), privacy.StatusPartial, 2)
	tie.ID = all[3].ID + "z"
	all = append(all, e.create(tie))
	want := ids(e.list(privacy.RequestFilter{}))
	if len(want) != len(all) {
		e.Fatalf("List yielded %d requests, want %d", len(want), len(all))
	}
	for _, limit := range []int{1, 2, 3, 7} {
		var got []string
		var after privacy.Cursor
		for page := 0; ; page++ {
			if page > len(all) {
				e.Fatalf("Limit %d: more than %d pages", limit, len(all))
			}
			rs := e.list(privacy.RequestFilter{After: after, Limit: limit})
			if len(rs) == 0 {
				break
			}
			got = append(got, ids(rs)...)
			after = rs[len(rs)-1].Cursor()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			e.Errorf("pages of Limit %d, each After the last request of the one before (-want +got):\n%s", limit, diff)
		}
	}
	third := e.list(privacy.RequestFilter{})[2]
	if diff := cmp.Diff(want[3:], ids(e.list(privacy.RequestFilter{After: third.Cursor()}))); diff != "" {
		e.Errorf("List After the third request (-want +got):\n%s", diff)
	}
	// With a filter, After applies to the matching requests.
	var wantPartial []string
	if slices.Contains(want[3:], tie.ID) {
		wantPartial = []string{tie.ID}
	}
	partial := []privacy.Status{privacy.StatusPartial}
	if diff := cmp.Diff(wantPartial, ids(e.list(privacy.RequestFilter{Statuses: partial, After: third.Cursor()})), cmpopts.EquateEmpty()); diff != "" {
		e.Errorf("List of partial requests After the third request (-want +got):\n%s", diff)
	}
	last := e.list(privacy.RequestFilter{})[len(all)-1]
	if got := e.list(privacy.RequestFilter{After: last.Cursor()}); len(got) != 0 {
		e.Errorf("List After the last request yielded %v, want nothing", ids(got))
	}
}

func rsListStops(e *rsEnv) {
	for i := range 3 {
		e.create(e.req(privacy.KindExport, newUserID(), privacy.StatusPending, i))
	}
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.s.List(e.ctx, privacy.RequestFilter{})(func(privacy.Request, error) bool {
			calls++
			return false
		})
	}()
	select {
	case <-done:
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("List did not return within %v after the consumer stopped", e.cfg.blockTimeout)
	}
	if calls != 1 {
		e.Errorf("yield was called %d times after returning false on the first call; want 1", calls)
	}
	// The store is still usable after an abandoned List.
	if got := e.list(privacy.RequestFilter{}); len(got) != 3 {
		e.Errorf("List after an abandoned List yielded %d requests; want 3", len(got))
	}
}

func rsCancelled(e *rsEnv) {
	r := e.create(e.req(privacy.KindErasure, newUserID(), privacy.StatusPending, 0))
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.s.Get(ctx, r.ID); !errors.Is(err, context.Canceled) {
		e.Errorf("Get returned %v; want context.Canceled", err)
	}
	other := e.req(privacy.KindExport, newUserID(), privacy.StatusPending, 1)
	if err := e.s.Create(ctx, other); !errors.Is(err, context.Canceled) {
		e.Errorf("Create returned %v; want context.Canceled", err)
	}
	upd := r
	upd.Status = privacy.StatusCompleted
	if err := e.s.Update(ctx, upd); !errors.Is(err, context.Canceled) {
		e.Errorf("Update returned %v; want context.Canceled", err)
	}
	var listErr error
	for _, err := range e.s.List(ctx, privacy.RequestFilter{}) {
		if err != nil {
			listErr = err
			break
		}
	}
	if !errors.Is(listErr, context.Canceled) {
		e.Errorf("List yielded error %v; want context.Canceled", listErr)
	}
	if _, err := e.s.Get(e.ctx, other.ID); !errors.Is(err, privacy.ErrRequestNotFound) {
		e.Errorf("Create with a cancelled context stored the request (Get returned %v)", err)
	}
	e.check("Get after an Update with a cancelled context", r, e.get(r.ID))
}
