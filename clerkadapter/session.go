package clerkadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// Defaults of SessionOptions.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat, as in
	// Clerk's JavaScript SDK.
	DefaultLeeway = 5 * time.Second
	// DefaultMinRefreshInterval is the least time between two successful
	// JWKS fetches.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultJWKSRetryInterval is how soon a failed JWKS fetch may be
	// retried; the wait doubles with each failure in a row, up to the
	// minimum refresh interval.
	DefaultJWKSRetryInterval = time.Second
	// DefaultMaxKeyAge is how long a fetched JWKS is trusted before the
	// next request fetches it again.
	DefaultMaxKeyAge = time.Hour
	// DefaultJWKSTimeout bounds one JWKS fetch.
	DefaultJWKSTimeout = 5 * time.Second
	// DefaultRoleClaim is where the session token carries the role: the
	// "metadata" claim that Clerk's role-based access guide adds to the
	// session token ({"metadata": "{{user.public_metadata}}"}).
	DefaultRoleClaim = "metadata.role"
	// DefaultEmailVerifiedClaim is the claim that says the primary email
	// address is verified ({"email_verified": "{{user.email_verified}}"}).
	DefaultEmailVerifiedClaim = "email_verified"
	// DefaultConfirmTTL is how long the default ConfirmRoles source keeps
	// a confirmed account.
	DefaultConfirmTTL = 5 * time.Second
	// SessionCookie is the cookie Clerk keeps the session token in.
	SessionCookie = "__session"
	// maxTokenLen bounds the tokens SessionAuth will parse.
	maxTokenLen = 16 << 10
)

// Errors of session verification. Every rejected token's error wraps
// ErrInvalidToken, and also ErrTokenExpired or ErrUnknownKey when that is
// the reason.
var (
	// ErrNoToken reports a request without a session token.
	ErrNoToken = errors.New("clerkadapter: no session token")
	// ErrInvalidToken reports a token that does not verify: malformed,
	// badly signed, out of its validity period, or with a wrong issuer or
	// authorized party.
	ErrInvalidToken = errors.New("clerkadapter: invalid session token")
	// ErrTokenExpired reports a token past its exp (plus leeway).
	ErrTokenExpired = errors.New("clerkadapter: session token expired")
	// ErrUnknownKey reports a token signed by a key the instance's JWKS
	// does not hold, even after a refresh.
	ErrUnknownKey = errors.New("clerkadapter: unknown signing key")
	// ErrKeysUnavailable reports that the JWKS could not be fetched.
	ErrKeysUnavailable = errors.New("clerkadapter: JWKS unavailable")
	// ErrSessionFenced reports a valid token of a user whose erasure has
	// begun or ended (SessionOptions.Fence): the request gets no
	// principal. The error also wraps the fence's (privacy.ErrFenced).
	ErrSessionFenced = errors.New("clerkadapter: the session's user is being erased")
	// ErrSessionPending reports a valid token of a pending session ("sts":
	// "pending": the user has session tasks left, such as choosing an
	// organization), which counts as signed out unless
	// SessionOptions.TreatPendingAsSignedIn is set.
	ErrSessionPending = errors.New("clerkadapter: session pending")
)

