package riverjobs

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
)

// env is a Service over PostgreSQL whose requests are created with their
// jobs, and its Jobs.
type env struct {
	db    *sql.DB
	store *sqlstore.Store
	svc   *privacy.Service
	jobs  *Jobs
	fx    effects
}

func newEnv(t *testing.T, idp steward.IdentityProvider, opts ...privacy.Option) *env {
	t.Helper()
	db, _ := pgDB(t)
	return envOn(t, db, idp, nil, opts...)
}

func envOn(t *testing.T, db *sql.DB, idp steward.IdentityProvider, runnerOpts []background.Option, opts ...privacy.Option) *env {
	t.Helper()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, store: store, fx: effects{db}}
	base := []privacy.Option{privacy.WithRequestStore(store.Requests().OnCreate(EnqueueTx)), privacy.WithRetry(fastRetry),
		privacy.WithStores(recordingStore{fx: e.fx})}
	if e.svc, err = privacy.NewService(idp, append(base, opts...)...); err != nil {
		t.Fatal(err)
	}
	runner, err := background.New(append([]background.Option{background.WithPrivacy(e.svc)}, runnerOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if e.jobs, err = New(runner, db); err != nil {
		t.Fatal(err)
	}
	return e
}

// work runs the job of args once with rivertest, in a transaction rolled
// back when t ends.
func work[T river.JobArgs](t *testing.T, e *env, w river.Worker[T], args T, opts *river.InsertOpts) *rivertest.WorkResult {
	t.Helper()
	tx, err := e.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	tw := rivertest.NewWorker(t, riverdatabasesql.New(nil), &river.Config{}, w)
	res, err := tw.Work(t.Context(), t, tx, args, opts)
	if res == nil {
		t.Fatalf("working %s: %v", args.Kind(), err)
	}
	return res // err is the job's own error, kept in res.Job.Errors
}

func (e *env) erasureWorker() *requestWorker[ErasureArgs] {
	return &requestWorker[ErasureArgs]{j: e.jobs, svc: e.svc, timeout: e.jobs.erasureTimeout}
}

func (e *env) status(t *testing.T, id string) privacy.Status {
	t.Helper()
	r, err := e.svc.Request(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// TestEnqueueInTheRequestTransaction: a request is created with its job;
// when the transaction rolls back (the hook after the job fails), neither
// the request nor the job exists.
func TestEnqueueInTheRequestTransaction(t *testing.T) {
	db, _ := pgDB(t)
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	refuse := errors.New("refused after the job was inserted")
	reqs := store.Requests().OnCreate(func(ctx context.Context, tx *sql.Tx, r privacy.Request) error {
		if err := EnqueueTx(ctx, tx, r); err != nil {
			return err
		}
		if r.UserID == "user_rolled_back" {
			return refuse
		}
		return nil
	})
	svc, err := privacy.NewService(users("user_kept", "user_rolled_back"), privacy.WithRequestStore(reqs))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := svc.QueueErasure(ctx, "user_kept")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.QueueErasure(ctx, "user_rolled_back"); !errors.Is(err, refuse) {
		t.Fatalf("QueueErasure with a failing transaction = %v, want its error", err)
	}
	var requests []string
	for r, err := range svc.NeedsAttention(ctx) {
		_ = r
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id FROM steward_privacy_requests ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		requests = append(requests, id)
	}
	rows.Close()
	if diff := cmp.Diff([]string{kept}, requests); diff != "" {
		t.Errorf("stored requests (-want +got):\n%s", diff)
	}
	want := []string{KindErasure + ` available {"request_id": "` + kept + `"}`}
	if diff := cmp.Diff(want, jobRows(t, db)); diff != "" {
		t.Errorf("River jobs (-want +got):\n%s", diff)
	}
	rivertest.RequireInserted(ctx, t, riverdatabasesql.New(db), &ErasureArgs{RequestID: kept},
		&rivertest.RequireInsertedOpts{Queue: Queue, MaxAttempts: ErasureMaxAttempts})
}

// TestDuplicateInsertDeduplicated: enqueueing a request that has a live
// job (a sweep after the transactional insert) adds no second job.
func TestDuplicateInsertDeduplicated(t *testing.T) {
	e := newEnv(t, users("user_dup"))
	ctx := t.Context()
	id, err := e.svc.QueueErasure(ctx, "user_dup")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := e.jobs.Enqueue(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := e.svc.Request(ctx, id)
	if err := EnqueueTx(ctx, tx, r); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := jobRows(t, e.db); len(got) != 1 {
		t.Errorf("jobs after enqueueing one request five times: %v, want one", got)
	}
	if err := e.jobs.Enqueue(ctx, "req_unknown"); !errors.Is(err, privacy.ErrRequestNotFound) {
		t.Errorf("Enqueue of an unknown request = %v, want ErrRequestNotFound", err)
	}
}

// TestRequestJobs works an erasure job and an export job in every
// situation with rivertest, and checks what River makes of each.
func TestRequestJobs(t *testing.T) {
	type got struct {
		Event   river.EventKind
		Status  privacy.Status
		Attempt int
	}
	t.Run("an erasure job completes the request", func(t *testing.T) {
		idp := &recordingIDP{MemoryIdentity: users("user_a")}
		e := newEnv(t, idp)
		idp.fx = e.fx
		id, _ := e.svc.QueueErasure(t.Context(), "user_a")
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		if diff := cmp.Diff(got{river.EventKindJobCompleted, privacy.StatusCompleted, 1}, got{res.EventKind, e.status(t, id), res.Job.Attempt}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if n := e.fx.count(t, "identity:user_a"); n != 1 {
			t.Errorf("identity deleted %d times, want once", n)
		}
	})
	t.Run("an export job writes the export", func(t *testing.T) {
		blobs := &memBlobs{}
		e := newEnv(t, users("user_x"), privacy.WithBlobWriter(blobs))
		now := time.Now().UTC()
		req := privacy.Request{ID: "req_export1", Kind: privacy.KindExport, UserID: "user_x", Regime: privacy.GDPR, Status: privacy.StatusPending,
			ReceivedAt: now, DueAt: now.AddDate(0, 1, 0), UpdatedAt: now, Steps: []privacy.Step{{Name: "export", Kind: privacy.StepExport, Status: privacy.StepPending}}}
		if err := e.store.Requests().OnCreate(EnqueueTx).Create(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		w := &requestWorker[ExportArgs]{j: e.jobs, svc: e.svc, timeout: e.jobs.exportTimeout}
		res := work(t, e, w, ExportArgs{RequestID: req.ID}, nil)
		if diff := cmp.Diff(got{river.EventKindJobCompleted, privacy.StatusCompleted, 1}, got{res.EventKind, e.status(t, req.ID), res.Job.Attempt}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if !blobs.has("req_export1.json") {
			t.Error("no export written")
		}
		if w.Timeout(nil) != DefaultExportTimeout {
			t.Errorf("export job timeout %v, want %v", w.Timeout(nil), DefaultExportTimeout)
		}
	})
	t.Run("a 429 from Clerk snoozes for its Retry-After without using an attempt", func(t *testing.T) {
		srv := clerktest.NewServer()
		t.Cleanup(srv.Close)
		u := srv.AddUser(steward.User{FirstName: "Rae"})
		prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(1))
		e := newEnv(t, prov, privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
		id, _ := e.svc.QueueErasure(t.Context(), u.ID)
		// The run's Clerk calls: locking the account as the erasure
		// opens (best effort), then deleting it, which is refused.
		srv.FailNext(2, http.StatusTooManyRequests, 30*time.Second)
		before := time.Now()
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		if diff := cmp.Diff(got{river.EventKindJobSnoozed, privacy.StatusPartial, 0}, got{res.EventKind, e.status(t, id), res.Job.Attempt}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if wait := res.Job.ScheduledAt.Sub(before); wait < 29*time.Second || wait > 40*time.Second {
			t.Errorf("snoozed for %v, want Clerk's 30s Retry-After", wait)
		}
		if res.Job.State != rivertype.JobStateScheduled {
			t.Errorf("job state %s, want scheduled", res.Job.State)
		}
		// Clerk is back: the next run completes it.
		res = work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		if res.EventKind != river.EventKindJobCompleted || e.status(t, id) != privacy.StatusCompleted {
			t.Errorf("after the rate limit: %s, request %s", res.EventKind, e.status(t, id))
		}
	})
	t.Run("a 429 snoozes the job with the default options of clerkadapter and the Service", func(t *testing.T) {
		srv := clerktest.NewServer()
		t.Cleanup(srv.Close)
		u := srv.AddUser(steward.User{FirstName: "Sam"})
		e := newEnv(t, clerkadapter.New(srv.ClientConfig()))
		id, _ := e.svc.QueueErasure(t.Context(), u.ID)
		// Enough refusals for every retry either would make in the job.
		srv.FailNext(50, http.StatusTooManyRequests, 30*time.Second)
		before := time.Now()
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		if took := time.Since(before); took > 5*time.Second {
			t.Errorf("the job ran %v: it waited out the rate limit instead of snoozing", took)
		}
		if diff := cmp.Diff(got{river.EventKindJobSnoozed, privacy.StatusPartial, 0}, got{res.EventKind, e.status(t, id), res.Job.Attempt}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if wait := res.Job.ScheduledAt.Sub(before); wait < 29*time.Second || wait > 40*time.Second {
			t.Errorf("snoozed for %v, want Clerk's 30s Retry-After", wait)
		}
	})
	t.Run("a legal hold cancels the job", func(t *testing.T) {
		db, _ := pgDB(t)
		store, _ := sqlstore.New(db, sqlstore.Postgres)
		if err := store.Holds().Place(t.Context(), retention.Hold{UserID: "user_h", Reason: "litigation 2025-17", PlacedBy: "user_legal", PlacedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		e := envOn(t, db, users("user_h"), nil, privacy.WithHoldChecker(retention.Checker{Holds: store.Holds()}))
		id, _ := e.svc.QueueErasure(t.Context(), "user_h")
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		if diff := cmp.Diff(got{river.EventKindJobCancelled, privacy.StatusHeld, 1}, got{res.EventKind, e.status(t, id), res.Job.Attempt}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if n := e.fx.count(t, "identity:user_h"); n != 0 {
			t.Errorf("a held user was deleted %d times", n)
		}
	})
	t.Run("a request another worker runs snoozes until its claim lapses", func(t *testing.T) {
		e := newEnv(t, users("user_c"))
		id, _ := e.svc.QueueErasure(t.Context(), "user_c")
		if _, err := e.store.Requests().ClaimRequest(t.Context(), id, "another worker", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, nil)
		wait := res.Job.ScheduledAt.Sub(before)
		if res.EventKind != river.EventKindJobSnoozed || res.Job.Attempt != 0 || wait < 19*time.Second || wait > 30*time.Second {
			t.Errorf("%s at attempt %d for %v, want snoozed at attempt 0 for about 21s", res.EventKind, res.Job.Attempt, wait)
		}
	})
	t.Run("an unknown request cancels the job", func(t *testing.T) {
		e := newEnv(t, users())
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: "req_gone"}, nil)
		if res.EventKind != river.EventKindJobCancelled {
			t.Errorf("%s, want cancelled", res.EventKind)
		}
	})
	t.Run("a failing step uses an attempt and leaves the request in NeedsAttention", func(t *testing.T) {
		idp := &recordingIDP{MemoryIdentity: users("user_f"), err: func() error { return errors.New("identity provider down") }}
		e := newEnv(t, idp)
		idp.fx = e.fx
		id, _ := e.svc.QueueErasure(t.Context(), "user_f")
		res := work(t, e, e.erasureWorker(), ErasureArgs{RequestID: id}, &river.InsertOpts{MaxAttempts: 2})
		if diff := cmp.Diff(got{river.EventKindJobFailed, privacy.StatusPartial, 1}, got{res.EventKind, e.status(t, id), res.Job.Attempt}); diff != "" {
			t.Errorf("first attempt (-want +got):\n%s", diff)
		}
		retried := res.Job.State == rivertype.JobStateRetryable || res.Job.State == rivertype.JobStateAvailable
		if !retried || len(res.Job.Errors) != 1 || strings.Contains(res.Job.Errors[0].Error, "user_f") {
			t.Errorf("job %s with errors %+v, want to be retried, with one error that names no user", res.Job.State, res.Job.Errors)
		}
		listed := false
		for r, err := range e.svc.NeedsAttention(t.Context()) {
			listed = listed || err == nil && r.ID == id
		}
		if !listed {
			t.Error("the partial request is not in NeedsAttention")
		}
	})
	t.Run("a job that times out on its last attempt flags its request for review", func(t *testing.T) {
		e := newEnv(t, users("user_t"))
		id, _ := e.svc.QueueErasure(t.Context(), "user_t")
		tx, err := e.db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() })
		w := &requestWorker[ErasureArgs]{j: e.jobs, svc: e.svc, timeout: time.Nanosecond}
		tw := rivertest.NewWorker(t, riverdatabasesql.New(nil), &river.Config{}, river.Worker[ErasureArgs](w))
		res, _ := tw.Work(t.Context(), t, tx, ErasureArgs{RequestID: id}, &river.InsertOpts{MaxAttempts: 1})
		var flagged []string
		for r, err := range e.svc.NeedsAttention(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			flagged = append(flagged, r.ID+" "+r.Reason)
		}
		if res.Job.State != rivertype.JobStateDiscarded {
			t.Errorf("job %s, want discarded", res.Job.State)
		}
		if diff := cmp.Diff([]string{id + " steward.erasure job discarded after 1 attempts"}, flagged); diff != "" {
			t.Errorf("NeedsAttention (-want +got):\n%s", diff)
		}
	})
}
