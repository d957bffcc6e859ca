package clerktest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward"
)

// DefaultSecretKey is the secret key a Server accepts unless WithSecretKey
// sets another. ClientConfig puts it in the configuration it returns.
const DefaultSecretKey = "sk_test_clerktest"

// DefaultIssuer is the "iss" claim of the session tokens a Server mints
// unless WithIssuer sets another. It has the shape of a Clerk development
// instance's Frontend API URL, so the SDK's jwt.Verify accepts it.
const DefaultIssuer = "https://clerktest.clerk.accounts.dev"

// DefaultAuthorizedParty is the "azp" claim of minted session tokens
// unless WithAuthorizedParty sets another.
const DefaultAuthorizedParty = "http://localhost:3000"

// Server is a fake Clerk Backend API holding users in memory. Its
// responses have the JSON shapes of the real API (clerk/openapi-specs
// bapi/2025-04-10.yml, the version clerk-sdk-go v2.4.2 asks for), so the
// official SDK works against it unchanged; point the SDK at it with
// ClientConfig.
//
// Served under URL+"/v1", each requiring "Authorization: Bearer <secret
// key>", are the endpoints the SDK's user package calls:
//
//	GET    /users                  list (every documented filter, order_by field,
//	                               limit/offset and the starting_after cursor)
//	GET    /users/count            count with the same filters
//	POST   /users                  create
//	GET    /users/{id}             one user
//	PATCH  /users/{id}             update (metadata given here replaces)
//	DELETE /users/{id}             delete
//	PATCH  /users/{id}/metadata    deep-merge metadata; a null value removes a key
//	PUT    /users/{id}/metadata    replace the metadata objects given
//	POST   /users/{id}/ban, /unban, /lock, /unlock
//	POST   /users/{id}/profile_image, DELETE /users/{id}/profile_image
//	POST   /users/{id}/verify_password
//	DELETE /users/{id}/mfa, /totp, /backup_code
//	DELETE /users/{id}/web3_wallets/{id}, /external_accounts/{id}, /passkeys/{id}
//	GET    /users/{id}/organization_memberships, /organization_invitations
//	GET    /users/{id}/oauth_access_tokens/{provider}
//	GET    /jwks                   the public keys that verify minted session tokens
//
// Errors have Clerk's shape: {"errors":[{"code","message","long_message",
// "meta"}], "clerk_trace_id"}. Every answer carries a Clerk-Trace-Id
// header.
//
// Faults are injected per request in the order they were queued
// (FailNext, DelayNext), and SetLatency delays every request. Requests
// returns a log of what was asked and answered.
//
// A Server is safe for concurrent use. Close it when done.
type Server struct {
	// URL is the base URL of the server, such as "http://127.0.0.1:52100",
	// with no trailing slash. The Backend API is under URL+"/v1".
	URL string

	ts  *httptest.Server
	cfg config

	mu       sync.Mutex
	users    map[string]*record
	faults   []fault
	latency  time.Duration
	requests []Request
	instance window            // recent requests, for the instance limit
	perUser  map[string]window // recent updates of each user

	keyMu   sync.Mutex
	keys    []*signingKey // published in the JWKS, current last
	keyOnce bool
}

// Clerk's documented Backend API limits (clerk-docs,
// guides/how-clerk-works/system-limits.mdx).
const (
	// DevelopmentRateLimit is a development instance's limit: 100
	// requests per RateLimitWindow.
	DevelopmentRateLimit = 100
	// ProductionRateLimit is a production instance's limit: 1000
	// requests per RateLimitWindow.
	ProductionRateLimit = 1000
	// RateLimitWindow is the window of the instance and per-user limits.
	RateLimitWindow = 10 * time.Second
	// UserUpdateLimit is how many updates of one user (PATCH
	// /v1/users/{user_id}, PATCH and PUT /v1/users/{user_id}/metadata)
	// Clerk accepts per RateLimitWindow: "10 requests per 10 seconds per
	// user".
	UserUpdateLimit = 10
)

