package background_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

// world is one application's duties over in-memory stores.
type world struct {
	idp       *steward.MemoryIdentity
	svc       *privacy.Service
	requests  *privacy.MemoryRequestStore
	consents  *consent.Manager
	engine    *retention.Engine
	logs      *retention.MemoryTarget
	events    *audit.MemorySink
	collector *audit.MemorySink
	forwarder *audit.Forwarder
	log       *audit.Logger
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{idp: steward.NewMemoryIdentity(), requests: privacy.NewMemoryRequestStore(), logs: &retention.MemoryTarget{},
		events: audit.NewMemorySink(), collector: audit.NewMemorySink()}
	for i := range 3 {
		w.idp.Put(steward.User{ID: fmt.Sprintf("user_%d", i), CreatedAt: time.Now()})
	}
	var err error
	if w.log, err = audit.NewLogger(w.events, audit.WithKey("k1", bytes.Repeat([]byte{1}, 32))); err != nil {
		t.Fatal(err)
	}
	if w.svc, err = privacy.NewService(w.idp, privacy.WithRequestStore(w.requests), privacy.WithAudit(w.log), privacy.WithResumeAfter(0)); err != nil {
		t.Fatal(err)
	}
	if w.consents, err = consent.NewManager(consent.NewMemoryStore(), w.idp); err != nil {
		t.Fatal(err)
	}
	w.logs.Add(retention.Row{Subject: "user_1", Time: time.Now().AddDate(-1, 0, 0)}, retention.Row{Subject: "user_2", Time: time.Now()})
	if w.engine, err = retention.NewEngine([]retention.Policy{{Name: "activity_logs", Target: w.logs, MaxAge: 90 * 24 * time.Hour, Action: retention.Delete}},
		retention.WithLease(steward.NewMemoryLeases(nil), time.Second)); err != nil {
		t.Fatal(err)
	}
	if w.forwarder, err = audit.NewForwarder(w.events, w.collector, audit.NewMemoryCursors(nil), "collector"); err != nil {
		t.Fatal(err)
	}
	return w
}

// expirer counts passes of the export-expiry duty.
type expirer struct{ passes atomic.Int64 }

func (e *expirer) ExpireExports(context.Context) (int, error) { e.passes.Add(1); return 0, nil }

