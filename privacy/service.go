package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

// AuditLogger is what the Service needs from an audit log;
// *audit.Logger satisfies it. The Service sets Type, Subject (the raw
// user ID, which the logger pseudonymises), Actor and Details.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// ExternalService is a third party holding the user's data (analytics,
// email, payments) that erasure must reach after the identity provider.
type ExternalService interface {
	// Name is a stable identifier such as "analytics"; it appears in
	// DeletionResult.DeletedFrom and in checkpoints.
	Name() string
	// Erase deletes the user's data at the service. It must be
	// idempotent: erasing a user the service does not know is not an
	// error.
	Erase(ctx context.Context, userID string) error
}

// HoldChecker tells whether a user's data must be kept (litigation,
// investigation, a legal retention duty). Package retention implements
// it.
type HoldChecker interface {
	// Held reports whether userID is under a hold and, if so, why. The
	// reason is kept in the request (Request.Reason) and in the Go
	// result for operators; the HTTP handlers never show it to the data
	// subject. It must not contain personal data.
	Held(ctx context.Context, userID string) (held bool, reason string, err error)
}

// BlobWriter stores queued exports (a bucket, a directory). The
// BlobWriter given to WithBlobWriter must also be a BlobDeleter, so that
// expired exports and those of erased users can be deleted; a BlobOpener
// lets DownloadHandler serve them.
type BlobWriter interface {
	// Create opens a new blob called name for writing; Close commits it.
	// Creating a name that exists replaces it.
	Create(ctx context.Context, name string) (io.WriteCloser, error)
}

// BlobDeleter deletes blobs written by a BlobWriter.
type BlobDeleter interface {
	// Delete removes the blob called name; deleting a blob that does not
	// exist is not an error.
	Delete(ctx context.Context, name string) error
}

// BlobOpener reads blobs written by a BlobWriter.
type BlobOpener interface {
	// Open returns the blob called name, or an error wrapping
	// ErrBlobNotFound.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
}

// Notifier is told when a queued export finishes (the user is told it is
// ready to download, or that it failed).
type Notifier interface {
	// ExportDone is called once per finished export, after its request
	// is settled, with the request as it was before it was pseudonymised
	// (UserID is the user's, so the user can be reached): Status is
	// StatusCompleted (Location names the blob, ExpiresAt says until
	// when it can be downloaded) or StatusPartial (it failed;
	// ResumePending retries it).
	ExportDone(ctx context.Context, r Request) error
}

// Authorizer decides whether a principal may act on another user's data
// through the HTTP handlers; *rbac.Authorizer satisfies it.
type Authorizer interface {
	Allowed(p rbac.Principal, perm rbac.Permission) bool
}

// AdminPermission is the permission a principal needs to export or erase
// another user through the HTTP handlers.
const AdminPermission rbac.Permission = "admin:users"

// Retry bounds how each step is retried within one run. Between attempts
// the Service waits with exponential backoff and jitter, from
// InitialInterval up to MaxInterval.
type Retry struct {
	// MaxAttempts is the number of calls per step per run, at least 1.
	MaxAttempts     int
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// defaultRetry is the retry policy when WithRetry is not given.
var defaultRetry = Retry{MaxAttempts: 5, InitialInterval: 200 * time.Millisecond, MaxInterval: 5 * time.Second}

// Defaults for the Service's options.
const (
	DefaultInlineExportBytes = 8 << 20
	DefaultInlineExportTime  = 10 * time.Second
	DefaultResumeAfter       = time.Minute
	// DefaultExportTTL is how long a queued export can be downloaded
	// before its blob is deleted (WithExportTTL).
	DefaultExportTTL = 7 * 24 * time.Hour
	// DefaultIdentityName is the step name of the identity provider in
	// checkpoints and DeletionResult.DeletedFrom, unless the provider has
	// a Name method or WithIdentityName is given.
	DefaultIdentityName = "identity"
	// SystemActor is the audit actor of work the Service does on its own
	// (resuming requests, queued exports).
	SystemActor = audit.SystemActorPrefix + "privacy"
)

// Reserved step names.
const (
	auditStepName   = "audit"
	exportStepName  = "export"
	holdStepName    = "legal_hold"
	fenceStepName   = "fence"
	exportsStepName = "exports"
	finalStepName   = "final_pass"
	ledgerStepName  = "ledger"
)

// Option configures a Service.
type Option func(*Service) error

// WithStores registers the DataStores to export and erase, in the order
// they are erased. Names must be unique and non-empty.
func WithStores(stores ...DataStore) Option {
	return func(s *Service) error {
		for i, st := range stores {
			if st == nil {
				return fmt.Errorf("%w: WithStores: store %d is nil", ErrInvalidConfig, i)
			}
		}
		s.stores = append(s.stores, stores...)
		return nil
	}
}

// WithExternal registers external services erased after the identity
// provider. Names must be unique and non-empty.
func WithExternal(services ...ExternalService) Option {
	return func(s *Service) error {
		for i, e := range services {
			if e == nil {
				return fmt.Errorf("%w: WithExternal: service %d is nil", ErrInvalidConfig, i)
			}
		}
		s.externals = append(s.externals, services...)
		return nil
	}
}

// WithAudit sets the audit logger; *audit.Logger satisfies AuditLogger.
// Without it no audit events are written.
func WithAudit(l AuditLogger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("%w: WithAudit: nil logger", ErrInvalidConfig)
		}
		s.audit = l
		return nil
	}
}

