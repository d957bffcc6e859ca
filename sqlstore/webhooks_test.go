package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/clerkadapter/storetest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// The ports are defined by clerkadapter with standard types only, so
// sqlstore implements them without importing it; the assertions live
// here, where importing it costs nothing.
var (
	_ clerkadapter.ReplayStore     = (*sqlstore.WebhookMessages)(nil)
	_ clerkadapter.InvalidationLog = (*sqlstore.RoleInvalidations)(nil)
)

// parallelDialects runs f for SQLite and, when STEWARD_TEST_POSTGRES_DSN is
// set, PostgreSQL, in parallel.
func parallelDialects(t *testing.T, f func(t *testing.T, d sqlstore.Dialect)) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			if d == sqlstore.Postgres && os.Getenv(sqltest.PostgresDSNEnv) == "" {
				t.Skipf("set %s to run", sqltest.PostgresDSNEnv)
			}
			f(t, d)
		})
	}
}

func TestWebhookMessagesConformance(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		storetest.RunReplayConformance(t, func(t *testing.T) storetest.ReplayHarness {
			a, b := twoProcesses(t, d)
			return storetest.ReplayHarness{Store: a.WebhookMessages(), Peer: b.WebhookMessages(), TTL: 300 * time.Millisecond, Wait: time.Sleep}
		})
	})
}

func TestRoleInvalidationsConformance(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		storetest.RunInvalidationConformance(t, func(t *testing.T) storetest.InvalidationHarness {
			a, b := twoProcesses(t, d)
			return storetest.InvalidationHarness{Log: a.RoleInvalidations(), Peer: b.RoleInvalidations(), TTL: 300 * time.Millisecond, Wait: time.Sleep}
		})
	})
}

func count(t *testing.T, s *sqlstore.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExpiredRowsAreSweptInBatches: 250 expired rows go within three new
// records, at most 100 per record, so neither table grows with traffic.
func TestExpiredRowsAreSweptInBatches(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		s := migrated(t, d)
		ctx := t.Context()
		msgs, invs := s.WebhookMessages(), s.RoleInvalidations()
		// 250 rows that expired long ago, written directly: recording them
		// through the stores would sweep them as they go.
		past := any(int64(1000))
		if d == sqlstore.Postgres {
			past = time.Unix(1, 0).UTC()
		}
		for i := range 250 {
			for _, q := range []string{
				`INSERT INTO steward_webhook_messages (id, expires) VALUES (?, ?)`,
				`INSERT INTO steward_role_invalidations (user_id, expires) VALUES (?, ?)`,
			} {
				if _, err := s.DB().ExecContext(ctx, d.Rebind(q), fmt.Sprintf("old_%03d", i), past); err != nil {
					t.Fatal(err)
				}
			}
		}
		var got []int
		for _, id := range []string{"msg_new_1", "msg_new_2", "msg_new_3"} {
			if _, err := msgs.SeenMessage(ctx, id, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := invs.Invalidate(ctx, "user_new", time.Hour); err != nil {
				t.Fatal(err)
			}
			got = append(got, count(t, s, "steward_webhook_messages"), count(t, s, "steward_role_invalidations"))
		}
		// Each new row deletes up to 100 expired ones: 250 → 151, 52, 3.
		want := []int{151, 151, 52, 52, 3, 3}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rows of steward_webhook_messages and steward_role_invalidations after each new one (-want +got):\n%s", diff)
		}
	})
}

// webhookProcess is one replica's webhook handler over its own pool.
type webhookProcess struct {
	store *sqlstore.Store
	h     *clerkadapter.WebhookHandler
}

func deliver(h http.Handler, srv *clerktest.Server, msgID string, ts time.Time, payload []byte) int {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(payload))
	r.Header = srv.SignWebhook(msgID, ts, payload)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code
}

