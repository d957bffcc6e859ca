package consent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// flakyIdentity fails the next `fail` UpdateMetadata calls.
type flakyIdentity struct {
	steward.IdentityProvider
	fail  atomic.Int32
	calls atomic.Int32
}

func (f *flakyIdentity) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return errors.New("identity provider unavailable")
	}
	return f.IdentityProvider.UpdateMetadata(ctx, id, p)
}

type world struct {
	idp   *steward.MemoryIdentity
	flaky *flakyIdentity
	store *consent.MemoryStore
	sink  *audit.MemorySink
	log   *audit.Logger
	clock *clock
	m     *consent.Manager
}

func newWorld(t testing.TB, opts ...consent.Option) *world {
	t.Helper()
	w := &world{clock: &clock{now: t0}, store: consent.NewMemoryStore(), sink: audit.NewMemorySink()}
	w.idp = steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
	w.idp.Put(steward.User{ID: "user_alice", CreatedAt: t0.Add(-time.Hour)})
	w.flaky = &flakyIdentity{IdentityProvider: w.idp}
	var err error
	w.log, err = audit.NewLogger(w.sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	base := []consent.Option{consent.WithAudit(w.log), consent.WithNow(w.clock.Now), consent.WithRetry(time.Millisecond, 4*time.Millisecond, 3)}
	w.m, err = consent.NewManager(w.store, w.flaky, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) mirror(t *testing.T) any {
	t.Helper()
	u, err := w.idp.GetUser(context.Background(), "user_alice")
	if err != nil {
		t.Fatal(err)
	}
	return u.PublicMetadata["consent"]
}

func TestUpdateMirrorsTheGuidesShape(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true, consent.ThirdParty: true}, consent.Meta{PolicyVersion: 1, Source: "banner"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Minute)
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: false}, consent.Meta{PolicyVersion: 1}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:01:00Z"}
	if diff := cmp.Diff(want, w.mirror(t)); diff != "" {
		t.Errorf("public metadata consent (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		p    consent.Purpose
		want bool
	}{{consent.Marketing, true}, {consent.Analytics, false}, {consent.ThirdParty, false}} {
		if got, err := w.m.Allowed(ctx, "user_alice", tc.p); err != nil || got != tc.want {
			t.Errorf("Allowed(%s) = %v, %v; want %v", tc.p, got, err, tc.want)
		}
	}
	// The state before the second change is still demonstrable.
	st, err := w.m.At(ctx, "user_alice", t0.Add(30*time.Second))
	if err != nil || !st[consent.ThirdParty].Granted {
		t.Errorf("At(before withdrawal) third_party = %+v, %v", st[consent.ThirdParty], err)
	}
}

func TestUpdateAuditsWithoutRawIDs(t *testing.T) {
	w := newWorld(t)
	if _, err := w.m.Update(context.Background(), "user_alice", map[consent.Purpose]bool{consent.Analytics: true}, consent.Meta{Actor: "user_operator"}); err != nil {
		t.Fatal(err)
	}
	events := w.sink.Snapshot()
	if len(events) != 1 || events[0].Type != audit.ConsentChange {
		t.Fatalf("events = %+v", events)
	}
	if diff := cmp.Diff(map[string]any{"changes": map[string]any{"analytics": true}, "policyVersion": float64(0), "source": "api"}, normalise(t, events[0].Details)); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(events)
	for _, raw := range []string{"user_alice", "user_operator"} {
		if bytes.Contains(b, []byte(raw)) {
			t.Errorf("audit events contain the raw ID %s", raw)
		}
	}
}

func normalise(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestUpdateRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		user    string
		changes map[consent.Purpose]bool
		meta    consent.Meta
		want    error
		wantMsg string
	}{
		{"unknown purpose", "user_alice", map[consent.Purpose]bool{"newsletter": true}, consent.Meta{}, consent.ErrUnknownPurpose, `"newsletter"`},
		{"malformed purpose", "user_alice", map[consent.Purpose]bool{"News Letter": true}, consent.Meta{}, consent.ErrInvalidPurpose, `"News Letter"`},
		{"empty user ID", "", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}, steward.ErrInvalidUserID, "empty"},
		{"malformed user ID", "user'; DROP", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}, steward.ErrInvalidUserID, "character"},
		{"no changes", "user_alice", nil, consent.Meta{}, consent.ErrInvalidRecord, "no purposes"},
		{"overlong source", "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{Source: strings.Repeat("s", 65)}, consent.ErrInvalidRecord, "Source"},
		{"first unknown purpose in name order", "user_alice", map[consent.Purpose]bool{"zeta": true, "alpha": true, consent.Marketing: true}, consent.Meta{}, consent.ErrUnknownPurpose, `"alpha"`},
		{"negative policy version", "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: -1}, consent.ErrInvalidRecord, "PolicyVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.m.Update(ctx, tt.user, tt.changes, tt.meta)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Update = %v, want %v mentioning %s", err, tt.want, tt.wantMsg)
			}
		})
	}
	if n := len(w.sink.Snapshot()); n != 0 {
		t.Errorf("rejected updates wrote %d audit events", n)
	}
}