// config is what the options set.
type config struct {
	now           func() time.Time
	secretKey     string
	issuer        string
	azp           string
	sessionClaims func(steward.User) map[string]any
	signingKey    *rsa.PrivateKey
	rateLimit     int
	rateWindow    time.Duration
	userLimit     int
	userWindow    time.Duration
	webhookSecret string
}

// Option configures a Server.
type Option func(*config)

// WithNow sets the clock the server uses for user timestamps and session
// tokens. The default is time.Now. Latency, Retry-After and the rate limit
// always use real time.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithSecretKey sets the secret key the server accepts.
func WithSecretKey(key string) Option { return func(c *config) { c.secretKey = key } }

// WithIssuer sets the "iss" claim of minted session tokens.
func WithIssuer(iss string) Option { return func(c *config) { c.issuer = iss } }

// WithAuthorizedParty sets the "azp" claim of minted session tokens.
func WithAuthorizedParty(azp string) Option { return func(c *config) { c.azp = azp } }

// WithSessionClaims sets the session token template: the custom claims
// SessionToken adds for a user the server holds, like the claims an
// instance's "Customize session token" setting adds. The default is
//
//	{"metadata": <public metadata>, "email_verified": <primary email verified>}
//
// which is what Clerk's role-based access guide configures. A nil func
// adds no custom claims.
func WithSessionClaims(template func(u steward.User) map[string]any) Option {
	return func(c *config) { c.sessionClaims = template }
}

// WithSigningKey sets the RSA key that signs session tokens. By default
// the server generates a 2048-bit key the first time one is needed; tests
// that start many servers can share one key to save the generation time.
func WithSigningKey(key *rsa.PrivateKey) Option { return func(c *config) { c.signingKey = key } }

// WithRateLimit makes the server answer 429 Too Many Requests, with a
// Retry-After header, to any Backend API request beyond n in a sliding
// window of the given length, like Clerk's per-instance limit
// (DevelopmentRateLimit or ProductionRateLimit per RateLimitWindow).
// GET /v1/jwks is exempt, as Clerk documents "No rate limit" for it. By
// default there is no instance limit, so that tests are not slowed by
// one unless they ask; n <= 0 turns it off.
func WithRateLimit(n int, window time.Duration) Option {
	return func(c *config) { c.rateLimit, c.rateWindow = n, window }
}

// WithUserUpdateLimit sets the per-user limit on updates of one user
// (PATCH /v1/users/{id}, PATCH and PUT /v1/users/{id}/metadata): at most
// n in any window of the given length, beyond which the server answers
// 429 with Retry-After. The default is Clerk's, UserUpdateLimit per
// RateLimitWindow; n <= 0 turns it off.
func WithUserUpdateLimit(n int, window time.Duration) Option {
	return func(c *config) { c.userLimit, c.userWindow = n, window }
}

// WithWebhookSecret sets the Svix signing secret ("whsec_" + base64) used
// by SignWebhook. By default the server makes a random one.
func WithWebhookSecret(secret string) Option { return func(c *config) { c.webhookSecret = secret } }

// NewServer starts a Server. The caller must Close it.
func NewServer(opts ...Option) *Server {
	cfg := config{
		now:           time.Now,
		secretKey:     DefaultSecretKey,
		issuer:        DefaultIssuer,
		azp:           DefaultAuthorizedParty,
		sessionClaims: defaultSessionClaims,
		userLimit:     UserUpdateLimit,
		userWindow:    RateLimitWindow,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.webhookSecret == "" {
		cfg.webhookSecret = newWebhookSecret()
	}
	s := &Server{cfg: cfg, users: make(map[string]*record), perUser: make(map[string]window)}
	s.ts = httptest.NewServer(s.routes())
	s.URL = s.ts.URL
	return s
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.ts.Close() }

// ClientConfig returns a configuration for the official SDK's clients
// (user.NewClient, jwks.NewClient, ...) that talks to this server: its
// URL, an HTTP client for it and its secret key. Each call returns a new
// value, which the caller may change.
func (s *Server) ClientConfig() *clerk.ClientConfig {
	cfg := &clerk.ClientConfig{}
	cfg.URL = clerk.String(s.URL + "/v1")
	cfg.HTTPClient = s.ts.Client()
	cfg.Key = clerk.String(s.cfg.secretKey)
	return cfg
}

// SecretKey returns the secret key the server accepts.
func (s *Server) SecretKey() string { return s.cfg.secretKey }

// Request is one entry of the request log.
type Request struct {
	Method string
	// Path is the URL path, such as "/v1/users/user_2abc/metadata".
	Path  string
	Query url.Values
	// Status is the status the server answered, or 0 when the client went
	// away first.
	Status int
	// Time is when the request arrived, by the server's clock.
	Time time.Time
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		out[i] = r
	}
	return out
}