// WithRequestStore sets where requests and checkpoints are kept. The
// default is a fresh MemoryRequestStore, which does not survive a crash.
func WithRequestStore(rs RequestStore) Option {
	return func(s *Service) error {
		if rs == nil {
			return fmt.Errorf("%w: WithRequestStore: nil store", ErrInvalidConfig)
		}
		s.requests = rs
		return nil
	}
}

// WithHoldChecker sets the legal-hold check made before every erasure
// run. Without it no user is held.
func WithHoldChecker(h HoldChecker) Option {
	return func(s *Service) error {
		if h == nil {
			return fmt.Errorf("%w: WithHoldChecker: nil checker", ErrInvalidConfig)
		}
		s.holds = h
		return nil
	}
}

// WithNow sets the clock (default time.Now), used for export times,
// checkpoints and deadlines.
func WithNow(now func() time.Time) Option {
	return func(s *Service) error {
		if now == nil {
			return fmt.Errorf("%w: WithNow: nil clock", ErrInvalidConfig)
		}
		s.now = now
		return nil
	}
}

// WithRetry sets how steps are retried. The default is 5 attempts,
// waiting from 200ms up to 5s between them; tests use tiny intervals.
func WithRetry(r Retry) Option {
	return func(s *Service) error {
		if r.MaxAttempts < 1 {
			return fmt.Errorf("%w: WithRetry: MaxAttempts is %d, want at least 1", ErrInvalidConfig, r.MaxAttempts)
		}
		if r.InitialInterval < 0 || r.MaxInterval < r.InitialInterval {
			return fmt.Errorf("%w: WithRetry: want 0 <= InitialInterval (%v) <= MaxInterval (%v)", ErrInvalidConfig, r.InitialInterval, r.MaxInterval)
		}
		s.retry = r
		return nil
	}
}

// WithSanitizer sets the fields never exported.
func WithSanitizer(z Sanitizer) Option {
	return func(s *Service) error {
		if err := z.Validate(); err != nil {
			return err
		}
		s.sanitizer = z
		return nil
	}
}

// WithPrivateMetadata includes the identity's private metadata in exports
// (under identity.metadata.private). By default it is left out: it holds
// what the application keeps about the user for itself.
func WithPrivateMetadata() Option {
	return func(s *Service) error {
		s.privateMetadata = true
		return nil
	}
}

// WithBlobWriter enables queued exports (StartExport, and 202 answers
// from ExportHandler), written to w. w must also be a BlobDeleter (see
// BlobWriter); MemoryBlobs and DirBlobs are all three.
func WithBlobWriter(w BlobWriter) Option {
	return func(s *Service) error {
		if w == nil {
			return fmt.Errorf("%w: WithBlobWriter: nil writer", ErrInvalidConfig)
		}
		d, ok := w.(BlobDeleter)
		if !ok {
			return fmt.Errorf("%w: WithBlobWriter: %T is not a BlobDeleter, so expired exports and those of erased users could not be deleted", ErrInvalidConfig, w)
		}
		s.blobs, s.deleter = w, d
		s.opener, _ = w.(BlobOpener)
		return nil
	}
}

// WithExportTTL sets how long a queued export stays downloadable before
// ExpireExports deletes its blob (default DefaultExportTTL).
func WithExportTTL(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithExportTTL: %v is not positive", ErrInvalidConfig, d)
		}
		s.exportTTL = d
		return nil
	}
}

// WithNotifier sets who is told when a queued export finishes.
func WithNotifier(n Notifier) Option {
	return func(s *Service) error {
		if n == nil {
			return fmt.Errorf("%w: WithNotifier: nil notifier", ErrInvalidConfig)
		}
		s.notifier = n
		return nil
	}
}

