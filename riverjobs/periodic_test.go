package riverjobs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
)

// expiries counts passes of the export-expiry duty.
type expiries struct {
	mu    sync.Mutex
	times []time.Time
}

func (e *expiries) ExpireExports(context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.times = append(e.times, time.Now())
	return 0, nil
}

func (e *expiries) passes() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.times...)
}

// TestPeriodicJobs works each periodic kind once with rivertest: the
// Requests sweep enqueues a job for a request left pending, and consent
// sync, retention, audit forwarding and export expiry each make their
// Runner task's pass.
func TestPeriodicJobs(t *testing.T) {
	db, _ := pgDB(t)
	ctx := t.Context()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	idp := users("user_1", "user_2")
	consents, err := consent.NewManager(store.Consent(), idp)
	if err != nil {
		t.Fatal(err)
	}
	logs := &retention.MemoryTarget{}
	logs.Add(retention.Row{Subject: "user_1", Time: time.Now().AddDate(-1, 0, 0)})
	engine, err := retention.NewEngine([]retention.Policy{{Name: "activity_logs", Target: logs, MaxAge: 24 * time.Hour, Action: retention.Delete}},
		retention.WithLease(store.Leases(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey("k1", bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	collector := audit.NewMemorySink()
	fwd, err := audit.NewForwarder(store.AuditSink(), collector, store.AuditCursors(), "collector")
	if err != nil {
		t.Fatal(err)
	}
	exp := &expiries{}
	e := envOn(t, db, idp, []background.Option{background.WithConsent(consents), background.WithRetention(engine),
		background.WithForwarders(fwd), background.WithExportExpiry(exp)}, privacy.WithResumeAfter(0), privacy.WithAudit(log))

	// A request created without its job (a store without the hook).
	plain, err := privacy.NewService(idp, privacy.WithRequestStore(store.Requests()))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := plain.QueueErasure(ctx, "user_2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consents.Update(ctx, "user_1", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if err := log.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_1", Actor: "user_1"}); err != nil {
		t.Fatal(err)
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	j := e.jobs
	task := func(name string) background.Task { return j.tasks[name] }
	for _, c := range []struct {
		name string
		run  func() river.EventKind
	}{
		{KindRequests, func() river.EventKind {
			return work(t, e, &sweepWorker{j: j, svc: e.svc, task: task("requests")}, RequestsArgs{}, nil).EventKind
		}},
		{KindConsentSync, func() river.EventKind {
			return work(t, e, &taskWorker[ConsentSyncArgs]{j: j, task: task("consent_sync")}, ConsentSyncArgs{}, nil).EventKind
		}},
		{KindRetention, func() river.EventKind {
			return work(t, e, &taskWorker[RetentionArgs]{j: j, task: task("retention")}, RetentionArgs{}, nil).EventKind
		}},
		{KindAuditForward, func() river.EventKind {
			return work(t, e, &forwardWorker{j: j}, AuditForwardArgs{Destination: "collector"}, nil).EventKind
		}},
		{KindExportExpiry, func() river.EventKind {
			return work(t, e, &taskWorker[ExportExpiryArgs]{j: j, task: task("export_expiry")}, ExportExpiryArgs{}, nil).EventKind
		}},
	} {
		if got := c.run(); got != river.EventKindJobCompleted {
			t.Errorf("%s: %s, want completed", c.name, got)
		}
	}
	var erasureJobs int
	for _, row := range jobRows(t, db) {
		if strings.HasPrefix(row, KindErasure+" available") && strings.Contains(row, orphan) {
			erasureJobs++
		}
	}
	u, _ := idp.GetUser(ctx, "user_1")
	mirror, _ := u.PublicMetadata[consent.MetadataKey].(map[string]any)
	last, _ := collector.Last(ctx)
	type effect struct {
		OrphanJobs, LogsLeft, Expiries int
		Mirrored, Forwarded            bool
	}
	want := effect{OrphanJobs: 1, LogsLeft: 0, Expiries: 1, Mirrored: true, Forwarded: true}
	if diff := cmp.Diff(want, effect{erasureJobs, len(logs.Rows()), len(exp.passes()), mirror["marketing"] == true, last.Sequence > 0}); diff != "" {
		t.Errorf("effects of the periodic jobs (-want +got):\n%s", diff)
	}
	if got := work(t, e, &forwardWorker{j: j}, AuditForwardArgs{Destination: "elsewhere"}, nil).EventKind; got != river.EventKindJobCancelled {
		t.Errorf("forwarding to an unknown destination: %s, want cancelled", got)
	}

	var ids []string
	for _, tk := range j.runner.Tasks() {
		ids = append(ids, "steward."+tk.Name)
	}
	if diff := cmp.Diff([]string{"steward.requests", "steward.consent_sync", "steward.retention", "steward.audit_forward/collector", "steward.export_expiry"}, ids); diff != "" {
		t.Errorf("periodic job IDs (-want +got):\n%s", diff)
	}
	if n := len(j.PeriodicJobs()); n != 5 {
		t.Errorf("%d periodic jobs, want 5", n)
	}
}

// TestSweepOncePerPeriodWithThreeClients: three River clients share one
// database; the export-expiry sweep, every second, runs once per period
// however many clients there are.
func TestSweepOncePerPeriodWithThreeClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three River clients for several seconds")
	}
	db, schema := pgDB(t)
	pool := pgPool(t, schema)
	exp := &expiries{}
	runner, err := background.New(background.WithExportExpiry(exp), background.WithInterval(background.ExportExpiry, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := New(runner, db)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		startClient(t, pool, jobs, nil)
	}
	waitFor(t, "the first sweep", func() bool { return len(exp.passes()) > 0 })
	time.Sleep(5500 * time.Millisecond)
	passes := exp.passes()
	span := passes[len(passes)-1].Sub(passes[0])
	periods := int(span/time.Second) + 1
	if len(passes) > periods+1 || len(passes) < 4 {
		t.Errorf("%d sweeps over %v with three clients, want one per second (about %d)", len(passes), span.Round(time.Millisecond), periods)
	}
	for i := 1; i < len(passes); i++ {
		if gap := passes[i].Sub(passes[i-1]); gap < 500*time.Millisecond {
			t.Errorf("sweeps %d and %d only %v apart: two in one period", i-1, i, gap)
		}
	}
}

// The crash test re-executes the test binary as a worker process that
// starts an erasure and hangs in its first step until it is killed.
const crashChildEnv = "RIVERJOBS_CRASH_CHILD_SCHEMA"

func TestMain(m *testing.M) {
	if schema := os.Getenv(crashChildEnv); schema != "" {
		crashChild(schema)
		return
	}
	os.Exit(m.Run())
}

// crashChild works Steward's jobs with a data store that hangs.
func crashChild(schema string) {
	t := childT{}
	db := openSchema(t, schema)
	store, _ := sqlstore.New(db, sqlstore.Postgres)
	fx := effects{db}
	svc, err := privacy.NewService(&recordingIDP{MemoryIdentity: users("user_crash"), fx: fx},
		privacy.WithRequestStore(store.Requests().OnCreate(EnqueueTx)), privacy.WithStores(recordingStore{fx: fx, block: true}),
		privacy.WithClaimTTL(time.Second))
	if err != nil {
		panic(err)
	}
	runner, _ := background.New(background.WithPrivacy(svc))
	jobs, err := New(runner, db, WithErasureTimeout(time.Second))
	if err != nil {
		panic(err)
	}
	startClient(t, pgPool(t, schema), jobs, nil)
	select {} // until SIGKILL
}

// TestCrashMidJobIsRescued: a worker process is killed in the middle of
// an erasure job; River's rescuer gives the job back, another client
// finishes it, and the erasure is done once.
func TestCrashMidJobIsRescued(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a worker process")
	}
	db, schema := pgDB(t)
	fx := effects{db}
	idp := &recordingIDP{MemoryIdentity: users("user_crash"), fx: fx}
	store, _ := sqlstore.New(db, sqlstore.Postgres)
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey("k1", bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := envOn(t, db, idp, nil, privacy.WithClaimTTL(time.Second), privacy.WithAudit(log))
	if e.jobs, err = New(e.jobs.runner, db, WithErasureTimeout(time.Second)); err != nil {
		t.Fatal(err)
	}
	id, err := e.svc.QueueErasure(t.Context(), "user_crash")
	if err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"="+schema)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker process to start the erasure", func() bool { return fx.count(t, "app:user_crash") > 0 })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if fx.count(t, "identity:user_crash") != 0 {
		t.Fatalf("the killed worker got past its hanging step:\n%s", out.String())
	}

	// River's rescuer looks when this client is elected leader (once the
	// killed process's leadership lapses) and every 30 s after.
	time.Sleep(2 * time.Second)
	startClient(t, pgPool(t, schema), e.jobs, func(c *river.Config) {
		c.JobTimeout = time.Second
		c.RescueStuckJobsAfter = 1500 * time.Millisecond
	})
	waitFor(t, "the rescued erasure to complete", func() bool { return e.status(t, id) == privacy.StatusCompleted })
	waitFor(t, "the job to complete", func() bool {
		var erasures []string
		for _, r := range jobRows(t, db) {
			if strings.HasPrefix(r, KindErasure+" ") {
				erasures = append(erasures, r)
			}
		}
		return len(erasures) == 1 && strings.HasPrefix(erasures[0], KindErasure+" completed")
	}, func() string { return strings.Join(jobRows(t, db), "\n") })
	var attempt int
	if err := db.QueryRow(`SELECT attempt FROM river_job WHERE kind = $1`, KindErasure).Scan(&attempt); err != nil {
		t.Fatal(err)
	}
	var completions int
	if err := db.QueryRow(`SELECT count(*) FROM steward_audit_events WHERE event_type = 'data_deletion' AND details LIKE '%"completed"%'`).Scan(&completions); err != nil {
		t.Fatal(err)
	}
	type once struct{ IdentityDeletes, CompletionEvents, Attempts int }
	if diff := cmp.Diff(once{1, 1, 2}, once{fx.count(t, "identity:user_crash"), completions, attempt}); diff != "" {
		t.Errorf("after the rescue (-want +got):\n%s", diff)
	}
}

// childT is the worker process's tb: it panics on failure.
type childT struct{}

func (childT) Helper()           {}
func (childT) Cleanup(func())    {}
func (childT) Fatal(args ...any) { panic(args) }
