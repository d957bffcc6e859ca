// Package privacy exports and erases a user's data across the identity
// provider, the application's DataStores and external services: the
// duties of GDPR Articles 15, 17 and 20 and the CCPA rights to know and
// to delete.
//
// A Service ties them together:
//
//	svc, err := privacy.NewService(idp,
//		privacy.WithStores(orders, profiles),
//		privacy.WithAudit(auditLogger),
//		privacy.WithRequestStore(store.Requests()))
//
// # Export
//
// Service.Export writes one JSON document (see ExportDocument): format
// version, export time, the identity record, then each store's records
// by category. It reads the stores as it writes, so memory stays flat
// however many records a user has. Fields declared in a Sanitizer are
// never exported. StartExport queues an export into a BlobWriter (one
// pending export per user) and tells a Notifier once the request is
// settled; DownloadHandler serves it to its user, and ExpireExports
// deletes its blob after WithExportTTL (DefaultExportTTL, seven days).
// Each export writes a data_export audit event, preceded by data_access
// when an administrator exports someone else.
//
// # Erasure
//
// Service.Erase is a durable saga. It records a Request (received time,
// due date under GDPR or CCPA), fences the user, erases each DataStore
// and the user's queued exports, then the identity provider, then each
// ExternalService, then every DataStore once more (the final pass),
// records the user in the Ledger, then writes a data_deletion audit
// event; every step is checkpointed in a RequestStore, idempotent, and
// retried with backoff. A step that still fails leaves the request
// partial, listed by NeedsAttention; Resume and ResumePending finish it
// from the last checkpoint, also after a crash. A user under legal hold
// (HoldChecker) is not erased. Overdue lists requests past their due
// date; Extend records an extension; Cancel closes a request for good
// (audited; for administrators, and for the user during the grace
// period of WithGracePeriod, before which nothing is erased). Audit
// events name the user by the audit logger's pseudonym only, and so do
// finished requests: UserID and Actor become pseudonyms when a request
// completes, is cancelled or expires, and FinishedRequests lets a
// retention policy delete them after their proof period
// (DefaultProofPeriod, three years).
//
// An erasure proves itself:
//   - From the moment the request opens (or its grace period ends), the
//     user is fenced: CheckFence, which sessions (clerkadapter's
//     SessionOptions.Fence), consent changes (consent.WithFence), queued
//     exports and the application's own write paths call, refuses them
//     with ErrFenced, from the RequestStore, so every instance agrees.
//     The first step writes the audit record that the erasure starts
//     (nothing is erased when it cannot be written), locks the account
//     at the provider when it is a steward.Moderator, and invalidates
//     cached roles (WithRoleCache).
//   - A write that raced the fence is caught by the final pass over
//     every DataStore after the identity step; the result counts both
//     passes. Checking the fence after a write (as consent and exports
//     do) and undoing the write when it fails closes the last gap.
//   - The Ledger keeps, for ever, one PII-free LedgerEntry per erased
//     user (keyed pseudonym, key ID, request ID, time): CheckFence keeps
//     answering ErrErased, and Replay erases again whoever a restored
//     backup brought back into a DataStore (a SubjectLister) or the
//     identity provider. Run Replay after every restore; keep the Ledger
//     in a database the restore does not touch (WithLedger).
//   - The provider validates the ID first (a steward.IDValidator, such
//     as clerkadapter's "user_" rule), so an ID it would refuse touches
//     no store; an identity it does not know is recorded as such
//     (StepOutcomeNotFound, DeletionResult.IdentityNotFound), never counted.
//   - A user.deleted webhook (clerkadapter.EraseDeletedUsers) erases the
//     application's data with the identity step recorded done
//     (IdentityDeleted).
//
// The pseudonyms need a key that lasts: the audit logger's
// (WithAudit with an *audit.Logger) or WithPseudonymizer, with every key
// a rotation retired; see package audit.
//
// A RequestStore must be durable for erasure to survive a crash: use the
// SQL store from package sqlstore; MemoryRequestStore is for tests.
//
// # Several instances
//
// Applications run several replicas on one database and restart them at
// any moment. A request is run by one worker at a time: before running
// it, a Service claims it in the RequestStore (RequestClaimer) for
// WithClaimTTL, judged by the store's clock (the database's for
// sqlstore), renews the claim every third of that while a step runs, and
// releases it when the run ends. Claiming increments the request's
// Version, so every checkpoint of a worker whose claim was taken over is
// refused, and that worker stops before its next step (ErrClaimLost);
// the other carries on. Erase and Resume of a request another worker is
// running wait for it and return its outcome; ResumePending skips such
// requests, so it is safe to call from every instance at any frequency.
// A worker that died is replaced once its claim expires. The completion
// event of each request is logged under an ID made from the request's
// (audit.EventID), so an audit.Appender such as sqlstore's stores it
// once even when a crash makes the run write it again.
//
// Background work drives requests through one entry point, Drive: it
// moves one request as far as it can go now, never waits for another
// worker, and says what to do next (done, retry later — after
// DriveResult.RetryAfter when the identity provider rate-limited the call
// through a Throttler such as clerkadapter.APIError —, held, claimed
// elsewhere, or needs attention); under DeferRateLimits a rate limit is
// reported at once rather than waited out. ResumePending drives every
// Resumable request in turn (the embedded engine of package background);
// package riverjobs drives one request per River job. QueueErasure records
// an erasure for a worker to run; MarkForReview flags a request an engine
// gave up on, so NeedsAttention lists it.
//
// What holds, per store: sqlstore's Requests (PostgreSQL and SQLite)
// claims in the database, for any number of processes. MemoryRequestStore
// claims in memory, for Services in one process. A RequestStore that is
// not a RequestClaimer is run one request at a time per Service only.
//
// # HTTP
//
// ExportHandler (GET) and DeleteHandler (DELETE) answer the export and
// erasure endpoints: an attachment named user-data-<id>.json, or 202 for
// a queued export; 400 without the X-Confirm-Delete: true header, 401
// without a principal, 200 with the DeletionResult, 500 "Partial
// deletion" with it; DownloadHandler and CancelHandler serve queued
// exports and cancellations. See each for every status and body. Bodies
// carry stable codes (StepError.Code, CodeStoreFailed ...) and the
// request ID, never what a store or provider said, and never a legal
// hold's reason. The principal comes from the request context
// (rbac.WithPrincipal, set by the session middleware). A user acts on
// themselves; acting on another user (?userId=) needs AdminPermission
// (WithAuthorizer).
//
// # Pages
//
// Service.Requests lists requests a page at a time (RequestFilter.After
// and Limit), and a user's whole history, open and finished, when the
// filter names them; Service.Categories counts what the stores hold
// about a user, by category. Package privacycenter renders them as web
// pages.
//
// # Implementing ports
//
// DataStore, RequestStore and Ledger implementations prove themselves
// with the suites in package privacytest, which also check the optional
// capabilities (RequestClaimer, RequestPurger, Ledger, SubjectLister)
// of a store that has them. MemoryStore and MemoryRequestStore are the
// in-process implementations; package sqldata declares a DataStore over
// an application's SQL tables; MemoryBlobs and DirBlobs keep queued
// exports.
//
// # Metrics and traces
//
// With WithMeterProvider and WithTracerProvider the Service records
// OpenTelemetry metrics and spans; without them it records nothing and
// pays a nil check. WithLogger logs its runs with log/slog. No metric
// attribute, span attribute or log line ever holds a user ID, an email or
// a token, nor what a store or provider said (that stays in the request's
// steps, redacted, for 'steward show'): only request IDs (spans and logs,
// never metrics), kinds, statuses, regimes, step names and kinds, and
// error codes (StepError.Code).
//
//	steward.privacy.requests               counter    {request}  steward.request.kind, steward.request.status
//	    requests created (pending) and runs that left one completed,
//	    partial, held or cancelled, in this process
//	steward.privacy.requests.open          gauge      {request}  steward.request.kind, steward.request.status
//	    open requests in the RequestStore (pending, partial, held): one
//	    List of the open requests per collection
//	steward.privacy.requests.overdue       gauge      {request}  steward.request.kind
//	    pending and partial requests past their due date
//	steward.privacy.erasure.duration       histogram  s          steward.request.status
//	    one run of an erasure; the status is the request's after the run,
//	    or scheduled, claimed, interrupted or failed
//	steward.privacy.erasure.step.duration  histogram  s          steward.step.name, steward.step.kind, steward.step.status
//	steward.privacy.erasure.step.retries   counter    {retry}    steward.step.name, steward.step.kind
//	    calls of a step beyond the first in one run
//	steward.privacy.export.records         counter    {record}   steward.export.mode (inline, queued)
//	steward.privacy.export.bytes           counter    By         steward.export.mode
//
// Spans: steward.privacy.erasure, one per run of an erasure (Erase,
// Resume, Drive; attributes steward.request.id, .kind, .regime, .status;
// an error status when it ended partial, interrupted or failed), with a
// child steward.privacy.erasure.step per step it ran, in order
// (steward.step.name, .kind, .status, .attempts, and steward.step.code
// with an error status when it failed); steward.privacy.export per
// export written (steward.export.mode, .records, .bytes, and
// steward.request.id when queued). Give the same providers to
// background.Runner and the erasure's span is a child of the pass that
// drove it.
//
// # Errors
//
// Sentinel errors are matched with errors.Is: ErrLegalHold and
// ErrPartialDeletion from Erase and Resume (the DeletionResult says
// more, and its Errors are StepError values, whose Err unwraps to the
// cause); ErrClaimLost from a run stopped because another worker took
// its request over, and ErrRequestClaimed from a RequestClaimer whose
// request another worker holds; ErrFenced and ErrErased (which matches
// ErrFenced) from CheckFence and everything it guards; ErrCancelled for
// a cancelled request, ErrScheduled during a grace period, ErrForbidden
// from Cancel; ErrRequestNotFound, ErrDuplicateRequest, ErrActiveRequest and
// ErrConflict from RequestStores; ErrBlobNotFound from a BlobOpener;
// ErrInvalidRequest and ErrInvalidConfig for bad input, naming the field;
// ErrAlreadyExtended, ErrAsyncUnavailable and ErrClosed. Errors from the
// identity provider (steward.ErrUserNotFound, steward.ErrInvalidUserID)
// and from stores are wrapped. A DataStore, ExternalService, identity
// provider or BlobWriter that panics during an erasure step or a queued
// export fails that step at once, its error saying it panicked: the
// request is left partial for NeedsAttention (for an erasure Drive
// reports OutcomeNeedsAttention), and the process goes on. No error, at
// any level of its Unwrap chain, no stored step error, audit event or
// slog line (Request and the other types that hold a user ID have a
// LogValue) contains the user ID.
package privacy

//go:generate mockgen -destination=mocks/mocks.go -package=mocks -typed . DataStore,RequestStore,ExternalService,HoldChecker,Notifier,BlobWriter