// TestWebhookReplayAcrossProcesses: two handlers, each on its own pool to
// one SQLite file or one PostgreSQL schema, are given the same signed
// message at once: it is processed once, and the other answers 409 while
// the handling is under way; a redelivery after it is acknowledged (200,
// a duplicate) without processing it again. Once
// its record has expired by the database's clock, the replay is still
// refused, by the timestamp tolerance. With one process's database
// unreachable, it answers 503 and processes nothing; the other then
// processes the message.
func TestWebhookReplayAcrossProcesses(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		srv := clerktest.NewServer()
		defer srv.Close()
		u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "user"}})
		const tolerance = 2 * time.Second
		var processed atomic.Int32
		// gate holds a handling until the other delivery has answered.
		var gate atomic.Pointer[chan struct{}]
		open := make(chan struct{})
		close(open)
		gate.Store(&open)
		a, b := twoProcesses(t, d)
		var procs []webhookProcess
		for _, s := range []*sqlstore.Store{a, b} {
			h, err := clerkadapter.NewWebhookHandler(srv.WebhookSecret(), &clerkadapter.WebhookOptions{
				OnUserDeleted: func(context.Context, clerkadapter.UserEvent) error {
					processed.Add(1)
					select {
					case <-*gate.Load():
					case <-time.After(5 * time.Second):
					}
					return nil
				},
				Replay:    s.WebhookMessages(),
				Tolerance: tolerance,
			})
			if err != nil {
				t.Fatal(err)
			}
			procs = append(procs, webhookProcess{store: s, h: h})
		}
		payload, err := srv.UserEventPayload("user.deleted", u.ID)
		if err != nil {
			t.Fatal(err)
		}

		for round := range 3 {
			processed.Store(0)
			ts := time.Now()
			msgID := "msg_both_" + string(rune('a'+round))
			codes := make([]int, len(procs))
			held := make(chan struct{})
			gate.Store(&held)
			var (
				wg      sync.WaitGroup
				release sync.Once
			)
			for i, p := range procs {
				wg.Go(func() {
					codes[i] = deliver(p.h, srv, msgID, ts, payload)
					release.Do(func() { close(held) })
				})
			}
			wg.Wait()
			gate.Store(&open)
			ok, conflict := 0, 0
			for _, c := range codes {
				switch c {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					conflict++
				}
			}
			if ok != 1 || conflict != 1 || processed.Load() != 1 {
				t.Errorf("round %d: answers %v, processed %d times; want one 200, one 409, processed once", round, codes, processed.Load())
			}
			for _, p := range procs {
				if code := deliver(p.h, srv, msgID, ts, payload); code != http.StatusOK {
					t.Errorf("round %d: redelivery of the handled message: %d, want 200", round, code)
				}
			}
			if n := processed.Load(); n != 1 {
				t.Errorf("round %d: processed %d times after the redeliveries, want once", round, n)
			}
		}

		// After the record's expiry: refused by the timestamp.
		ts := time.Now()
		if code := deliver(procs[0].h, srv, "msg_late", ts, payload); code != http.StatusOK {
			t.Fatalf("first delivery: %d", code)
		}
		// The ID is kept until ts leaves the tolerance, plus the tolerance
		// again; svix-timestamp has whole seconds.
		time.Sleep(time.Until(ts.Truncate(time.Second).Add(2*tolerance + 300*time.Millisecond)))
		processed.Store(0)
		if code := deliver(procs[1].h, srv, "msg_late", ts, payload); code != http.StatusBadRequest || processed.Load() != 0 {
			t.Errorf("replay after the record expired: status %d, processed %d; want 400 (stale timestamp), not processed", code, processed.Load())
		}
		if seen, err := b.WebhookMessages().SeenMessage(t.Context(), "msg_late", time.Minute); err != nil || seen {
			t.Errorf("SeenMessage of the expired ID = %v, %v; want it expired by the database's clock", seen, err)
		}

		// One process's database unreachable: 503, not processed.
		if err := b.DB().Close(); err != nil {
			t.Fatal(err)
		}
		ts = time.Now()
		if code := deliver(procs[1].h, srv, "msg_down", ts, payload); code != http.StatusServiceUnavailable || processed.Load() != 0 {
			t.Errorf("with the database unreachable: status %d, processed %d; want 503, not processed", code, processed.Load())
		}
		if code := deliver(procs[0].h, srv, "msg_down", ts, payload); code != http.StatusOK || processed.Load() != 1 {
			t.Errorf("Svix's redelivery to the other process: status %d, processed %d; want 200, processed once", code, processed.Load())
		}
	})
}

// rolesProcess is one replica's LiveRoles and SessionAuth over its own
// pool, with the errors its OnError heard.
type rolesProcess struct {
	roles *clerkadapter.LiveRoles
	auth  *clerkadapter.SessionAuth
	mu    sync.Mutex
	errs  []error
}

func (p *rolesProcess) errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

func newRolesProcess(srv *clerktest.Server, s *sqlstore.Store, poll time.Duration) *rolesProcess {
	p := &rolesProcess{}
	prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(1))
	p.roles = clerkadapter.NewLiveRoles(prov, &clerkadapter.LiveRolesOptions{
		TTL: time.Hour, Invalidations: s.RoleInvalidations(), PollInterval: poll,
		OnError: func(err error) { p.mu.Lock(); p.errs = append(p.errs, err); p.mu.Unlock() },
	})
	p.auth = clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{Roles: p.roles})
	return p
}

