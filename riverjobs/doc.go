// Package riverjobs runs Steward's background duties as River jobs
// (github.com/riverqueue/river) on PostgreSQL: the scale-out engine of a
// background.Runner, for applications that run River already or have
// outgrown the embedded engine (Runner.Run).
//
// # Wiring
//
// Create every request together with its job, give the Runner's duties to
// New, and register the jobs on your River client:
//
//	store, err := sqlstore.New(db, sqlstore.Postgres)
//	err = store.Migrate(ctx)
//	err = riverjobs.Migrate(ctx, db) // or River's own migrations
//
//	requests := store.Requests().OnCreate(riverjobs.EnqueueTx)
//	svc, err := privacy.NewService(idp, privacy.WithRequestStore(requests), ...)
//	runner, err := background.New(background.WithPrivacy(svc),
//		background.WithConsent(consents), background.WithRetention(engine),
//		background.WithForwarders(forwarder))
//
//	jobs, err := riverjobs.New(runner, db)
//	workers := river.NewWorkers()
//	err = jobs.AddWorkers(workers)
//	periodic := jobs.PeriodicJobs()
//	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Workers: workers, Queues: jobs.Queues(), PeriodicJobs: periodic,
//	})
//	err = client.Start(ctx)
//
// Do not also call runner.Run: River runs the duties now.
//
// # Jobs
//
// Every erasure and queued export has one job (KindErasure, KindExport),
// inserted by EnqueueTx in the transaction that creates the request's
// row, so that neither exists without the other, and unique by request
// ID. A job's arguments are the request ID only, never a user ID, email
// or token: River keeps job rows and their errors for days. The job
// calls privacy.Service.Drive, the code the embedded engine calls too,
// and maps its outcome to River's:
//
//   - done: the job completes;
//   - a legal hold: the job is cancelled (river.JobCancel);
//   - another worker's claim on the request: snoozed until the claim
//     lapses (river.JobSnooze, which uses no attempt);
//   - a rate limit with Retry-After (Clerk's 429, through
//     privacy.Throttler): snoozed for that long, using no attempt; the job
//     drives the request under privacy.DeferRateLimits, so neither the
//     Service's step retries nor clerkadapter's wait out the 429 inside
//     the job, with the default options of both;
//   - a failure retrying cannot fix: cancelled, the request left partial
//     for privacy.Service.NeedsAttention;
//   - any other failure: the attempt fails and River retries with its
//     backoff, up to ErasureMaxAttempts or ExportMaxAttempts (about 11
//     and 4 hours with River's default policy, well inside the legal
//     deadlines). On the last attempt the request is flagged for review
//     (privacy.Service.MarkForReview), so a discarded job always shows up
//     in NeedsAttention.
//
// Erasure jobs time out after DefaultErasureTimeout and export jobs after
// DefaultExportTimeout (River's default is one minute); keep the River
// client's RescueStuckJobsAfter above them. A job whose process died is
// rescued by River and driven again; the request's claim, heartbeat and
// fencing make sure its steps are not run by two workers at once.
//
// Each Runner task becomes a periodic job (PeriodicJobs): the Requests
// sweep (which enqueues a job for every request left pending or partial,
// so requests created without a job or whose job was discarded are
// driven again), consent sync, retention, one audit forwarding job per
// destination, and export expiry. River's elected leader inserts them,
// unique per period, so with any number of clients each sweep runs once
// per interval.
//
// All jobs go to one queue, Queue ("steward"); Queues returns its
// config (WithMaxWorkers).
//
// # Module and SQLite
//
// riverjobs lives in Steward's main module. An application that does not
// import it compiles no River code, and its `go mod tidy` and builds
// download none of River's modules: Go's module graph pruning leaves
// them out (checked by building a core-only application with an empty
// module cache). River's requirements raise the minimum versions of a
// few shared indirect modules (golang.org/x/text) for every user.
//
// River's SQLite driver (riversqlite) is not offered: it describes itself
// as in early testing and needs a pool of one connection to avoid
// SQLITE_BUSY, which would serialise the application's requests, the
// claim heartbeats and River's own maintenance on that one connection. A
// single-process application on SQLite keeps the embedded engine, which
// is durable through the same claims and needs no queue.
//
// # Errors
//
// New fails with an error wrapping ErrInvalidConfig for a nil runner or
// database, a bad option, or a task interval under one second (River's
// periodic jobs need at least that). AddWorkers fails when a kind is
// registered already. EnqueueTx, Enqueue and Migrate return River's and
// the database's errors, wrapped; Enqueue wraps privacy.ErrRequestNotFound
// for an unknown request. Job errors carry the request ID, never the
// user's.
package riverjobs