func TestPolicyVersionBelowMinimumIsNotConsent(t *testing.T) {
	w := newWorld(t, consent.WithPurpose(consent.Marketing, 3), consent.WithPurpose("product_research", 1))
	ctx := context.Background()
	_, _ = w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true, "product_research": true}, consent.Meta{PolicyVersion: 2})
	if ok, _ := w.m.Allowed(ctx, "user_alice", consent.Marketing); ok {
		t.Error("consent under policy 2 counted for a purpose requiring 3")
	}
	if ok, _ := w.m.Allowed(ctx, "user_alice", "product_research"); !ok {
		t.Error("an application purpose granted under a sufficient version is not allowed")
	}
	_, _ = w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: 3})
	if ok, _ := w.m.Allowed(ctx, "user_alice", consent.Marketing); !ok {
		t.Error("consent under the required version is not allowed")
	}
	if ok, err := w.m.Allowed(ctx, "user_alice", "unregistered"); ok || !errors.Is(err, consent.ErrUnknownPurpose) {
		t.Errorf("Allowed(unregistered) = %v, %v", ok, err)
	}
}

func TestWithdrawAll(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, _ = w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true, consent.ThirdParty: true}, consent.Meta{})
	st, err := w.m.WithdrawAll(ctx, "user_alice", consent.Meta{Source: "settings"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty} {
		if st[p].Granted {
			t.Errorf("%s still granted", p)
		}
	}
	if n := len(collect(t, w.m, "user_alice")); n != 6 {
		t.Errorf("history has %d records, want 6 (nothing overwritten)", n)
	}
}

func collect(t *testing.T, m *consent.Manager, user string) []consent.Record {
	t.Helper()
	var out []consent.Record
	for r, err := range m.History(context.Background(), user) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				p := []consent.Purpose{consent.Marketing, consent.Analytics}[g%2]
				if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{p: i%2 == 1}, consent.Meta{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(collect(t, w.m, "user_alice")); n != 80 {
		t.Errorf("%d records after 80 concurrent updates", n)
	}
	if n := len(w.sink.Snapshot()); n != 80 {
		t.Errorf("%d audit events after 80 updates", n)
	}
	if err := audit.Verify(w.sink.Events(ctx, 0)); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	// Every goroutine's last update granted its purpose; the mirror must
	// show the final state, not an older one.
	want := map[string]any{"marketing": true, "analytics": true, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}
	if diff := cmp.Diff(want, w.mirror(t)); diff != "" {
		t.Errorf("mirror (-want +got):\n%s", diff)
	}
}

func TestFailedSyncIsKeptAndRetried(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.flaky.fail.Store(1 + 3) // Update's own attempt, then a whole SyncPending round (3 tries)
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err != nil {
		t.Fatalf("a failed mirror must not fail Update: %v", err)
	}
	if got := w.mirror(t); got != nil {
		t.Fatalf("mirror written despite the failure: %v", got)
	}
	if n, _ := w.m.SyncPending(ctx); n != 0 {
		t.Fatalf("SyncPending before the retry is due synced %d", n)
	}
	w.clock.Add(time.Second)
	n, err := w.m.SyncPending(ctx)
	if n != 0 || err == nil {
		t.Fatalf("SyncPending during the outage = %d, %v; want 0 and an error", n, err)
	}
	// A later change supersedes the pending one.
	w.clock.Add(time.Second)
	w.flaky.fail.Store(1)
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Analytics: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Second)
	if n, err := w.m.SyncPending(ctx); n != 1 || err != nil {
		t.Fatalf("SyncPending after the outage = %d, %v; want 1, nil", n, err)
	}
	want := map[string]any{"marketing": true, "analytics": true, "thirdParty": false, "updatedAt": "2026-03-01T12:00:02Z"}
	if diff := cmp.Diff(want, w.mirror(t)); diff != "" {
		t.Errorf("mirror (-want +got):\n%s", diff)
	}
	if n, _ := w.m.SyncPending(ctx); n != 0 {
		t.Errorf("the outbox still held %d users", n)
	}
}

