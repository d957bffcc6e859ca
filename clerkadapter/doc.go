// Package clerkadapter connects Steward to Clerk through the official SDK
// (github.com/clerk/clerk-sdk-go/v2): an IdentityProvider over the Backend
// API, session authentication that yields rbac principals, and a webhook
// handler. Package clerktest is a fake Clerk to test all three offline.
//
// # Identity provider
//
// New (or NewFromSecretKey) returns a *Provider, a steward.IdentityProvider:
//
//	prov := clerkadapter.New(cfg) // cfg: *clerk.ClientConfig with the secret key
//
// It maps clerk.User to steward.User (email addresses with their
// verification, millisecond timestamps as UTC times, metadata as JSON
// values), deep-merges metadata with Clerk's metadata endpoint, treats
// Clerk's 404 on delete as done, and pages ListUsers lazily by creation
// time. User IDs are checked ("user_" and letters, digits, '_' or '-')
// before they reach a URL.
//
// Every call is retried on 429 (waiting at least the Retry-After the
// server sent), 5xx, network errors and attempts slower than
// WithAttemptTimeout, with exponential backoff and jitter
// (cenkalti/backoff), up to WithMaxAttempts and never past the context:
// when the wait would outlast the context's deadline, the call returns at
// once. WithRateLimit keeps a scan under Clerk's request limit.
//
// # Sessions
//
// NewSessionAuth returns a *SessionAuth whose Handler verifies the session
// token of each request (Authorization: Bearer, else the __session
// cookie) and puts an rbac.Principal in the request's context:
//
//	auth := clerkadapter.NewSessionAuth(cfg, &clerkadapter.SessionOptions{
//		AuthorizedParties: []string{"https://app.example.com"},
//	})
//	mux.Handle("/api/", auth.Handler(api))
//
// Tokens are verified with go-jose (the SDK's JOSE library) against the
// instance's JWKS, fetched from the Backend API and cached by key ID. An
// unknown key ID triggers one fetch, and fetches are at least
// MinRefreshInterval apart, so a rotation is picked up at once while
// made-up key IDs cannot flood Clerk. Verification accepts exactly what
// the SDK's jwt.Verify accepts (the tests use it as the oracle), except
// tokens without sub or exp, which it rejects, and it runs close to the
// cost of the RSA signature check alone. A request without a valid token
// passes through without a principal, so rbac.Require answers 401 and
// public routes keep working.
//
// # Where roles come from
//
// A principal's role and account state (email verified, banned, locked)
// come from one of two sources, with a trade-off:
//
//   - Session claims (the default). Clerk puts the user's public metadata
//     in the session token when the instance's session token template
//     says {"metadata": "{{user.public_metadata}}", "email_verified":
//     "{{user.email_verified}}"} (SessionOptions.RoleClaim and
//     EmailVerifiedClaim name other claims). This costs nothing per
//     request, but a change (a new role, a ban) only shows once the
//     browser refreshes its token, within about a minute, and a token
//     already issued keeps its old claims until it expires.
//   - LiveRoles (SessionOptions.Roles). The account is read through the
//     IdentityProvider and cached for a short TTL (30 s by default);
//     WebhookOptions.Roles invalidates a user's entry on user.updated and
//     user.deleted, so changes apply on the next request, as the data
//     model requires. This costs one Backend API read per user per TTL,
//     counts against Clerk's rate limit, and adds Clerk's latency to a
//     user's first request after expiry; when Clerk fails, a cached
//     account up to StaleLimit old is used, then requests get no
//     principal.
//
// The role is public metadata "role": "user" or "admin"; anything else is
// the default role "user".
//
// # Webhooks
//
// NewWebhookHandler returns an http.Handler for Clerk's webhook endpoint.
// It verifies Svix signatures (svix-webhooks), rejects timestamps more
// than five minutes from now and message IDs it has already accepted, and
// calls OnUserCreated, OnUserUpdated or OnUserDeleted with a typed
// UserEvent. A failed handler answers 500 so Svix delivers again; handlers
// must be idempotent, since Svix delivers at least once.
//
// # Errors
//
// Provider methods return errors that wrap the library's sentinels
// (steward.ErrUserNotFound, ErrInvalidUserID, ErrInvalidPatch,
// ErrInvalidQuery) or the context's error, and, for an answer of the
// Backend API, an *APIError with the HTTP status, Clerk's error code and
// trace ID (errors.As). A 404 counts as a missing user only with Clerk's
// resource_not_found code, so a proxy or a wrong URL is never mistaken for
// a deleted user. Error text never holds a user ID, an email address, a
// token or the secret key: request URLs and Clerk's long messages are
// left out.
//
// SessionAuth.Verify returns ErrNoToken for no token and errors wrapping
// ErrInvalidToken for tokens it rejects (also ErrTokenExpired or
// ErrUnknownKey when that is why), or ErrKeysUnavailable when the JWKS
// cannot be fetched. The webhook handler reports ErrWebhookSignature,
// ErrWebhookTimestamp, ErrWebhookReplay and ErrWebhookPayload to
// WebhookOptions.OnReject.
package clerkadapter