// CountRequests returns how many logged requests had the given method and
// path ("" matches any method).
func (s *Server) CountRequests(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && r.Path == path {
			n++
		}
	}
	return n
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// fault is what happens to one request.
type fault struct {
	status     int           // answer this status instead of serving, if not 0
	retryAfter time.Duration // with a Retry-After header, if > 0
	delay      time.Duration // wait this long first
}

// FailNext makes the next n requests answer status with a Clerk error
// body instead of being served. When retryAfter is positive the answer
// carries a Retry-After header with that many seconds, rounded up. A 429
// always carries one, since Clerk's always do ("Requests that have been
// rate limited will receive the Retry-After response header"): at least
// 1 second when retryAfter is not positive. Faults apply to every
// endpoint, the JWKS included, in the order queued.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// DelayNext makes each of the next n requests wait d before it is served.
// A client that gives up sooner sees a timeout.
func (s *Server) DelayNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{delay: d})
	}
}

// SetLatency delays every request by d (0 to stop), on top of any DelayNext.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users", s.listUsers)
	mux.HandleFunc("GET /v1/users/count", s.countUsers)
	mux.HandleFunc("POST /v1/users", s.createUser)
	mux.HandleFunc("GET /v1/users/{id}", s.getUser)
	mux.HandleFunc("PATCH /v1/users/{id}", s.limitUpdates(s.updateUser))
	mux.HandleFunc("DELETE /v1/users/{id}", s.deleteUser)
	mux.HandleFunc("PATCH /v1/users/{id}/metadata", s.limitUpdates(s.mergeMetadata))
	mux.HandleFunc("PUT /v1/users/{id}/metadata", s.limitUpdates(s.replaceMetadata))
	mux.HandleFunc("POST /v1/users/{id}/ban", s.setFlag(func(r *record) { r.banned = true }))
	mux.HandleFunc("POST /v1/users/{id}/unban", s.setFlag(func(r *record) { r.banned = false }))
	mux.HandleFunc("POST /v1/users/{id}/lock", s.setFlag(func(r *record) { r.locked = true }))
	mux.HandleFunc("POST /v1/users/{id}/unlock", s.setFlag(func(r *record) { r.locked = false }))
	mux.HandleFunc("POST /v1/users/{id}/profile_image", s.setProfileImage)
	mux.HandleFunc("DELETE /v1/users/{id}/profile_image", s.deleteProfileImage)
	mux.HandleFunc("POST /v1/users/{id}/verify_password", s.verifyPassword)
	mux.HandleFunc("DELETE /v1/users/{id}/mfa", s.disableMFA(true, true))
	mux.HandleFunc("DELETE /v1/users/{id}/totp", s.disableMFA(true, false))
	mux.HandleFunc("DELETE /v1/users/{id}/backup_code", s.disableMFA(false, true))
	mux.HandleFunc("DELETE /v1/users/{id}/web3_wallets/{item}", s.deleteIdentification("web3_wallet"))
	mux.HandleFunc("DELETE /v1/users/{id}/external_accounts/{item}", s.deleteIdentification("external_account"))
	mux.HandleFunc("DELETE /v1/users/{id}/passkeys/{item}", s.deleteIdentification("passkey"))
	mux.HandleFunc("GET /v1/users/{id}/organization_memberships", s.listMemberships)
	mux.HandleFunc("GET /v1/users/{id}/organization_invitations", s.listInvitations)
	mux.HandleFunc("GET /v1/users/{id}/oauth_access_tokens/{provider}", s.oauthTokens)
	mux.HandleFunc("GET /v1/jwks", s.serveJWKS)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		s.mu.Lock()
		i := len(s.requests)
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Time: s.cfg.now(),
		})
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if i < len(s.requests) { // ResetRequests may have emptied the log
				s.requests[i].Status = sw.status
			}
			s.mu.Unlock()
		}()
		w.Header().Set("Clerk-Trace-Id", newTraceID())
		w.Header().Set("Content-Type", "application/json")

		f, latency := s.nextFault()
		if !sleep(r.Context(), latency+f.delay) {
			return // the client went away
		}
		if f.status != 0 {
			faultError(f).write(sw)
			return
		}
		if e := s.authenticate(r); e != nil {
			e.write(sw)
			return
		}
		jwks := r.Method == http.MethodGet && r.URL.Path == "/v1/jwks"
		if wait, ok := s.admitInstance(); !jwks && !ok {
			errTooManyRequests(wait).write(sw)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			errResourceNotFound().write(sw)
			return
		}
		mux.ServeHTTP(sw, r)
	})
}

