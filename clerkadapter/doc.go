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
// when a wait (a Retry-After, a backoff, or a slot of WithRateLimit's
// limiter) would outlast the context's deadline, the call returns at
// once. Under a context from privacy.DeferRateLimits (riverjobs' workers
// make one) a 429 is not waited out: the call returns the *APIError at
// once, whose Throttled gives the Retry-After, for the caller to
// reschedule. WithRateLimit keeps a scan under Clerk's request limit.
//
// Clerk also limits updates of one user to 10 per 10 seconds
// (UpdateMetadata counts); the 429 it answers carries Retry-After, which
// UpdateMetadata waits out within its context.
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
// unknown key ID triggers one fetch, and successful fetches are at least
// MinRefreshInterval apart, so a rotation is picked up at once while
// made-up key IDs cannot flood Clerk. A failed fetch is retried soon:
// after JWKSRetryInterval (1 s), doubling with each failure in a row up
// to MinRefreshInterval, so an outage at start-up does not reject valid
// tokens for long. Concurrent requests share one fetch, and each waits
// for it no longer than its context's deadline. Verification accepts
// exactly what the SDK's jwt.Verify accepts (the tests use it as the
// oracle), except tokens without sub or exp, which it rejects, and it
// runs close to the cost of the RSA signature check alone. A request
// without a valid token passes through without a principal, so
// rbac.Require answers 401 and public routes keep working.
//
// SessionOptions.Fence (the privacy.Service) refuses the tokens of a user
// whose erasure has begun, from the moment the request opens, in claims
// and live modes, on every instance sharing the Service's request store:
// the answer comes from the database, not from a cache of this process.
//
// A token of a pending session ("sts": "pending", a version 2 claim: the
// user has session tasks left, such as choosing an organization) counts
// as signed out, as in Clerk's SDKs, unless
// SessionOptions.TreatPendingAsSignedIn is set.
//
// An organization session (the active organization of a version 2
// token's "o" claim, or of version 1's org_* claims) scopes the
// principal: OrgID, OrgRole and OrgPermissions. Those permissions hold in
// that organization only: check them with rbac.RequireOrg or
// Authorizer.AllowedInOrg, which name the organization. rbac.Require and
// Authorizer.Allowed, the global checks, never count them.
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
//     request for the default role, but a change only shows once the
//     browser refreshes its token, within about a minute, and a token
//     already issued keeps its old claims until it expires. A token
//     claiming a role above the default (an admin's) is therefore
//     confirmed with the Backend API by default (see below).
//   - LiveRoles (SessionOptions.Roles). The account is read through the
//     IdentityProvider and cached for a short TTL (30 s by default);
//     WebhookOptions.Roles invalidates a user's entry on user.updated and
//     user.deleted, so changes apply on the next request, as the data
//     model requires (in every process with an InvalidationLog, see
//     "Several instances"). This costs one Backend API read per user per TTL,
//     counts against Clerk's rate limit, and adds Clerk's latency to a
//     user's first request after expiry; when Clerk fails, a cached
//     account up to StaleLimit old is used, then requests get no
//     principal.
//
// The role is public metadata "role": "user" or "admin"; anything else is
// the default role "user".
//
// # What Clerk guarantees on a ban
//
// Banning a user "means that all their sessions are revoked and they are
// not allowed to sign in again" (POST /v1/users/{user_id}/ban): Clerk
// mints no new session token for them. A token minted before the ban is
// not revoked, though: it verifies until its exp, up to a minute (Clerk's
// tokens live 60 seconds) plus the leeway, and its claims carry no ban
// flag. In claims mode a banned user's last token thus still verifies.
//
// The safe default: SessionAuth confirms every token whose role claim is
// above the policy's default role through SessionOptions.ConfirmRoles (by
// default a LiveRoles over the same Backend API, caching for
// DefaultConfirmTTL), and the account it returns decides role,
// verification, ban and lock. A banned, locked or demoted admin loses the
// admin's permissions on the next request (at once when the user.updated
// webhook reaches WebhookOptions.Roles set to the SessionAuth, else
// within DefaultConfirmTTL). When Clerk cannot answer, an account
// confirmed within the last minute (a session token's lifetime) stands
// in; otherwise the request gets no principal.
// Tokens of the default role are not confirmed: a banned user keeps the
// default role's permissions until the token expires. Use LiveRoles
// (SessionOptions.Roles) to check every user's account, or
// TrustRoleClaims to accept claimed roles as they are.
//
// # Webhooks
//
// NewWebhookHandler returns an http.Handler for Clerk's webhook endpoint.
// It refuses a signing secret that is empty, "whsec_" alone (an unset
// environment variable) or shorter than the 24 bytes Svix issues
// (MinWebhookSecretBytes), since a handler with such a key accepts forged
// deliveries. It verifies Svix signatures (svix-webhooks), rejects
// timestamps more than five minutes from now and message IDs it has
// already accepted, and calls OnUserCreated, OnUserUpdated or
// OnUserDeleted with a typed UserEvent. A failed handler answers 500 so
// Svix delivers again; handlers must be idempotent, since Svix delivers at
// least once. Two are ready made: EraseDeletedUsers erases the
// application's data of a user deleted in Clerk's own pages or dashboard
// (the identity step recorded as done), and AssignDefaultRole writes the
// default role of a new account; both are idempotent:
//
//	wh, err := clerkadapter.NewWebhookHandler(secret, &clerkadapter.WebhookOptions{
//		OnUserDeleted: clerkadapter.EraseDeletedUsers(svc),
//		OnUserCreated: clerkadapter.AssignDefaultRole(prov, "", auditLog),
//		Roles:         auth,
//	})
//
// The Provider is a steward.IDValidator: privacy's erasure refuses an ID
// that is not "user_..." before it touches any store.
//
// Accepted message IDs go to a ReplayStore (WebhookOptions.Replay), each
// kept until its signed timestamp has left the tolerance, plus the
// tolerance again for replicas whose clocks run behind; a replay after
// that is refused by the timestamp check. The store fails closed: when it
// cannot record the ID the handler answers 503 and processes nothing, so
// Svix retries rather than the event being handled without protection.
// When a handler finishes, the ID is marked handled, and a redelivery of
// the message (Svix's retry after an answer it did not get) is answered
// 200 {"ok": true, "duplicate": true} without being processed again, so
// Svix stops; a delivery while the handling is still under way, here or
// on another replica, is answered 409 and retried later, since that
// handling may yet fail. When a handler fails, the ID is forgotten so
// that Svix's next attempt is accepted; when the process dies mid-event,
// the ID stays until it expires and a later attempt (Svix retries for
// days, each attempt freshly timestamped) is accepted then.
//
// # Several instances
//
// Two ports carry what several replicas of an application share; both
// use only standard types, so sqlstore implements them over the
// application's database without importing this package:
//
//   - ReplayStore, for the webhook handler. The default,
//     MemoryReplayStore, protects one process only: a delivery replayed
//     to another replica would be processed there. sqlstore's
//     WebhookMessages keeps the IDs in a table, recorded by one atomic
//     upsert with the expiry judged by the database's clock, so the same
//     message given to two replicas at once is processed by one and
//     refused (409) by the other while it is handled, acknowledged as a
//     duplicate after.
//   - InvalidationLog, for LiveRoles (LiveRolesOptions.Invalidations).
//     Without it an invalidation, from the webhook or from useradmin,
//     clears only the cache of the process that received it; the others
//     serve the old role, ban or lock until their entry expires (the
//     TTL, or up to StaleLimit while Clerk fails). With sqlstore's
//     RoleInvalidations shared by every process and LiveRoles.Run going
//     in each, an invalidation is recorded in the database
//     (InvalidateContext returns the error when it cannot be; Invalidate
//     reports it to OnError) and every process drops the entry within
//     PollInterval (one second by default) plus one read of the log. No
//     request waits on the log: Run polls it on its own. While the log
//     cannot be reached, OnError hears of it and every process falls
//     back to the TTL. MemoryInvalidations shares invalidations among
//     the LiveRoles of one process only.
//
// With several processes, give the webhook handler a SessionAuth or
// LiveRoles as WebhookOptions.Roles: a delivery whose invalidation cannot
// be recorded then answers 500 and Svix delivers it again. The default
// role confirmations of SessionAuth (ConfirmRoles) are cached per process
// for DefaultConfirmTTL; pass a LiveRoles with an InvalidationLog as
// ConfirmRoles for them to be invalidated everywhere too. Package
// storetest holds the conformance suites of both ports.
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
// cannot be fetched (also the context's error when the request's
// deadline came first). Authenticate adds ErrSessionPending and
// ErrSessionFenced (wrapping privacy.ErrFenced). LiveRoles
// returns the context's error when a read outlasts the request's
// deadline. LiveRoles.InvalidateContext, Poll and Run, and
// SessionAuth.InvalidateContext, return errors wrapping the
// InvalidationLog's (never holding a user ID); Poll and Run fail at once
// without LiveRolesOptions.Invalidations. NewWebhookHandler returns
// ErrWebhookSecret; the webhook handler reports ErrWebhookSignature,
// ErrWebhookTimestamp, ErrWebhookReplay and ErrWebhookPayload to
// WebhookOptions.OnReject, and, for a 503, an error wrapping the
// ReplayStore's.
package clerkadapter