func TestSyncThroughClerkSurvives429And5xx(t *testing.T) {
	srv := clerktest.NewServer()
	defer srv.Close()
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "alice@example.com", Verified: true}}})
	// One attempt per call, so every fault reaches the Manager.
	prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(1))
	clk := &clock{now: t0}
	m, err := consent.NewManager(consent.NewMemoryStore(), prov, consent.WithNow(clk.Now), consent.WithRetry(time.Millisecond, 5*time.Millisecond, 5))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv.FailNext(1, http.StatusTooManyRequests, 0)
	srv.FailNext(2, http.StatusServiceUnavailable, 0)
	if _, err := m.Update(ctx, u.ID, map[consent.Purpose]bool{consent.Marketing: true, consent.ThirdParty: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.User(u.ID); got.PublicMetadata["consent"] != nil {
		t.Fatal("the mirror was written through a 429")
	}
	// A later change supersedes the pending one while Clerk still fails.
	clk.Add(time.Second)
	if _, err := m.Update(ctx, u.ID, map[consent.Purpose]bool{consent.ThirdParty: false}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	// The retry is due one backoff interval later; SyncPending's backoff
	// rides out the remaining 503.
	clk.Add(time.Second)
	if n, err := m.SyncPending(ctx); n != 1 || err != nil {
		t.Fatalf("SyncPending = %d, %v", n, err)
	}
	got, _ := srv.User(u.ID)
	want := map[string]any{"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:01Z"}
	if diff := cmp.Diff(want, got.PublicMetadata["consent"]); diff != "" {
		t.Errorf("Clerk public metadata consent (-want +got):\n%s", diff)
	}
	if n, err := m.SyncPending(ctx); n != 0 || err != nil {
		t.Errorf("a second SyncPending = %d, %v; want nothing left", n, err)
	}
}

// Clerk limits metadata updates to ten per user in ten seconds; Update
// records and queues the change, so it leaves a 429 to the outbox instead
// of waiting out its Retry-After with the caller, even with the adapter's
// own retries on (the default).
func TestUpdateDoesNotWaitOutARateLimit(t *testing.T) {
	srv := clerktest.NewServer()
	defer srv.Close()
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "alice@example.com", Verified: true}}})
	m, err := consent.NewManager(consent.NewMemoryStore(), clerkadapter.New(srv.ClientConfig()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv.FailNext(1, http.StatusTooManyRequests, 30*time.Second)
	start := time.Now()
	if _, err := m.Update(ctx, u.ID, map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Update took %v through a 429 with Retry-After 30s; want it to leave the sync to the outbox", d)
	}
	if ok, err := m.Allowed(ctx, u.ID, consent.Marketing); err != nil || !ok {
		t.Errorf("Allowed after the Update = %v, %v; want the change recorded", ok, err)
	}
	if got, _ := srv.User(u.ID); got.PublicMetadata["consent"] != nil {
		t.Errorf("the mirror was written through a 429")
	}
}

// Instances' clocks disagree by seconds; the change recorded last must
// decide, whichever instance recorded it.
func TestLaterChangeWinsOverSkewedClocks(t *testing.T) {
	tests := []struct {
		name string
		skew time.Duration // of the instance recording the withdrawal
	}{
		{"withdrawing instance behind", -5 * time.Second},
		{"withdrawing instance ahead", 5 * time.Second},
		{"same clock", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			skewed := func() time.Time { return w.clock.Now().Add(tt.skew) }
			other, err := consent.NewManager(w.store, w.idp, consent.WithAudit(w.log), consent.WithNow(skewed))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: 1}); err != nil {
				t.Fatal(err)
			}
			w.clock.Add(time.Second)
			if _, err := other.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: false}, consent.Meta{PolicyVersion: 1}); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for name, m := range map[string]*consent.Manager{"first": w.m, "second": other} {
				ok, err := m.Allowed(ctx, "user_alice", consent.Marketing)
				if err != nil {
					t.Fatal(err)
				}
				got[name] = ok
			}
			if diff := cmp.Diff(map[string]bool{"first": false, "second": false}, got); diff != "" {
				t.Errorf("marketing allowed after the later withdrawal (-want +got):\n%s", diff)
			}
			hist := collect(t, w.m, "user_alice")
			if len(hist) != 2 || !hist[1].Time.After(hist[0].Time) {
				t.Errorf("history times not increasing: %v", hist)
			}
		})
	}
}
