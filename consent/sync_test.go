package consent_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
)

func TestHistoryAndAtAcrossSeveralChanges(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	type step struct {
		changes map[consent.Purpose]bool
		meta    consent.Meta
	}
	steps := []step{
		{map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true}, consent.Meta{PolicyVersion: 1, Source: "banner"}},
		{map[consent.Purpose]bool{consent.Analytics: false}, consent.Meta{PolicyVersion: 1, Source: "settings"}},
		{map[consent.Purpose]bool{consent.ThirdParty: true}, consent.Meta{PolicyVersion: 2, Source: "settings"}},
		{map[consent.Purpose]bool{consent.Marketing: false}, consent.Meta{PolicyVersion: 2, Source: "api", Actor: "user_operator"}},
	}
	for i, s := range steps {
		if i > 0 {
			w.clock.Add(time.Hour)
		}
		if _, err := w.m.Update(ctx, "user_alice", s.changes, s.meta); err != nil {
			t.Fatal(err)
		}
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	r := func(p consent.Purpose, granted bool, version int, source, actor string, h int) consent.Record {
		return consent.Record{UserID: "user_alice", Purpose: p, Granted: granted, PolicyVersion: version, Source: source, Actor: actor, Time: at(h)}
	}
	wantHistory := []consent.Record{
		r(consent.Analytics, true, 1, "banner", "user_alice", 0), // a change's purposes in name order
		r(consent.Marketing, true, 1, "banner", "user_alice", 0),
		r(consent.Analytics, false, 1, "settings", "user_alice", 1),
		r(consent.ThirdParty, true, 2, "settings", "user_alice", 2),
		r(consent.Marketing, false, 2, "api", "user_operator", 3),
	}
	ignoreSeq := cmpopts.IgnoreFields(consent.Record{}, "Seq")
	if diff := cmp.Diff(wantHistory, collect(t, w.m, "user_alice"), ignoreSeq); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	granted := func(st consent.State) map[consent.Purpose]bool {
		out := map[consent.Purpose]bool{}
		for p, r := range st {
			out[p] = r.Granted
		}
		return out
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want map[consent.Purpose]bool
	}{
		{"before the first change nothing is decided", at(0).Add(-time.Nanosecond), map[consent.Purpose]bool{}},
		{"at the first change", at(0), map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true}},
		{"between the first and second", at(1).Add(-time.Minute), map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: true}},
		{"after analytics was withdrawn", at(1), map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: false}},
		{"after third party was granted", at(2).Add(time.Minute), map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: false, consent.ThirdParty: true}},
		{"after marketing was withdrawn", at(3), map[consent.Purpose]bool{consent.Marketing: false, consent.Analytics: false, consent.ThirdParty: true}},
		{"long after", at(1000), map[consent.Purpose]bool{consent.Marketing: false, consent.Analytics: false, consent.ThirdParty: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := w.m.At(ctx, "user_alice", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, granted(st)); diff != "" {
				t.Errorf("At (-want +got):\n%s", diff)
			}
		})
	}
	cur, err := w.m.Current(ctx, "user_alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(granted(cur), granted(mustAt(t, w.m, at(3)))); diff != "" {
		t.Errorf("Current differs from At(last change) (-current +at):\n%s", diff)
	}
}

func mustAt(t *testing.T, m *consent.Manager, at time.Time) consent.State {
	t.Helper()
	st, err := m.At(context.Background(), "user_alice", at)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// failingAudit refuses every event.
type failingAudit struct{}

func (failingAudit) Log(context.Context, audit.Event) error { return errors.New("audit sink down") }

// TestAuditSinkDownRefusesTheConsentChange: audit before effect, under
// fail-closed a change whose audit event cannot be written is not made.
func TestAuditSinkDownRefusesTheConsentChange(t *testing.T) {
	w := newWorld(t, consent.WithAudit(failingAudit{}))
	ctx := context.Background()
	_, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{})
	if err == nil || !strings.Contains(err.Error(), "nothing recorded") {
		t.Fatalf("Update = %v, want the audit failure, nothing recorded", err)
	}
	if ok, _ := w.m.Allowed(ctx, "user_alice", consent.Marketing); ok {
		t.Error("a change whose audit event was not written is allowed")
	}
	if n, err := w.m.SyncPending(ctx); n != 0 || err != nil {
		t.Fatalf("SyncPending = %d, %v; want nothing queued", n, err)
	}
	n := 0
	for _, err := range w.m.History(ctx, "user_alice") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Errorf("%d records stored although the audit event was not written", n)
	}
}

// failingStore refuses every Append.
type failingStore struct{ *consent.MemoryStore }

func (failingStore) Append(context.Context, ...consent.Record) error { return errors.New("disk full") }