// SessionOptions configures a SessionAuth. The zero value (or nil) gives
// the defaults.
type SessionOptions struct {
	// Issuer, when set, is the exact "iss" tokens must carry: the
	// instance's Frontend API URL (or proxy URL). When empty, the rule of
	// the SDK's jwt.Verify applies: iss must start with "https://clerk."
	// or contain ".clerk.accounts".
	Issuer string

	// AuthorizedParties, when set, lists the origins allowed in the "azp"
	// claim, such as "https://app.example.com". A token with another azp
	// is rejected; one without azp passes, as in the SDK's
	// AuthorizedPartyMatches. Setting it is recommended: it stops tokens
	// minted for another site of the same instance.
	AuthorizedParties []string

	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; negative means none.
	Leeway time.Duration

	// Roles, when set, supplies each user's role and account state
	// (verified, banned, locked) from the identity provider, such as a
	// LiveRoles; the session's claims then only say who the user is.
	// When nil, they come from the token's claims (RoleClaim,
	// EmailVerifiedClaim). See the package documentation for the
	// trade-off.
	Roles RoleSource

	// TrustRoleClaims, when Roles is nil, takes every role from the
	// token's claims, also roles above the policy's default role, with
	// no account state: a banned, locked or demoted admin then keeps the
	// admin's permissions until the token expires (up to a minute). By
	// default (false) a token claiming a role other than the default one
	// is confirmed through ConfirmRoles, and the account it returns
	// decides role, verification, ban and lock.
	TrustRoleClaims bool

	// ConfirmRoles confirms the accounts of tokens claiming a role above
	// the default (see TrustRoleClaims); an error gives the request no
	// principal. nil means a LiveRoles over the Backend API configured by
	// NewSessionAuth's cfg, caching each account for DefaultConfirmTTL
	// and, while Clerk cannot answer, using one confirmed within the last
	// minute; SessionAuth.Invalidate (which WebhookOptions.Roles calls)
	// drops its entries.
	ConfirmRoles RoleSource

	// TreatPendingAsSignedIn accepts tokens of pending sessions ("sts":
	// "pending"). By default they count as signed out, as in Clerk's
	// SDKs ("By default, pending sessions are treated as signed-out"):
	// the request gets no principal.
	TreatPendingAsSignedIn bool

	// RoleClaim is the dotted path of the claim holding the role when
	// Roles is nil. Empty means DefaultRoleClaim. A missing or unknown
	// role is the policy's default role (see ParseRole).
	RoleClaim string

	// ParseRole turns the role claim's value into a role; nil means
	// rbac.ParseRole (the default policy: "user" or "admin", anything else
	// "user"). Pass an Authorizer's ParseRole for a custom policy.
	ParseRole func(v any) rbac.Role

	// EmailVerifiedClaim is the dotted path of the claim saying whether the
	// primary email address is verified (true, or the string "verified")
	// when Roles is nil. Empty means DefaultEmailVerifiedClaim. A token
	// without it counts as unverified.
	EmailVerifiedClaim string

	// MinRefreshInterval is the least time between two successful JWKS
	// fetches, so tokens with unknown key IDs cannot make the server
	// hammer Clerk. Zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

	// JWKSRetryInterval is how soon a failed JWKS fetch may be retried;
	// the wait doubles with each failure in a row, up to
	// MinRefreshInterval. Zero means DefaultJWKSRetryInterval.
	JWKSRetryInterval time.Duration

	// MaxKeyAge is how long a fetched JWKS is trusted; after it, the next
	// request fetches it again (keeping the old keys if that fails).
	// Zero means DefaultMaxKeyAge.
	MaxKeyAge time.Duration

	// JWKSTimeout bounds one JWKS fetch. Zero means DefaultJWKSTimeout.
	JWKSTimeout time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// OnReject, when set, is called for each request whose token was
	// rejected (not for requests without one), with an error that never
	// contains the token. It is for logging and metrics.
	OnReject func(r *http.Request, err error)

	// Fence, when set, is asked about every verified session's user
	// before the request gets a principal: give it the privacy.Service
	// (Service.CheckFence). From the moment an erasure of the user opens
	// (or its grace period ends), in claims and live modes alike, their
	// still-valid tokens are refused (ErrSessionFenced), by every
	// instance that shares the Service's request store; so is a user the
	// fence cannot answer for (its store is down).
	Fence interface {
		CheckFence(ctx context.Context, userID string) error
	}
}

// SessionAuth verifies Clerk session tokens and turns them into
// rbac.Principals. It is safe for concurrent use.
type SessionAuth struct {
	keys        *keyCache
	issuer      string
	parties     map[string]bool
	leeway      time.Duration
	roles       RoleSource
	confirm     RoleSource // nil when claims are trusted or Roles is set
	defaultRole rbac.Role
	pendingOK   bool
	roleClaim   []string
	parseRole   func(any) rbac.Role
	emailClaim  []string
	now         func() time.Time
	onReject    func(*http.Request, error)
	fence       interface {
		CheckFence(ctx context.Context, userID string) error
	}
}