// WithInlineExportLimits bounds an export ExportHandler answers inline
// when a BlobWriter is configured: one larger than maxBytes or slower than
// maxTime is queued instead (202). Defaults: DefaultInlineExportBytes and
// DefaultInlineExportTime. The buffer is at most maxBytes, whatever the
// number of records.
func WithInlineExportLimits(maxBytes int64, maxTime time.Duration) Option {
	return func(s *Service) error {
		if maxBytes < 1 || maxTime <= 0 {
			return fmt.Errorf("%w: WithInlineExportLimits: want positive limits, got %d bytes and %v", ErrInvalidConfig, maxBytes, maxTime)
		}
		s.inlineBytes, s.inlineTime = maxBytes, maxTime
		return nil
	}
}

// WithAuthorizer sets who may act on other users through the HTTP
// handlers: principals allowed AdminPermission. Without it a principal
// may act only on themselves.
func WithAuthorizer(a Authorizer) Option {
	return func(s *Service) error {
		if a == nil {
			return fmt.Errorf("%w: WithAuthorizer: nil authorizer", ErrInvalidConfig)
		}
		s.authz = a
		return nil
	}
}

// WithResumeAfter sets how long a pending request must have been left
// untouched before ResumePending picks it up (default
// DefaultResumeAfter), so that a request just created by an Erase call is
// left to that call. It no longer decides whether a request is being
// worked on: claims do (see RequestClaimer), so ResumePending never takes
// over a run that is still going, however slow its steps. Partial
// requests are resumed at once.
func WithResumeAfter(d time.Duration) Option {
	return func(s *Service) error {
		if d < 0 {
			return fmt.Errorf("%w: WithResumeAfter: %v is negative", ErrInvalidConfig, d)
		}
		s.resumeAfter = d
		return nil
	}
}

// WithIdentityName sets the identity provider's step name (default: the
// provider's Name() if it has one, else DefaultIdentityName).
func WithIdentityName(name string) Option {
	return func(s *Service) error {
		s.idpName = name
		return nil
	}
}

// WithRegime sets the regime of requests made without EraseOption
// ForRegime (default GDPR).
func WithRegime(g Regime) Option {
	return func(s *Service) error {
		if err := g.Validate(); err != nil {
			return fmt.Errorf("%w: WithRegime: %w", ErrInvalidConfig, err)
		}
		s.regime = g
		return nil
	}
}

// Service exports and erases users across the identity provider, the
// registered DataStores and external services, keeping every erasure as
// a checkpointed Request. It is safe for concurrent use.
type Service struct {
	idp       steward.IdentityProvider
	idpName   string
	stores    []DataStore
	externals []ExternalService
	audit     AuditLogger
	requests  RequestStore
	holds     HoldChecker
	now       func() time.Time
	retry     Retry
	sanitizer Sanitizer
	blobs     BlobWriter
	deleter   BlobDeleter
	opener    BlobOpener
	exportTTL time.Duration
	notifier  Notifier
	pseudo    Pseudonymizer
	ledger    Ledger
	caches    []RoleCache
	grace     time.Duration
	authz     Authorizer
	regime    Regime

	privateMetadata bool
	inlineBytes     int64
	inlineTime      time.Duration
	resumeAfter     time.Duration
	storeByName     map[string]DataStore
	externalByName  map[string]ExternalService

	claimer      RequestClaimer
	sharedClaims bool // claimer is the store's: claims show in its requests
	claimTTL     time.Duration
	owner        string        // this Service's claim owner prefix
	runs         atomic.Uint64 // numbers this Service's runs

	tel telemetry // metrics, traces and log (telemetry.go)

	mu     sync.Mutex
	closed bool
	bg     sync.WaitGroup
}

