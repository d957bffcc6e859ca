// Package background owns every background duty of an application that
// uses Steward, in one place with one set of options, whichever engine
// runs them:
//
//   - Requests: resume pending and partial erasures and queued exports
//     (privacy.Service.ResumePending, which drives each request with
//     privacy.Service.Drive);
//   - ConsentSync: mirror consent changes to the identity provider
//     (consent.Manager.SyncPending);
//   - Retention: purges and the inactive-user lifecycle
//     (retention.Engine.Run);
//   - AuditForward: send the stored audit chain to remote sinks
//     (audit.Forwarder.Forward);
//   - ExportExpiry: delete finished exports past their expiry
//     (ExportExpirer, which privacy.Service provides when it can).
//
// New takes the duties and their intervals and time limits:
//
//	runner, err := background.New(
//		background.WithPrivacy(svc),
//		background.WithConsent(consents),
//		background.WithRetention(engine),
//		background.WithForwarders(forwarder))
//	go runner.Run(ctx)
//
// # Engines
//
// Runner.Run is the embedded engine: goroutines in this process, with
// nothing to install. It is correct with several instances of the
// application on one database, because every duty does its work under
// claims and leases in the database, judged by the database's clock:
// each request, each user's consent sync, the retention sweep and each
// forwarder's cursor is worked by one instance at a time, and a pass
// that finds another instance at it does nothing and reports nothing.
//
// Package riverjobs runs the same tasks as River jobs on PostgreSQL, for
// applications that run River already or outgrow the polling of the
// embedded engine: one job per request, the sweeps as periodic jobs on
// River's elected leader. Both engines call the same code (Task.Do, and
// privacy.Service.Drive for one request); neither has a copy of a duty.
// An application that does not import riverjobs compiles no River code.
//
// # Metrics and traces
//
// WithMeterProvider and WithTracerProvider record every pass of every
// task, inside Task.Do, so both engines report alike; the duties' own
// spans (privacy's erasures, retention's runs) are children of the pass
// when their packages have the same TracerProvider. Without them nothing
// is recorded. WithLogger also logs, at debug level, the passes that did
// something. Attributes are duty and task names only.
//
//	steward.background.passes         counter    {pass}  steward.duty, steward.task, steward.outcome (ok, failed)
//	steward.background.pass.duration  histogram  s       steward.duty, steward.task
//	steward.background.pass.work      counter    {item}  steward.duty, steward.task
//	    requests driven, users synced, records purged, events forwarded,
//	    exports expired
//
// Spans: steward.background.pass (steward.duty, steward.task,
// steward.done; an error status when the pass failed).
//
// # Errors
//
// New fails with an error wrapping ErrInvalidConfig that names the bad
// option. Run returns only its context's error. A pass that panics is a
// failed pass (the error names the task) and the Runner goes on.
// Failed passes go to the handler of WithErrorHandler, or are logged
// (WithLogger); outcomes that are ordinary with several instances are not reported: another instance
// holds the retention lease (retention.ErrLeaseHeld) or a forwarder's
// cursor (audit.ErrCursorHeld), a request is claimed elsewhere or its
// claim moved on (privacy.ErrRequestClaimed, privacy.ErrClaimLost), a
// user is under legal hold (privacy.ErrLegalHold), a consent claim
// lapsed (steward.ErrLeaseLost).
package background