func (w *world) runner(t *testing.T, exp background.ExportExpirer, opts ...background.Option) *background.Runner {
	t.Helper()
	base := []background.Option{
		background.WithPrivacy(w.svc), background.WithConsent(w.consents), background.WithRetention(w.engine),
		background.WithForwarders(w.forwarder), background.WithExportExpiry(exp),
	}
	for _, d := range []background.Duty{background.Requests, background.ConsentSync, background.Retention, background.AuditForward, background.ExportExpiry} {
		base = append(base, background.WithInterval(d, 5*time.Millisecond))
	}
	r, err := background.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunDoesEveryDuty: the embedded engine resumes a queued erasure,
// mirrors a consent change, purges expired records, forwards the audit
// chain and expires exports, each on its own schedule, and stops when
// its context ends.
func TestRunDoesEveryDuty(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, err := w.svc.QueueErasure(ctx, "user_0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.consents.Update(ctx, "user_1", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: 1, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	exp := &expirer{}
	var failures []error
	var mu sync.Mutex
	r := w.runner(t, exp, background.WithErrorHandler(func(d background.Duty, err error) {
		mu.Lock()
		failures = append(failures, fmt.Errorf("%s: %w", d, err))
		mu.Unlock()
	}))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()

	deadline := time.Now().Add(10 * time.Second)
	type state struct {
		Erasure   privacy.Status
		Mirrored  bool
		LogsLeft  int
		Forwarded bool
		Expiries  bool
	}
	want := state{privacy.StatusCompleted, true, 1, true, true}
	var got state
	for time.Now().Before(deadline) {
		req, _ := w.svc.Request(ctx, id)
		u, _ := w.idp.GetUser(ctx, "user_1")
		mirror, _ := u.PublicMetadata[consent.MetadataKey].(map[string]any)
		last, _ := w.events.Last(ctx)
		fwd, _ := w.collector.Last(ctx)
		got = state{req.Status, mirror["marketing"] == true, len(w.logs.Rows()), last.Sequence > 0 && fwd.Sequence == last.Sequence, exp.passes.Load() > 1}
		if got == want {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after running (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("failed passes: %v", failures)
	}
}

// TestTwoRunnersEraseOnce: two Runners over one request store (two
// instances of the application) drive each queued erasure once.
func TestTwoRunnersEraseOnce(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	counter := &countingIDP{MemoryIdentity: w.idp}
	second, err := privacy.NewService(counter, privacy.WithRequestStore(w.requests), privacy.WithResumeAfter(0))
	if err != nil {
		t.Fatal(err)
	}
	first, err := privacy.NewService(counter, privacy.WithRequestStore(w.requests), privacy.WithResumeAfter(0))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		id, err := first.QueueErasure(ctx, fmt.Sprintf("user_%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, svc := range []*privacy.Service{first, second} {
		r, err := background.New(background.WithPrivacy(svc), background.WithInterval(background.Requests, time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = r.Run(rctx) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, id := range ids {
			if req, _ := first.Request(ctx, id); req.Status == privacy.StatusCompleted {
				n++
			}
		}
		if n == len(ids) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if diff := cmp.Diff(map[string]int{"user_0": 1, "user_1": 1, "user_2": 1}, counter.counts()); diff != "" {
		t.Errorf("identity deletions per user (-want +got):\n%s", diff)
	}
}

type countingIDP struct {
	*steward.MemoryIdentity
	mu sync.Mutex
	n  map[string]int
}

func (c *countingIDP) DeleteUser(ctx context.Context, id string) error {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
	c.mu.Unlock()
	return c.MemoryIdentity.DeleteUser(ctx, id)
}

func (c *countingIDP) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestTasks lists what the Runner owns, in its fixed order, with the
// defaults and the options applied.
func TestTasks(t *testing.T) {
	w := newWorld(t)
	r, err := background.New(background.WithForwarders(w.forwarder), background.WithPrivacy(w.svc), background.WithConsent(w.consents),
		background.WithRetention(w.engine), background.WithExportExpiry(&expirer{}), background.WithInterval(background.Retention, 24*time.Hour),
		background.WithTimeout(background.ConsentSync, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	type task struct {
		Duty           background.Duty
		Name           string
		Every, Timeout time.Duration
	}
	var got []task
	for _, tk := range r.Tasks() {
		got = append(got, task{tk.Duty, tk.Name, tk.Every, tk.Timeout})
	}
	want := []task{
		{background.Requests, "requests", background.DefaultRequestsInterval, background.DefaultRequestsTimeout},
		{background.ConsentSync, "consent_sync", background.DefaultConsentSyncInterval, time.Minute},
		{background.Retention, "retention", 24 * time.Hour, background.DefaultRetentionTimeout},
		{background.AuditForward, "audit_forward/collector", background.DefaultAuditForwardInterval, background.DefaultAuditForwardTimeout},
		{background.ExportExpiry, "export_expiry", background.DefaultExportExpiryInterval, background.DefaultExportExpiryTimeout},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tasks (-want +got):\n%s", diff)
	}
	if r.Privacy() != w.svc {
		t.Error("Privacy() is not the Service given to WithPrivacy")
	}
}

func TestNewValidates(t *testing.T) {
	w := newWorld(t)
	other, err := audit.NewForwarder(w.events, w.collector, audit.NewMemoryCursors(nil), "collector")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []background.Option
	}{
		{"no duty", nil},
		{"a nil service", []background.Option{background.WithPrivacy(nil)}},
		{"a nil manager", []background.Option{background.WithConsent(nil)}},
		{"a nil engine", []background.Option{background.WithRetention(nil)}},
		{"a nil forwarder", []background.Option{background.WithForwarders(nil)}},
		{"a nil expirer", []background.Option{background.WithExportExpiry(nil)}},
		{"two forwarders to one destination", []background.Option{background.WithForwarders(w.forwarder, other)}},
		{"an unknown duty", []background.Option{background.WithPrivacy(w.svc), background.WithInterval("mail", time.Second)}},
		{"an interval under a millisecond", []background.Option{background.WithPrivacy(w.svc), background.WithInterval(background.Requests, 0)}},
		{"a timeout under a millisecond", []background.Option{background.WithPrivacy(w.svc), background.WithTimeout(background.Requests, 0)}},
		{"a nil error handler", []background.Option{background.WithPrivacy(w.svc), background.WithErrorHandler(nil)}},
		{"a nil logger", []background.Option{background.WithPrivacy(w.svc), background.WithLogger(nil)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := background.New(c.opts...); !errors.Is(err, background.ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestOrdinaryOutcomesAreNotErrors: a retention run that finds another
// instance holding the lease, and a forwarder that finds the cursor
// held, report nothing; a real failure is reported.
func TestOrdinaryOutcomesAreNotErrors(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	leases := steward.NewMemoryLeases(nil)
	held, err := retention.NewEngine(nil, retention.WithLease(leases, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.AcquireLease(ctx, retention.LeaseName, "another instance", time.Minute); err != nil {
		t.Fatal(err)
	}
	cursors := audit.NewMemoryCursors(nil)
	if _, err := cursors.ClaimCursor(ctx, "busy", "another instance", time.Minute); err != nil {
		t.Fatal(err)
	}
	busy, err := audit.NewForwarder(w.events, w.collector, cursors, "busy")
	if err != nil {
		t.Fatal(err)
	}
	down, err := audit.NewForwarder(w.events, failingSink{}, audit.NewMemoryCursors(nil), "down")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.log.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_1", Actor: "user_1"}); err != nil {
		t.Fatal(err)
	}
	var reported []string
	r, err := background.New(background.WithRetention(held), background.WithForwarders(busy, down),
		background.WithErrorHandler(func(d background.Duty, err error) { reported = append(reported, string(d)) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range r.Tasks() {
		r.Pass(ctx, tk)
	}
	if diff := cmp.Diff([]string{"audit_forward"}, reported); diff != "" {
		t.Errorf("duties reported as failed (-want +got):\n%s", diff)
	}
}

type failingSink struct{}

func (failingSink) Write(context.Context, []audit.Event) error { return errors.New("collector down") }

// panicExpirer is an ExportExpirer with a bug.
type panicExpirer struct{ value any }

func (p panicExpirer) ExpireExports(context.Context) (int, error) { panic(p.value) }

// TestAPanickingPassIsAFailedPass: a pass that panics is reported as a
// failed pass naming its task, and the Runner (the process) goes on. A
// panic value that is not a runtime error is named by its type only, as
// it may hold a user ID.
func TestAPanickingPassIsAFailedPass(t *testing.T) {
	var nilMap map[string]int
	for _, c := range []struct {
		name  string
		value any
		want  string
	}{
		{"a runtime error is named", func() (v any) {
			defer func() { v = recover() }()
			nilMap["x"] = 1
			return nil
		}(), "background: a pass of export_expiry panicked: assignment to entry in nil map"},
		{"another value only by its type", "no row for user_123", "background: a pass of export_expiry panicked with a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			r, err := background.New(background.WithExportExpiry(panicExpirer{c.value}),
				background.WithErrorHandler(func(d background.Duty, err error) { got = append(got, string(d)+": "+err.Error()) }))
			if err != nil {
				t.Fatal(err)
			}
			r.Pass(t.Context(), r.Tasks()[0])
			if diff := cmp.Diff([]string{"export_expiry: " + c.want}, got); diff != "" {
				t.Errorf("reported (-want +got):\n%s", diff)
			}
		})
	}
}
