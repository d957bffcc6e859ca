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
// cause); ErrRequestNotFound, ErrDuplicateRequest, ErrActiveRequest and
// ErrConflict from RequestStores; ErrInvalidRequest and ErrInvalidConfig
// for bad input, naming the field; ErrAlreadyExtended, ErrAsyncUnavailable
// and ErrClosed. Errors from the identity provider (steward.ErrUserNotFound,
// steward.ErrInvalidUserID) and from stores are wrapped. No error, stored
// step error or audit event contains the user ID.
package privacy

//go:generate mockgen -destination=mocks/mocks.go -package=mocks -typed . DataStore,RequestStore,ExternalService,HoldChecker,Notifier,BlobWriter
