package clerktest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
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
// responses have the JSON shapes of the real API, so the official SDK
// (clerk-sdk-go v2) works against it unchanged; point the SDK at it with
// ClientConfig.
//
// Served under URL+"/v1", each requiring "Authorization: Bearer <secret
// key>":
//
//	GET    /users                  list (limit, offset, order_by, created_at_before/after,
//	                               last_active_at_before/after/since, user_id, email_address,
//	                               external_id, banned)
//	GET    /users/count            count with the same filters
//	GET    /users/{id}             one user
//	POST   /users                  create (email_address, first_name, last_name, username,
//	                               external_id, public/private/unsafe_metadata, created_at)
//	PATCH  /users/{id}/metadata    deep-merge metadata; a null value removes a key
//	DELETE /users/{id}             delete
//	POST   /users/{id}/ban, /unban, /lock, /unlock
//	GET    /jwks                   the public keys that verify minted session tokens
//
// Errors have Clerk's shape: {"errors":[{"code","message","long_message"}],
// "clerk_trace_id"}. Every answer carries a Clerk-Trace-Id header.
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
	window   []time.Time // start times of recent requests, for the rate limit

	keyMu   sync.Mutex
	keys    []*signingKey // published in the JWKS, current last
	keyOnce bool
}

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
// Retry-After header, to any request beyond n in a sliding window of the
// given length, like Clerk's per-instance limit (100 requests per 10 s on
// development instances, 1000 on production).
func WithRateLimit(n int, window time.Duration) Option {
	return func(c *config) { c.rateLimit, c.rateWindow = n, window }
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
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.webhookSecret == "" {
		cfg.webhookSecret = newWebhookSecret()
	}
	s := &Server{cfg: cfg, users: make(map[string]*record)}
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
// carries a Retry-After header with that many seconds, rounded up. Faults
// apply to every endpoint, the JWKS included, in the order queued.
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
	mux.HandleFunc("DELETE /v1/users/{id}", s.deleteUser)
	mux.HandleFunc("PATCH /v1/users/{id}/metadata", s.updateMetadata)
	mux.HandleFunc("POST /v1/users/{id}/ban", s.setFlag(func(r *record, now int64) { r.banned = true }))
	mux.HandleFunc("POST /v1/users/{id}/unban", s.setFlag(func(r *record, now int64) { r.banned = false }))
	mux.HandleFunc("POST /v1/users/{id}/lock", s.setFlag(func(r *record, now int64) { r.locked = true }))
	mux.HandleFunc("POST /v1/users/{id}/unlock", s.setFlag(func(r *record, now int64) { r.locked = false }))
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
			writeFault(sw, f)
			return
		}
		if wait, ok := s.admit(); !ok {
			writeFault(sw, fault{status: http.StatusTooManyRequests, retryAfter: wait})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.cfg.secretKey {
			writeError(sw, http.StatusUnauthorized, "authentication_invalid",
				"Invalid authentication", "The provided secret key is invalid or missing.")
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			writeError(sw, http.StatusNotFound, "resource_not_found",
				"not found", "The requested resource was not found.")
			return
		}
		mux.ServeHTTP(sw, r)
	})
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

// admit applies the rate limit: it records the request and reports true,
// or reports false with how long until a slot frees.
func (s *Server) admit() (time.Duration, bool) {
	if s.cfg.rateLimit <= 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cut := 0
	for cut < len(s.window) && now.Sub(s.window[cut]) >= s.cfg.rateWindow {
		cut++
	}
	s.window = s.window[cut:]
	if len(s.window) >= s.cfg.rateLimit {
		return s.cfg.rateWindow - now.Sub(s.window[0]), false
	}
	s.window = append(s.window, now)
	return 0, true
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

func writeFault(w http.ResponseWriter, f fault) {
	if f.retryAfter > 0 {
		secs := int(math.Ceil(f.retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	switch {
	case f.status == http.StatusTooManyRequests:
		writeError(w, f.status, "too_many_requests", "Too many requests",
			"Too many requests, please retry later.")
	case f.status >= 500:
		writeError(w, f.status, "internal_clerk_error", "Oops, an unexpected error occurred",
			"There was an internal error on our servers. We've been notified and are working on fixing it.")
	default:
		writeError(w, f.status, "injected_fault", http.StatusText(f.status),
			"This error was injected by clerktest.")
	}
}

// apiError is one entry of Clerk's error body.
type apiError struct {
	Code        string         `json:"code"`
	Message     string         `json:"message"`
	LongMessage string         `json:"long_message"`
	Meta        map[string]any `json:"meta"`
}

// writeError writes a Clerk error body.
func writeError(w http.ResponseWriter, status int, code, msg, long string) {
	writeErrorMeta(w, status, code, msg, long, map[string]any{})
}

func writeErrorMeta(w http.ResponseWriter, status int, code, msg, long string, meta map[string]any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors  []apiError `json:"errors"`
		TraceID string     `json:"clerk_trace_id"`
	}{
		Errors:  []apiError{{Code: code, Message: msg, LongMessage: long, Meta: meta}},
		TraceID: w.Header().Get("Clerk-Trace-Id"),
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
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