// authenticate checks the Authorization header the way Clerk's error
// catalogue describes: a header that is not "Bearer <key>" answers 401
// authorization_header_format_invalid, a key other than the server's 401
// clerk_key_invalid. A request without the header answers 401
// authentication_invalid (Clerk does not document which code it sends
// then).
func (s *Server) authenticate(r *http.Request) *clerkError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errAuthenticationInvalid()
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || scheme != "Bearer" || key == "" {
		return errAuthorizationHeaderFormat()
	}
	if key != s.cfg.secretKey {
		return errClerkKeyInvalid()
	}
	return nil
}

// faultError is the answer of an injected fault.
func faultError(f fault) *clerkError {
	var e *clerkError
	switch {
	case f.status == http.StatusTooManyRequests:
		e = errTooManyRequests(f.retryAfter)
	case f.status >= 500:
		e = errInternal(f.status)
	default:
		e = newError(f.status, "injected_fault", http.StatusText(f.status), "This error was injected by clerktest.")
	}
	if f.retryAfter > 0 {
		e.retryAfter = f.retryAfter
	}
	return e
}

// nextFault pops the next queued fault and reads the latency.
func (s *Server) nextFault() (fault, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f fault
	if len(s.faults) > 0 {
		f = s.faults[0]
		s.faults = s.faults[1:]
	}
	return f, s.latency
}

// window is a sliding log of request times.
type window []time.Time

// admit records a request at now and reports true, or reports false with
// how long until a slot frees, when n requests already fell within per.
func (w *window) admit(now time.Time, n int, per time.Duration) (time.Duration, bool) {
	cut := 0
	for cut < len(*w) && now.Sub((*w)[cut]) >= per {
		cut++
	}
	*w = (*w)[cut:]
	if len(*w) >= n {
		return per - now.Sub((*w)[0]), false
	}
	*w = append(*w, now)
	return 0, true
}

// admitInstance applies the instance limit, when set.
func (s *Server) admitInstance() (time.Duration, bool) {
	if s.cfg.rateLimit <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instance.admit(time.Now(), s.cfg.rateLimit, s.cfg.rateWindow)
}

// limitUpdates applies the per-user update limit to h.
func (s *Server) limitUpdates(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.userLimit > 0 {
			id := r.PathValue("id")
			s.mu.Lock()
			win := s.perUser[id]
			wait, ok := win.admit(time.Now(), s.cfg.userLimit, s.cfg.userWindow)
			s.perUser[id] = win
			s.mu.Unlock()
			if !ok {
				errTooManyRequests(wait).write(w)
				return
			}
		}
		h(w, r)
	}
}

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// base62 is the alphabet of Clerk-like IDs.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewID returns a random Clerk-like ID: prefix followed by 27 base62
// characters, such as "user_2NNEqL2nrIRdJ194ndJqAHwEfxC" for prefix "user_".
func NewID(prefix string) string {
	var b [27]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, len(prefix)+len(b))
	out = append(out, prefix...)
	for _, c := range b {
		out = append(out, base62[int(c)%len(base62)])
	}
	return string(out)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