// NewService returns a Service over idp. Without options it exports and
// erases only the identity, keeps requests in memory and writes no audit
// events. It fails, wrapping ErrInvalidConfig, on a nil idp, a bad option,
// or store, external and identity names that are empty, repeated, or one
// of the reserved step names "audit", "export", "legal_hold", "fence",
// "exports", "final_pass" and "ledger".
func NewService(idp steward.IdentityProvider, opts ...Option) (*Service, error) {
	if idp == nil {
		return nil, fmt.Errorf("%w: identity provider is nil", ErrInvalidConfig)
	}
	s := &Service{
		idp:         idp,
		now:         time.Now,
		retry:       defaultRetry,
		regime:      GDPR,
		inlineBytes: DefaultInlineExportBytes,
		inlineTime:  DefaultInlineExportTime,
		resumeAfter: DefaultResumeAfter,
		claimTTL:    DefaultClaimTTL,
		exportTTL:   DefaultExportTTL,
		owner:       steward.NewOwner(),
	}
	if n, ok := idp.(interface{ Name() string }); ok {
		s.idpName = n.Name()
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	if s.idpName == "" {
		s.idpName = DefaultIdentityName
	}
	if s.requests == nil {
		s.requests = NewMemoryRequestStore()
	}
	if s.pseudo == nil {
		if l, ok := s.audit.(interface{ Pseudonymizer() *audit.Pseudonymizer }); ok && l.Pseudonymizer() != nil {
			s.pseudo = l.Pseudonymizer()
		} else {
			s.pseudo = ephemeralPseudonymizer()
		}
	}
	if s.ledger == nil {
		s.ledger, _ = s.requests.(Ledger)
	}
	if c, ok := s.requests.(RequestClaimer); ok {
		s.claimer, s.sharedClaims = c, true
	} else {
		s.claimer = &localClaims{store: s.requests, held: map[string]localClaim{}}
	}
	seen := map[string]string{}
	for _, n := range []string{auditStepName, exportStepName, holdStepName, fenceStepName, exportsStepName, finalStepName, ledgerStepName} {
		seen[n] = "reserved"
	}
	claim := func(what, name string) error {
		if name == "" {
			return fmt.Errorf("%w: %s has an empty name", ErrInvalidConfig, what)
		}
		if other, ok := seen[name]; ok {
			return fmt.Errorf("%w: %s name %q is taken (%s)", ErrInvalidConfig, what, name, other)
		}
		seen[name] = what
		return nil
	}
	if err := claim("identity provider", s.idpName); err != nil {
		return nil, err
	}
	s.storeByName = make(map[string]DataStore, len(s.stores))
	for _, st := range s.stores {
		if err := claim("store", st.Name()); err != nil {
			return nil, err
		}
		s.storeByName[st.Name()] = st
	}
	s.externalByName = make(map[string]ExternalService, len(s.externals))
	for _, e := range s.externals {
		if err := claim("external service", e.Name()); err != nil {
			return nil, err
		}
		s.externalByName[e.Name()] = e
	}
	if err := s.tel.start(s); err != nil {
		return nil, err
	}
	return s, nil
}

// clock returns the current time in UTC without a monotonic reading.
func (s *Service) clock() time.Time { return s.now().UTC().Round(0) }

// newRequestID returns a random request ID, "req_" and 32 hex digits.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// Request returns the request with the given ID from the RequestStore.
func (s *Service) Request(ctx context.Context, id string) (Request, error) {
	return s.requests.Get(ctx, id)
}

// Close stops accepting queued exports, stops reporting the gauges of
// WithMeterProvider, and waits for the running exports to finish, or for
// ctx to end.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.tel.stop()
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// actorFrom returns the principal's user ID from ctx, or SystemActor.
func actorFrom(ctx context.Context) string {
	if p, ok := rbac.PrincipalFrom(ctx); ok && p.UserID != "" {
		return p.UserID
	}
	return SystemActor
}

// logEvent writes an audit event when a logger is configured.
func (s *Service) logEvent(ctx context.Context, t audit.Type, userID, actor string, details map[string]any) error {
	return s.logEventID(ctx, "", t, userID, actor, details)
}

// logAccess writes a data_access event when actor, a person, reads
// another user's data (an administrator exporting a user, say).
func (s *Service) logAccess(ctx context.Context, userID, actor, what string, details map[string]any) error {
	if actor == "" || actor == userID || strings.HasPrefix(actor, audit.SystemActorPrefix) {
		return nil
	}
	d := map[string]any{"what": what}
	for k, v := range details {
		d[k] = v
	}
	return s.logEvent(ctx, audit.DataAccess, userID, actor, d)
}

// logEventID writes an audit event with the given ID (audit.EventID),
// which an audit.Appender stores at most once; "" lets the logger choose.
func (s *Service) logEventID(ctx context.Context, id string, t audit.Type, userID, actor string, details map[string]any) error {
	if s.audit == nil {
		return nil
	}
	if err := s.audit.Log(ctx, audit.Event{ID: id, Type: t, Subject: userID, Actor: actor, Details: details}); err != nil {
		return redactErr(fmt.Errorf("audit: %w", err), userID)
	}
	return nil
}

// isPermanent reports errors that retrying cannot fix.
func isPermanent(err error) bool {
	return errors.Is(err, steward.ErrInvalidUserID) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errPanicked)
}

// errPanicked marks a call into a DataStore, ExternalService, identity
// provider or BlobStore that panicked. Retrying a bug does not fix it:
// the step fails without retries and the request is left partial, for
// NeedsAttention, instead of the panic ending the process (with the
// embedded engine, every replica in turn, as each takes the request over).
var errPanicked = errors.New("panicked")

// guard runs f and turns a panic in it into an error wrapping
// errPanicked that names what panicked and with what value.
func guard(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s %w: %v", what, errPanicked, v)
		}
	}()
	return f()
}
