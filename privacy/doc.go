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
// never exported. StartExport queues an export into a BlobWriter and
// tells a Notifier when it is ready. Each export writes a data_export
// audit event.
//
// # Erasure
//
// Service.Erase is a durable saga. It records a Request (received time,
// due date under GDPR or CCPA), erases each DataStore, then the identity
// provider, then each ExternalService, then writes a data_deletion audit
// event; every step is checkpointed in a RequestStore, idempotent, and
// retried with backoff. A step that still fails leaves the request
// partial, listed by NeedsAttention; Resume and ResumePending finish it
// from the last checkpoint, also after a crash. A user under legal hold
// (HoldChecker) is not erased. Overdue lists requests past their due
// date; Extend records an extension. Audit events name the user by the
// audit logger's pseudonym only.
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
// elsewhere, or needs attention). ResumePending drives every Resumable
// request in turn (the embedded engine of package background); package
// riverjobs drives one request per River job. QueueErasure records an
// erasure for a worker to run; MarkForReview flags a request an engine
// gave up on, so NeedsAttention lists it.
//
// What holds, per store: sqlstore's Requests (PostgreSQL and SQLite)
// claims in the database, for any number of processes. MemoryRequestStore
// claims in memory, for Services in one process. A RequestStore that is
// not a RequestClaimer is run one request at a time per Service only.
//
// # HTTP
//
// ExportHandler (GET) and DeleteHandler (DELETE) are wire-compatible with
// the data-handling guide's GDPR endpoints; see their documentation for
// every status and body. The principal comes from the request context
// (rbac.WithPrincipal, set by the session middleware). A user acts on
// themselves; acting on another user (?userId=) needs AdminPermission.
//
// # Implementing ports
//
// DataStore and RequestStore implementations prove themselves with the
// suites in package privacytest. MemoryStore and MemoryRequestStore are
// the in-process implementations; package sqldata declares a DataStore
// over an application's SQL tables.
//
// # Errors
//
// Sentinel errors are matched with errors.Is: ErrLegalHold and
// ErrPartialDeletion from Erase and Resume (the DeletionResult says
// more, and its Errors are StepError values, whose Err unwraps to the
// cause); ErrClaimLost from a run stopped because another worker took
// its request over, and ErrRequestClaimed from a RequestClaimer whose
// request another worker holds; ErrRequestNotFound, ErrDuplicateRequest, ErrActiveRequest and
// ErrConflict from RequestStores; ErrInvalidRequest and ErrInvalidConfig
// for bad input, naming the field; ErrAlreadyExtended, ErrAsyncUnavailable
// and ErrClosed. Errors from the identity provider (steward.ErrUserNotFound,
// steward.ErrInvalidUserID) and from stores are wrapped. No error, stored
// step error or audit event contains the user ID.
package privacy

//go:generate mockgen -destination=mocks/mocks.go -package=mocks -typed . DataStore,RequestStore,ExternalService,HoldChecker,Notifier,BlobWriter