// NewSessionAuth returns a SessionAuth that verifies tokens with the
// instance's JWKS, fetched through the Backend API configured by cfg
// (GET /v1/jwks with the secret key) and cached by key ID. opts may be
// nil.
func NewSessionAuth(cfg *clerk.ClientConfig, opts *SessionOptions) *SessionAuth {
	var o SessionOptions
	if opts != nil {
		o = *opts
	}
	var cc clerk.ClientConfig
	if cfg != nil {
		cc = *cfg
	}
	if cc.HTTPClient == nil {
		cc.HTTPClient = &http.Client{}
	}
	a := &SessionAuth{
		issuer:     o.Issuer,
		leeway:     o.Leeway,
		roles:      o.Roles,
		roleClaim:  splitPath(o.RoleClaim, DefaultRoleClaim),
		parseRole:  o.ParseRole,
		emailClaim: splitPath(o.EmailVerifiedClaim, DefaultEmailVerifiedClaim),
		now:        o.Now,
		onReject:   o.OnReject,
		fence:      o.Fence,
	}
	if a.leeway == 0 {
		a.leeway = DefaultLeeway
	} else if a.leeway < 0 {
		a.leeway = 0
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.parseRole == nil {
		a.parseRole = rbac.ParseRole
	}
	a.defaultRole = a.parseRole(nil)
	a.pendingOK = o.TreatPendingAsSignedIn
	if a.roles == nil && !o.TrustRoleClaims {
		a.confirm = o.ConfirmRoles
		if a.confirm == nil {
			ccfg := cc
			prov := New(&ccfg, WithMaxAttempts(3))
			a.confirm = NewLiveRoles(prov, &LiveRolesOptions{
				TTL: DefaultConfirmTTL, StaleLimit: clerkTokenLifetime, ParseRole: a.parseRole,
				ReadTimeout: orDefault(o.JWKSTimeout, DefaultJWKSTimeout), Now: a.now,
			})
		}
	}
	if len(o.AuthorizedParties) > 0 {
		a.parties = make(map[string]bool, len(o.AuthorizedParties))
		for _, p := range o.AuthorizedParties {
			a.parties[p] = true
		}
	}
	a.keys = &keyCache{
		client:        jwks.NewClient(&cc),
		now:           a.now,
		minInterval:   orDefault(o.MinRefreshInterval, DefaultMinRefreshInterval),
		retryInterval: orDefault(o.JWKSRetryInterval, DefaultJWKSRetryInterval),
		maxAge:        orDefault(o.MaxKeyAge, DefaultMaxKeyAge),
		timeout:       orDefault(o.JWKSTimeout, DefaultJWKSTimeout),
	}
	return a
}

// clerkTokenLifetime is the lifetime of Clerk's session tokens, which it
// refreshes every 60 seconds.
const clerkTokenLifetime = 60 * time.Second

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func splitPath(p, def string) []string {
	if p == "" {
		p = def
	}
	return strings.Split(p, ".")
}

// Claims are the verified claims of a Clerk session token.
type Claims struct {
	// Subject is the user ID ("sub").
	Subject string
	// SessionID is the session's ID ("sid").
	SessionID string
	// Issuer is the instance's Frontend API URL ("iss").
	Issuer string
	// ID is the token's unique ID ("jti", version 2 tokens).
	ID string
	// Version is the token format ("v"): 2, or 0 for version 1 tokens,
	// which carry no "v".
	Version int
	// SessionStatus is the session's status ("sts", version 2 tokens):
	// "active", "pending", or "" when the token does not say.
	SessionStatus string
	// AuthorizedParty is the origin the token was minted for ("azp").
	AuthorizedParty string
	IssuedAt        time.Time
	NotBefore       time.Time
	Expiry          time.Time
	// OrgID, OrgSlug, OrgRole and OrgPermissions describe the active
	// organization, from version 1 claims (org_id, ...) or version 2
	// ones (o, fea), as the SDK reads them.
	OrgID          string
	OrgSlug        string
	OrgRole        string
	OrgPermissions []string

	payload  []byte
	metadata json.RawMessage // the "metadata" claim, or nil
	emailVer json.RawMessage // the "email_verified" claim, or nil
}

// Claim returns the value at a dotted path of the token's claims, such as
// "metadata.role", decoded as JSON values (objects as map[string]any).
func (c *Claims) Claim(path string) (any, bool) {
	return c.lookup(strings.Split(path, "."))
}

// lookup decodes only what the path needs, starting from the claims
// already split out when the path begins with one of them.
func (c *Claims) lookup(path []string) (any, bool) {
	switch {
	case path[0] == "metadata" && c.metadata != nil:
		return lookupRaw(c.metadata, path[1:])
	case path[0] == "email_verified" && c.emailVer != nil:
		return lookupRaw(c.emailVer, path[1:])
	case path[0] == "metadata" || path[0] == "email_verified":
		return nil, false // absent from the payload
	}
	return lookupRaw(c.payload, path)
}

// lookupRaw descends path through raw JSON objects.
func lookupRaw(raw json.RawMessage, path []string) (any, bool) {
	for _, key := range path {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil, false
		}
		next, ok := obj[key]
		if !ok {
			return nil, false
		}
		raw = next
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return v, true
}

// wireClaims decodes a token's payload. Its fields and types are those
// the SDK's jwt.Verify decodes (clerk.SessionClaims and its version 2
// organization claims), so that a payload one rejects as malformed the
// other rejects too.
type wireClaims struct {
	Issuer          string               `json:"iss"`
	Subject         string               `json:"sub"`
	Audience        josejwt.Audience     `json:"aud"`
	Expiry          *josejwt.NumericDate `json:"exp"`
	NotBefore       *josejwt.NumericDate `json:"nbf"`
	IssuedAt        *josejwt.NumericDate `json:"iat"`
	ID              string               `json:"jti"`
	Version         int                  `json:"v"`
	SessionID       string               `json:"sid"`
	AuthorizedParty string               `json:"azp"`
	OrgID           string               `json:"org_id"`
	OrgSlug         string               `json:"org_slug"`
	OrgRole         string               `json:"org_role"`
	OrgPermissions  []string             `json:"org_permissions"`
	Actor           json.RawMessage      `json:"act"`
	FVA             [2]int64             `json:"fva"`
	Features        string               `json:"fea"`
	SessionStatus   string               `json:"sts"`
	// Metadata and EmailVerified are the custom claims of Clerk's
	// recommended session token template, kept raw so that the default
	// role and email claims need no second pass over the payload.
	Metadata      json.RawMessage `json:"metadata"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Org           struct {
		ID                        string `json:"id"`
		Slug                      string `json:"slg"`
		Role                      string `json:"rol"`
		Permissions               string `json:"per"`
		FeaturePermissionMappings string `json:"fpm"`
	} `json:"o"`
}

// invalid wraps ErrInvalidToken with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

// Verify verifies a session token: a compact RS256 JWS whose key ID is in
// the instance's JWKS, with a valid signature, within exp and nbf (and iat
// not in the future) give or take the leeway, with an issuer and
// authorized party the options accept, and with sub and exp present. It
// accepts what the SDK's jwt.Verify accepts, except tokens without sub or
// exp and JWS JSON serialisations, which it rejects.
func (a *SessionAuth) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > maxTokenLen {
		return nil, invalid("longer than %d bytes", maxTokenLen)
	}
	if strings.Count(token, ".") != 2 {
		return nil, invalid("not a compact JWS")
	}
	jws, err := jose.ParseSigned(token)
	if err != nil {
		return nil, invalid("malformed: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("%d signatures, want 1", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != string(jose.RS256) {
		return nil, invalid("algorithm %q, want RS256", h.Algorithm)
	}
	if h.KeyID == "" {
		return nil, invalid("no key ID (kid)")
	}
	key, err := a.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalid("signature does not verify")
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("claims do not decode: %v", err)
	}

	now := a.now()
	switch {
	case w.Expiry == nil:
		return nil, invalid("no exp claim")
	case w.Subject == "":
		return nil, invalid("no sub claim")
	case w.NotBefore != nil && now.Add(a.leeway).Before(w.NotBefore.Time()):
		return nil, invalid("not valid before %s", w.NotBefore.Time().UTC().Format(time.RFC3339))
	case now.Add(-a.leeway).After(w.Expiry.Time()):
		return nil, fmt.Errorf("%w: %w at %s", ErrInvalidToken, ErrTokenExpired, w.Expiry.Time().UTC().Format(time.RFC3339))
	case w.IssuedAt != nil && now.Add(a.leeway).Before(w.IssuedAt.Time()):
		return nil, invalid("issued in the future")
	}
	if !a.validIssuer(w.Issuer) {
		return nil, invalid("issuer not accepted")
	}
	if a.parties != nil && w.AuthorizedParty != "" && !a.parties[w.AuthorizedParty] {
		return nil, invalid("authorized party not accepted")
	}

	c := &Claims{
		Subject:         w.Subject,
		SessionID:       w.SessionID,
		Issuer:          w.Issuer,
		ID:              w.ID,
		Version:         w.Version,
		SessionStatus:   w.SessionStatus,
		AuthorizedParty: w.AuthorizedParty,
		IssuedAt:        numericTime(w.IssuedAt),
		NotBefore:       numericTime(w.NotBefore),
		Expiry:          numericTime(w.Expiry),
		OrgID:           w.OrgID,
		OrgSlug:         w.OrgSlug,
		OrgRole:         w.OrgRole,
		OrgPermissions:  w.OrgPermissions,
		payload:         payload,
		metadata:        w.Metadata,
		emailVer:        w.EmailVerified,
	}
	if w.Version == 2 && w.Org.ID != "" {
		c.OrgID = w.Org.ID
		c.OrgSlug = w.Org.Slug
		c.OrgRole = "org:" + w.Org.Role
		c.OrgPermissions = orgPermissions(w.Features, w.Org.Permissions, w.Org.FeaturePermissionMappings)
	}
	return c, nil
}

func numericTime(n *josejwt.NumericDate) time.Time {
	if n == nil {
		return time.Time{}
	}
	return n.Time().UTC()
}

func (a *SessionAuth) validIssuer(iss string) bool {
	if a.issuer != "" {
		return iss == a.issuer
	}
	return strings.HasPrefix(iss, "https://clerk.") || strings.Contains(iss, ".clerk.accounts")
}

// orgPermissions expands version 2 organization claims the way the SDK
// does: for each organization feature ("o:posts") in fea, the bits of its
// mapping in fpm select permission names from per ("org:posts:read").
func orgPermissions(fea, per, fpm string) []string {
	perms := strings.Split(per, ",")
	mappings := strings.Split(fpm, ",")
	out := make([]string, 0)
	for i, feature := range strings.Split(fea, ",") {
		scope, name, ok := strings.Cut(feature, ":")
		if !ok || !strings.Contains(scope, "o") || i >= len(mappings) {
			continue
		}
		if strings.Contains(name, ":") { // the SDK keeps only the second part
			name, _, _ = strings.Cut(name, ":")
		}
		mapping, err := strconv.Atoi(mappings[i])
		if err != nil {
			continue
		}
		var bits []int
		for n := mapping; n > 0; n >>= 1 {
			bits = append(bits, n&1)
		}
		if len(bits) > len(perms) {
			continue
		}
		for j, bit := range bits {
			if bit == 1 {
				out = append(out, "org:"+name+":"+perms[j])
			}
		}
	}
	return out
}

// Token returns the session token of r: the bearer token of the
// Authorization header when it has one (it wins over the cookie, as in
// Clerk's SDKs), else the __session cookie, else "".
func Token(r *http.Request) string {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// Authenticate verifies the session token of r (see Token and Verify) and
// returns the principal it stands for: the user ID and organization from
// the claims, and the role and account state from the RoleSource, or else
// from the claims (confirming roles above the default one, see
// SessionOptions.TrustRoleClaims). It returns ErrNoToken when r carries
// no token and ErrSessionPending for a pending session, unless
// SessionOptions.TreatPendingAsSignedIn is set, and ErrSessionFenced for
// a user whose erasure has begun (SessionOptions.Fence). It honours r's context:
// a lookup that would outlast its deadline fails at once.
func (a *SessionAuth) Authenticate(r *http.Request) (rbac.Principal, error) {
	c, err := a.Verify(r.Context(), Token(r))
	if err != nil {
		return rbac.Principal{}, err
	}
	if c.SessionStatus == "pending" && !a.pendingOK {
		return rbac.Principal{}, ErrSessionPending
	}
	return a.principal(r.Context(), c)
}

func (a *SessionAuth) principal(ctx context.Context, c *Claims) (rbac.Principal, error) {
	if a.fence != nil {
		if err := a.fence.CheckFence(ctx, c.Subject); err != nil {
			if errors.Is(err, privacy.ErrFenced) {
				return rbac.Principal{}, fmt.Errorf("%w: %w", ErrSessionFenced, err)
			}
			return rbac.Principal{}, fmt.Errorf("clerkadapter: checking whether the session's user is being erased: %w", err)
		}
	}
	p := rbac.Principal{UserID: c.Subject, OrgID: c.OrgID, OrgRole: c.OrgRole}
	if len(c.OrgPermissions) > 0 {
		p.OrgPermissions = make([]rbac.Permission, len(c.OrgPermissions))
		for i, perm := range c.OrgPermissions {
			p.OrgPermissions[i] = rbac.Permission(perm)
		}
	}
	if a.roles != nil {
		acct, err := a.roles.Account(ctx, c.Subject)
		if err != nil {
			return rbac.Principal{}, fmt.Errorf("clerkadapter: reading the account of a verified session: %w", err)
		}
		p.Role, p.EmailVerified, p.Banned, p.Locked = acct.Role, acct.EmailVerified, acct.Banned, acct.Locked
		return p, nil
	}
	role, _ := c.lookup(a.roleClaim)
	p.Role = a.parseRole(role)
	verified, _ := c.lookup(a.emailClaim)
	p.EmailVerified = verified == true || verified == "verified"
	if a.confirm != nil && p.Role != a.defaultRole {
		// A token claiming more than the default role is confirmed: Clerk
		// revokes a banned user's sessions but not the token already
		// minted, which stays valid until it expires.
		acct, err := a.confirm.Account(ctx, c.Subject)
		if err != nil {
			return rbac.Principal{}, fmt.Errorf("clerkadapter: confirming the role a session claims: %w", err)
		}
		p.Role, p.EmailVerified, p.Banned, p.Locked = acct.Role, acct.EmailVerified, acct.Banned, acct.Locked
	}
	return p, nil
}

// Invalidate forgets what the SessionAuth caches about userID's account
// (the confirmations of claimed roles, and the RoleSource's entry when it
// has an Invalidate method), so the next request reads it afresh. Pass
// the SessionAuth as WebhookOptions.Roles to call it on user.updated and
// user.deleted.
func (a *SessionAuth) Invalidate(userID string) {
	for _, src := range []RoleSource{a.roles, a.confirm} {
		if inv, ok := src.(interface{ Invalidate(string) }); ok {
			inv.Invalidate(userID)
		}
	}
}

// InvalidateContext is Invalidate with a context and an error: a
// RoleSource with an InvalidateContext method (a LiveRoles) is called
// through it, so that an invalidation recorded in its
// LiveRolesOptions.Invalidations reaches the other processes, and the
// errors of the sources are returned joined. Every source has forgotten
// the account here, whatever the error.
func (a *SessionAuth) InvalidateContext(ctx context.Context, userID string) error {
	var errs []error
	for _, src := range []RoleSource{a.roles, a.confirm} {
		errs = append(errs, invalidate(ctx, src, userID))
	}
	return errors.Join(errs...)
}

// contextInvalidator is a cache that can tell other processes of an
// invalidation (LiveRoles, SessionAuth).
type contextInvalidator interface {
	InvalidateContext(ctx context.Context, userID string) error
}

// invalidate invalidates userID in c through InvalidateContext when c
// has it, else through Invalidate when c has that.
func invalidate(ctx context.Context, c any, userID string) error {
	switch inv := c.(type) {
	case contextInvalidator:
		return inv.InvalidateContext(ctx, userID)
	case interface{ Invalidate(string) }:
		inv.Invalidate(userID)
	}
	return nil
}

// Handler returns middleware that authenticates each request and, when
// its token verifies, serves next with the principal in the request's
// context (rbac.PrincipalFrom). A request without a valid token, or with
// a pending session's, is served unchanged, with no principal, so that
// rbac.Require answers 401 and public routes still work; OnReject hears
// of every token not accepted.
func (a *SessionAuth) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			if a.onReject != nil && !errors.Is(err, ErrNoToken) {
				a.onReject(r, err)
			}
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(rbac.WithPrincipal(r.Context(), p)))
	})
}

// LogValue implements slog.LogValuer: claims log without the user ID,
// session ID or custom claims.
func (c *Claims) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("hasSubject", c.Subject != ""),
		slog.String("issuer", c.Issuer),
		slog.String("authorizedParty", c.AuthorizedParty),
		slog.Time("expiry", c.Expiry),
		slog.String("status", c.SessionStatus),
		slog.Bool("organization", c.OrgID != ""),
	)
}