// principal authenticates a request of userID through p.
func (p *rolesProcess) principal(srv *clerktest.Server, userID string) (steward.User, bool) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+srv.SessionToken(userID))
	pr, err := p.auth.Authenticate(r)
	if err != nil {
		return steward.User{}, false
	}
	return steward.User{ID: pr.UserID, Banned: pr.Banned, PublicMetadata: map[string]any{"role": string(pr.Role)}}, true
}

// eventually polls cond until it holds or ten seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLiveRolesAcrossProcesses: two LiveRoles, each on its own pool to one
// SQLite file or one PostgreSQL schema, with an hour's TTL. A role change
// invalidated in one, and a ban delivered by webhook to one, reach the
// other through RoleInvalidations within its polling (20 ms here). With
// its database unreachable a process keeps authenticating from its cache,
// reports the error to OnError, and sees changes once the TTL runs out.
func TestLiveRolesAcrossProcesses(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		srv := clerktest.NewServer()
		defer srv.Close()
		ctx := t.Context()
		u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "user"}})
		sa, sb := twoProcesses(t, d)
		a, b := newRolesProcess(srv, sa, 20*time.Millisecond), newRolesProcess(srv, sb, 20*time.Millisecond)

		// Deterministic first: nothing moves in b until it polls.
		if _, err := b.roles.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if got, ok := b.principal(srv, u.ID); !ok || got.PublicMetadata["role"] != "user" {
			t.Fatalf("principal %+v (present %v), want role user", got, ok)
		}
		srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.PublicMetadata["role"] = "admin"; return x }())
		if err := a.roles.InvalidateContext(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.principal(srv, u.ID); got.PublicMetadata["role"] != "user" {
			t.Errorf("role %v in b before it polled, want its cached user", got.PublicMetadata["role"])
		}
		if n, err := b.roles.Poll(ctx); err != nil || n != 1 {
			t.Errorf("b's Poll = %d, %v; want the one invalidation a recorded", n, err)
		}
		if got, _ := b.principal(srv, u.ID); got.PublicMetadata["role"] != "admin" {
			t.Errorf("role %v in b after it polled, want admin", got.PublicMetadata["role"])
		}

		// Then with Run, and the change arriving by webhook at a alone.
		runCtx, stop := context.WithCancel(ctx)
		var runs sync.WaitGroup
		for _, p := range []*rolesProcess{a, b} {
			runs.Go(func() { _ = p.roles.Run(runCtx) })
		}
		hook, err := clerkadapter.NewWebhookHandler(srv.WebhookSecret(), &clerkadapter.WebhookOptions{Roles: a.auth, Replay: sa.WebhookMessages()})
		if err != nil {
			t.Fatal(err)
		}
		srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.Banned = true; return x }())
		payload, _ := srv.UserEventPayload("user.updated", u.ID)
		if code := deliver(hook, srv, "msg_ban", time.Now(), payload); code != http.StatusOK {
			t.Fatalf("user.updated delivery: %d", code)
		}
		eventually(t, "the ban delivered to a reaching b", func() bool {
			got, ok := b.principal(srv, u.ID)
			return ok && got.Banned
		})
		stop()
		runs.Wait()
		if errs := append(a.errors(), b.errors()...); len(errs) != 0 {
			t.Errorf("OnError heard %v while the database answered", errs)
		}

		// b's database unreachable: authentication goes on from the cache.
		if err := sb.DB().Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.roles.Poll(ctx); err == nil {
			t.Error("Poll with the database closed succeeded")
		}
		b.roles.Invalidate("user_other") // reported to OnError, not raised
		if errs := b.errors(); len(errs) != 1 {
			t.Errorf("OnError heard %v, want the failed record", errs)
		}
		if got, ok := b.principal(srv, u.ID); !ok || !got.Banned {
			t.Errorf("principal %+v (present %v) with the database down: want the cached, banned account", got, ok)
		}
	})
}

func TestRoleInvalidationErrorsHoldNoUserID(t *testing.T) {
	parallelDialects(t, func(t *testing.T, d sqlstore.Dialect) {
		s := migrated(t, d)
		if err := s.DB().Close(); err != nil {
			t.Fatal(err)
		}
		const id = "user_2abcSecretish"
		err := s.RoleInvalidations().Invalidate(t.Context(), id, time.Minute)
		if err == nil || bytes.Contains([]byte(err.Error()), []byte(id)) {
			t.Errorf("Invalidate on a closed database = %v; want an error without the user ID", err)
		}
		var target error = err
		if errors.Unwrap(target) == nil {
			t.Errorf("error %v wraps nothing; want the driver's error wrapped", err)
		}
	})
}