func TestFailedAppendRecordsNothingAndQueuesNothing(t *testing.T) {
	mem := consent.NewMemoryStore()
	sink := audit.NewMemorySink()
	log, err := audit.NewLogger(sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	idp := &flakyIdentity{IdentityProvider: steward.NewMemoryIdentity()}
	m, err := consent.NewManager(failingStore{mem}, idp, consent.WithOutbox(mem), consent.WithAudit(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Update = %v, want the store's error", err)
	}
	if due, _ := mem.Queued(ctx, 0); len(due) != 0 {
		t.Errorf("a change that was not recorded left a pending sync: %+v", due)
	}
	// The change was audited before it was tried, then marked not
	// recorded; nothing reached the provider.
	var got []any
	for _, e := range sink.Snapshot() {
		got = append(got, e.Details["status"])
	}
	if diff := cmp.Diff([]any{nil, "not_recorded"}, got); diff != "" || idp.calls.Load() != 0 {
		t.Errorf("audit statuses of a change that was not recorded (-want +got):\n%s\n%d mirrors", diff, idp.calls.Load())
	}
}

// downIdentity fails every UpdateMetadata with err.
type downIdentity struct {
	steward.IdentityProvider
	err   error
	calls atomic.Int32
}

func (d *downIdentity) UpdateMetadata(context.Context, string, steward.MetadataPatch) error {
	d.calls.Add(1)
	return d.err
}

// temporaryError answers Temporary like clerkadapter.APIError.
type temporaryError bool

func (e temporaryError) Error() string   { return "provider refused the patch" }
func (e temporaryError) Temporary() bool { return bool(e) }

func TestAnOutageCostsOneBackoffPerRoundNotOnePerUser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int32
	}{
		// 5 users: the first gets all 3 tries, the rest 1 each.
		{"temporary errors", errors.New("connection refused"), 3 + 4},
		// Retrying cannot help: one try each.
		{"permanent errors", temporaryError(false), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			down := &downIdentity{IdentityProvider: w.idp, err: tc.err}
			m, err := consent.NewManager(w.store, down, consent.WithNow(w.clock.Now), consent.WithRetry(time.Millisecond, time.Millisecond, 3))
			if err != nil {
				t.Fatal(err)
			}
			users := []string{"user_1", "user_2", "user_3", "user_4", "user_5"}
			for _, u := range users {
				if _, err := m.Update(ctx, u, map[consent.Purpose]bool{consent.Analytics: true}, consent.Meta{}); err != nil {
					t.Fatal(err)
				}
			}
			down.calls.Store(0)
			w.clock.Add(time.Minute)
			n, err := m.SyncPending(ctx)
			if n != 0 || err == nil {
				t.Fatalf("SyncPending = %d, %v; want 0 and the failures", n, err)
			}
			if got := down.calls.Load(); got != tc.wantCalls {
				t.Errorf("the provider was called %d times in one round, want %d", got, tc.wantCalls)
			}
			due, _ := w.store.Queued(ctx, 0)
			if len(due) != len(users) {
				t.Fatalf("%d of %d users still pending", len(due), len(users))
			}
			for _, p := range due {
				if p.Attempts != 2 || p.LastErr == "" {
					t.Errorf("pending %+v: want 2 failed attempts and the last error", p)
				}
			}
		})
	}
}

func TestAnErasedUsersMirrorIsRemoved(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	if w.mirror(t) == nil {
		t.Fatal("no mirror after Update")
	}
	if _, err := w.store.Erase(ctx, "user_alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Enqueue(ctx, "user_alice", t0); err != nil {
		t.Fatal(err)
	}
	if n, err := w.m.SyncPending(ctx); n != 1 || err != nil {
		t.Fatalf("SyncPending = %d, %v", n, err)
	}
	if got := w.mirror(t); got != nil {
		t.Errorf("the mirror of a user with no records is %v, want it removed", got)
	}
}

func TestSyncOfAUserWhoIsGoneIsDone(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.m.Update(ctx, "user_bob", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	if due, _ := w.store.Queued(ctx, 0); len(due) != 0 {
		t.Errorf("a user unknown to the provider stays pending: %+v", due)
	}
}

func TestRunRetriesUntilTheMirrorIsWritten(t *testing.T) {
	w := newWorld(t, consent.WithNow(time.Now))
	w.flaky.fail.Store(5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: true}, consent.Meta{}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 100)
	done := make(chan error, 1)
	go func() {
		done <- w.m.Run(ctx, time.Millisecond, func(err error) {
			select {
			case errs <- err:
			default:
			}
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, ok := w.mirror(t).(map[string]any); ok {
			if c["thirdParty"] != true {
				t.Errorf("mirror = %v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run never wrote the mirror")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if len(errs) == 0 {
		t.Error("the failed rounds were not reported to onError")
	}
}

func TestRunRejectsANonPositiveInterval(t *testing.T) {
	w := newWorld(t)
	if err := w.m.Run(context.Background(), 0, nil); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("Run(0) = %v, want an error naming the interval", err)
	}
}
