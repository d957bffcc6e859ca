package clerkadapter_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/user"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/rbac"
)

// clock is a settable clock shared by the fake server, the middleware
// and the SDK oracle.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const appOrigin = "https://app.example.com"

// sessionFixture is a fake Clerk and a SessionAuth over it.
type sessionFixture struct {
	srv   *clerktest.Server
	clock *clock
	auth  *clerkadapter.SessionAuth
	user  steward.User
}

func newSessionFixture(t *testing.T, opts *clerkadapter.SessionOptions) *sessionFixture {
	t.Helper()
	clk := newClock()
	srv := newServer(t, clerktest.WithNow(clk.Now))
	var o clerkadapter.SessionOptions
	if opts != nil {
		o = *opts
	}
	o.Now = clk.Now
	if o.AuthorizedParties == nil {
		o.AuthorizedParties = []string{clerktest.DefaultAuthorizedParty, appOrigin}
	}
	u := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "admin"},
	})
	return &sessionFixture{srv: srv, clock: clk, auth: clerkadapter.NewSessionAuth(srv.ClientConfig(), &o), user: u}
}

func (f *sessionFixture) jwksHits() int { return f.srv.CountRequests(http.MethodGet, "/v1/jwks") }

// serve runs r through the middleware and returns the principal the next
// handler saw.
func serve(h *clerkadapter.SessionAuth, r *http.Request) (rbac.Principal, bool) {
	var (
		p  rbac.Principal
		ok bool
	)
	h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok = rbac.PrincipalFrom(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), r)
	return p, ok
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// b64 encodes a JWT segment.
func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestMiddlewareAgreesWithTheSDK(t *testing.T) {
	f := newSessionFixture(t, nil)
	now := f.clock.Now()
	id := f.user.ID
	other := clerktest.GenerateKey()
	valid := f.srv.SessionToken(id)
	parts := strings.Split(valid, ".")

	pubDER, _ := x509.MarshalPKIXPublicKey(&sharedKey().PublicKey)
	hsInput := b64(map[string]any{"alg": "HS256", "kid": f.srv.KeyID()}) + "." + parts[1]
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))

	tests := []struct {
		name  string
		token string
		want  bool // the middleware accepts
		// stricter marks tokens the SDK accepts and the middleware
		// rejects on purpose.
		stricter bool
	}{
		{"a fresh token", valid, true, false},
		{"an organization session, version 1", f.srv.SessionToken(id, clerktest.TokenOrganization("org_1", "acme", "org:admin", "org:posts:read")), true, false},
		{"an organization session, version 2", f.srv.SessionToken(id, clerktest.TokenVersion(2), clerktest.TokenOrganization("org_1", "acme", "org:member", "org:posts:read", "org:posts:manage", "org:billing:read")), true, false},
		{"expired a minute ago", f.srv.SessionToken(id, clerktest.TokenIssuedAt(now.Add(-2*time.Minute))), false, false},
		{"expired within the leeway", f.srv.SessionToken(id, clerktest.TokenExpiresAt(now.Add(-3*time.Second))), true, false},
		{"not valid for another minute", f.srv.SessionToken(id, clerktest.TokenNotBefore(now.Add(time.Minute))), false, false},
		{"not valid before a moment within the leeway", f.srv.SessionToken(id, clerktest.TokenNotBefore(now.Add(3*time.Second))), true, false},
		{"issued in the future", f.srv.SessionToken(id, clerktest.TokenIssuedAt(now.Add(time.Minute)), clerktest.TokenNotBefore(now.Add(-time.Minute))), false, false},
		{"a foreign issuer", f.srv.SessionToken(id, clerktest.TokenIssuer("https://evil.example.com")), false, false},
		{"an issuer lookalike", f.srv.SessionToken(id, clerktest.TokenIssuer("http://clerk.example.com")), false, false},
		{"a production issuer", f.srv.SessionToken(id, clerktest.TokenIssuer("https://clerk.example.com")), true, false},
		{"a foreign authorized party", f.srv.SessionToken(id, clerktest.TokenAuthorizedParty("https://evil.example.com")), false, false},
		{"another allowed authorized party", f.srv.SessionToken(id, clerktest.TokenAuthorizedParty(appOrigin)), true, false},
		{"no authorized party", f.srv.SessionToken(id, clerktest.TokenAuthorizedParty("")), true, false},
		{"signed by a key the JWKS does not hold", f.srv.SessionToken(id, clerktest.TokenSignedWith(other, f.srv.KeyID())), false, false},
		{"an unknown key ID", f.srv.SessionToken(id, clerktest.TokenKeyID("ins_unknown")), false, false},
		{"no key ID", f.srv.SessionToken(id, clerktest.TokenKeyID("")), false, false},
		{"a payload swapped in", parts[0] + "." + b64(map[string]any{"sub": "user_evil", "iss": clerktest.DefaultIssuer, "exp": now.Add(time.Hour).Unix()}) + "." + parts[2], false, false},
		{"alg none", b64(map[string]any{"alg": "none", "kid": f.srv.KeyID()}) + "." + parts[1] + ".", false, false},
		{"HS256 keyed with the public key", hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), false, false},
		{"an exp that is not a number", f.srv.SessionToken(id, clerktest.TokenClaims(map[string]any{"exp": "tomorrow"})), false, false},
		{"an org_permissions that is not a list", f.srv.SessionToken(id, clerktest.TokenClaims(map[string]any{"org_permissions": "org:all"})), false, false},
		{"garbage", "not.a.token", false, false},
		{"two segments", parts[0] + "." + parts[1], false, false},
		{"no sub", f.srv.SessionToken(id, clerktest.TokenClaims(map[string]any{"sub": nil})), false, true},
		{"no exp", f.srv.SessionToken(id, clerktest.TokenClaims(map[string]any{"exp": nil})), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sdkClaims, sdkErr := jwt.Verify(t.Context(), &jwt.VerifyParams{
				Token:      tt.token,
				JWKSClient: jwks.NewClient(f.srv.ClientConfig()),
				Clock:      f.clock,
				Leeway:     clerkadapter.DefaultLeeway,
				AuthorizedPartyHandler: func(azp string) bool {
					return azp == "" || azp == clerktest.DefaultAuthorizedParty || azp == appOrigin
				},
			})
			if sdkAccepts := sdkErr == nil; sdkAccepts != (tt.want || tt.stricter) {
				t.Fatalf("the oracle is off: jwt.Verify accepted = %v (%v), the table expects %v", sdkAccepts, sdkErr, tt.want || tt.stricter)
			}

			claims, err := f.auth.Verify(t.Context(), tt.token)
			if (err == nil) != tt.want {
				t.Fatalf("Verify: accepted = %v (%v), want %v", err == nil, err, tt.want)
			}
			if err != nil && !errors.Is(err, clerkadapter.ErrInvalidToken) {
				t.Errorf("Verify's error %v does not wrap ErrInvalidToken", err)
			}
			p, ok := serve(f.auth, bearer(tt.token))
			if ok != tt.want {
				t.Fatalf("middleware: principal present = %v, want %v", ok, tt.want)
			}
			if !tt.want {
				return
			}
			got := []any{claims.Subject, claims.SessionID, claims.Issuer, claims.AuthorizedParty, claims.OrgID, claims.OrgSlug, claims.OrgRole,
				slices.Sorted(slices.Values(claims.OrgPermissions)), claims.Expiry.Unix()}
			want := []any{sdkClaims.Subject, sdkClaims.SessionID, sdkClaims.Issuer, sdkClaims.AuthorizedParty, sdkClaims.ActiveOrganizationID,
				sdkClaims.ActiveOrganizationSlug, sdkClaims.ActiveOrganizationRole, slices.Sorted(slices.Values(sdkClaims.ActiveOrganizationPermissions)), *sdkClaims.Expiry}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims differ from the SDK's (-sdk +middleware):\n%s", diff)
			}
			if p.UserID != sdkClaims.Subject || p.OrgRole != sdkClaims.ActiveOrganizationRole || len(p.OrgPermissions) != len(sdkClaims.ActiveOrganizationPermissions) {
				t.Errorf("principal %+v does not match the claims", p)
			}
		})
	}
}

func TestPrincipalFromClaims(t *testing.T) {
	// These cases read the claims alone; TestElevatedRoleClaimsAreConfirmed
	// covers the default, which confirms roles above "user".
	f := newSessionFixture(t, &clerkadapter.SessionOptions{TrustRoleClaims: true})
	p, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID, clerktest.TokenOrganization("org_1", "acme", "org:admin", "org:posts:read"))))
	want := rbac.Principal{
		UserID: f.user.ID, Role: "admin", EmailVerified: true,
		OrgID: "org_1", OrgRole: "org:admin", OrgPermissions: []rbac.Permission{"org:posts:read"},
	}
	if !ok {
		t.Fatal("no principal for a valid token")
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   rbac.Role
		email  bool
	}{
		{"no metadata claim", map[string]any{"metadata": nil, "email_verified": nil}, "user", false},
		{"an unknown role", map[string]any{"metadata": map[string]any{"role": "root"}}, "user", true},
		{"a role that is not a string", map[string]any{"metadata": map[string]any{"role": 1}}, "user", true},
		{"metadata that is not an object", map[string]any{"metadata": "admin"}, "user", true},
		{"email verified as Clerk's status string", map[string]any{"email_verified": "verified"}, "admin", true},
		{"email not verified", map[string]any{"email_verified": false}, "admin", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID, clerktest.TokenClaims(tt.claims))))
			if !ok || p.Role != tt.want || p.EmailVerified != tt.email {
				t.Errorf("principal %+v (present %v), want role %q, email verified %v", p, ok, tt.want, tt.email)
			}
		})
	}

	custom := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{
		Now: f.clock.Now, RoleClaim: "app.role", EmailVerifiedClaim: "ev", TrustRoleClaims: true,
	})
	p, _ = serve(custom, bearer(f.srv.SessionToken(f.user.ID, clerktest.TokenClaims(map[string]any{"app": map[string]any{"role": "admin"}, "ev": true}))))
	if p.Role != "admin" || !p.EmailVerified {
		t.Errorf("with RoleClaim app.role and EmailVerifiedClaim ev: %+v", p)
	}

	policy := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{
		Now: f.clock.Now, TrustRoleClaims: true,
		ParseRole: func(v any) rbac.Role {
			if v == "editor" {
				return "editor"
			}
			return "viewer"
		},
	})
	for role, want := range map[string]rbac.Role{"editor": "editor", "admin": "viewer"} {
		p, _ = serve(policy, bearer(f.srv.SessionToken(f.user.ID, clerktest.TokenClaims(map[string]any{"metadata": map[string]any{"role": role}}))))
		if p.Role != want {
			t.Errorf("with a custom ParseRole, role claim %q gave %q, want %q", role, p.Role, want)
		}
	}
}

func TestCookieAndHeader(t *testing.T) {
	f := newSessionFixture(t, nil)
	good := f.srv.SessionToken(f.user.ID)
	bad := f.srv.SessionToken(f.user.ID, clerktest.TokenIssuer("https://evil.example.com"))
	req := func(header, cookie string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: clerkadapter.SessionCookie, Value: cookie})
		}
		return r
	}
	for _, tt := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"a bearer header", req("Bearer "+good, ""), true},
		{"a lower-case bearer scheme", req("bearer "+good, ""), true},
		{"the __session cookie", req("", good), true},
		{"a valid header wins over a bad cookie", req("Bearer "+good, bad), true},
		{"a bad header wins over a valid cookie", req("Bearer "+bad, good), false},
		{"a Basic header leaves the cookie", req("Basic dXNlcjpwYXNz", good), true},
		{"a token without the Bearer scheme", req(good, ""), false},
		{"another cookie name", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(&http.Cookie{Name: "session", Value: good})
			return r
		}(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := serve(f.auth, tt.r); ok != tt.want {
				t.Errorf("principal present = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestMissingTokenPassesThrough(t *testing.T) {
	var rejected []error
	f := newSessionFixture(t, &clerkadapter.SessionOptions{OnReject: func(r *http.Request, err error) { rejected = append(rejected, err) }})
	called := false
	rec := httptest.NewRecorder()
	f.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		if _, ok := rbac.PrincipalFrom(r.Context()); ok {
			t.Error("a request without a token got a principal")
		}
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !called {
		t.Error("the next handler was not called")
	}
	if len(rejected) != 0 || f.jwksHits() != 0 {
		t.Errorf("a missing token was reported (%v) or fetched the JWKS (%d times)", rejected, f.jwksHits())
	}

	tok := f.srv.SessionToken(f.user.ID, clerktest.TokenIssuer("https://evil.example.com"))
	serve(f.auth, bearer(tok))
	if len(rejected) != 1 || !errors.Is(rejected[0], clerkadapter.ErrInvalidToken) {
		t.Fatalf("OnReject got %v, want one ErrInvalidToken", rejected)
	}
	if strings.Contains(rejected[0].Error(), tok) || strings.Contains(rejected[0].Error(), f.user.ID) {
		t.Errorf("the rejection %q contains the token or the user ID", rejected[0])
	}
}

func TestExpiredTokenIsTyped(t *testing.T) {
	f := newSessionFixture(t, nil)
	tok := f.srv.SessionToken(f.user.ID)
	f.clock.Advance(clerktest.TokenLifetime + clerkadapter.DefaultLeeway + time.Second)
	_, err := f.auth.Verify(t.Context(), tok)
	if !errors.Is(err, clerkadapter.ErrTokenExpired) || !errors.Is(err, clerkadapter.ErrInvalidToken) {
		t.Errorf("Verify of an expired token: %v, want ErrTokenExpired and ErrInvalidToken", err)
	}
}

func TestJWKSIsCachedAndRefreshedOnUnknownKeyOnce(t *testing.T) {
	f := newSessionFixture(t, nil)
	for range 5 {
		if _, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID))); !ok {
			t.Fatal("a valid token was rejected")
		}
	}
	if n := f.jwksHits(); n != 1 {
		t.Fatalf("5 requests fetched the JWKS %d times, want 1", n)
	}

	// A rotation: the new key ID is unknown, so the JWKS is fetched once.
	f.srv.RotateKey()
	f.clock.Advance(clerkadapter.DefaultMinRefreshInterval)
	for range 5 {
		if _, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID))); !ok {
			t.Fatal("a token of the rotated key was rejected")
		}
	}
	if n := f.jwksHits(); n != 2 {
		t.Fatalf("after a rotation the JWKS was fetched %d times in all, want 2", n)
	}

	// Made-up key IDs: one fetch, then none until the interval passes,
	// however many requests come, concurrently or not.
	bogus := f.srv.SessionToken(f.user.ID, clerktest.TokenKeyID("ins_bogus"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, ok := serve(f.auth, bearer(bogus)); ok {
				t.Error("a token with an unknown key ID was accepted")
			}
		})
	}
	wg.Wait()
	if n := f.jwksHits(); n != 2 {
		t.Errorf("20 tokens with an unknown key ID within the refresh interval fetched the JWKS %d more times, want 0", n-2)
	}
	f.clock.Advance(clerkadapter.DefaultMinRefreshInterval)
	for range 5 {
		serve(f.auth, bearer(bogus))
	}
	if n := f.jwksHits(); n != 3 {
		t.Errorf("after the refresh interval, unknown key IDs fetched the JWKS %d more times, want 1", n-2)
	}
}

func TestRetiredKeyIsDroppedAfterMaxKeyAge(t *testing.T) {
	f := newSessionFixture(t, nil)
	old := f.srv.SessionToken(f.user.ID, clerktest.TokenExpiresAt(f.clock.Now().Add(3*time.Hour)))
	if _, ok := serve(f.auth, bearer(old)); !ok {
		t.Fatal("a valid token was rejected")
	}
	f.srv.RotateKey()
	f.srv.RetireKey(mustKID(t, old))
	if _, ok := serve(f.auth, bearer(old)); !ok {
		t.Error("a cached key stopped working before MaxKeyAge")
	}
	f.clock.Advance(clerkadapter.DefaultMaxKeyAge)
	if _, ok := serve(f.auth, bearer(old)); ok {
		t.Error("a retired key still verifies after MaxKeyAge")
	}
}

func mustKID(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &header); err != nil {
		t.Fatal(err)
	}
	return header.KID
}

func TestJWKSOutage(t *testing.T) {
	var rejected []error
	f := newSessionFixture(t, &clerkadapter.SessionOptions{OnReject: func(r *http.Request, err error) { rejected = append(rejected, err) }})
	tok := f.srv.SessionToken(f.user.ID)
	f.srv.FailNext(1, http.StatusServiceUnavailable, 0)
	if _, ok := serve(f.auth, bearer(tok)); ok {
		t.Fatal("a token was accepted while the JWKS could not be fetched")
	}
	if len(rejected) != 1 || !errors.Is(rejected[0], clerkadapter.ErrKeysUnavailable) {
		t.Fatalf("OnReject got %v, want ErrKeysUnavailable", rejected)
	}
	f.clock.Advance(clerkadapter.DefaultMinRefreshInterval)
	if _, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID))); !ok {
		t.Error("the JWKS was not fetched again after the outage")
	}
	// Once fetched, an outage at MaxKeyAge keeps the cached keys.
	f.clock.Advance(clerkadapter.DefaultMaxKeyAge)
	f.srv.FailNext(1, http.StatusServiceUnavailable, 0)
	if _, ok := serve(f.auth, bearer(f.srv.SessionToken(f.user.ID))); !ok {
		t.Error("a failed refresh of a stale JWKS dropped its keys")
	}
}

func TestLiveRoles(t *testing.T) {
	clk := newClock()
	srv := newServer(t, clerktest.WithNow(clk.Now))
	prov := clerkadapter.New(srv.ClientConfig(), fastRetries, clerkadapter.WithMaxAttempts(1))
	roles := clerkadapter.NewLiveRoles(prov, &clerkadapter.LiveRolesOptions{Now: clk.Now})
	auth := clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{Now: clk.Now, Roles: roles})
	u := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "user"},
	})
	principal := func() (rbac.Principal, bool) {
		// The token claims admin; the live source must not believe it.
		return serve(auth, bearer(srv.SessionToken(u.ID, clerktest.TokenClaims(map[string]any{"metadata": map[string]any{"role": "admin"}}))))
	}
	gets := func() int { return srv.CountRequests(http.MethodGet, "/v1/users/"+u.ID) }

	if p, ok := principal(); !ok || p.Role != "user" || !p.EmailVerified {
		t.Fatalf("principal %+v (present %v), want role user from the account", p, ok)
	}
	principal()
	if n := gets(); n != 1 {
		t.Errorf("two requests within the TTL read the user %d times, want 1", n)
	}

	ctx := t.Context()
	if err := prov.UpdateMetadata(ctx, u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := principal(); p.Role != "user" {
		t.Errorf("role %q right after the change, before Invalidate: want the cached user", p.Role)
	}
	roles.Invalidate(u.ID)
	if p, _ := principal(); p.Role != "admin" {
		t.Errorf("role %q after Invalidate, want admin", p.Role)
	}

	srv.AddUser(func() steward.User { x, _ := srv.User(u.ID); x.Banned = true; return x }())
	clk.Advance(clerkadapter.DefaultRolesTTL)
	if p, _ := principal(); !p.Banned {
		t.Errorf("principal %+v after the TTL: want the ban seen", p)
	}

	// Clerk failing: the cached account serves up to the stale limit.
	clk.Advance(clerkadapter.DefaultRolesTTL)
	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	if p, ok := principal(); !ok || !p.Banned {
		t.Errorf("principal %+v (present %v) while Clerk fails: want the stale account", p, ok)
	}
	clk.Advance(clerkadapter.DefaultRolesStaleLimit)
	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	if _, ok := principal(); ok {
		t.Error("an account older than the stale limit was used while Clerk fails")
	}

	if err := prov.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	roles.Invalidate(u.ID)
	if _, ok := principal(); ok {
		t.Error("a deleted user still gets a principal")
	}
}

func TestLiveRolesSharesConcurrentReads(t *testing.T) {
	srv := newServer(t)
	srv.SetLatency(50 * time.Millisecond)
	prov := clerkadapter.New(srv.ClientConfig(), fastRetries)
	roles := clerkadapter.NewLiveRoles(prov, nil)
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			acct, err := roles.Account(context.Background(), u.ID)
			if err != nil || acct.Role != "admin" {
				t.Errorf("Account = %+v, %v", acct, err)
			}
		})
	}
	wg.Wait()
	if n := srv.CountRequests(http.MethodGet, "/v1/users/"+u.ID); n != 1 {
		t.Errorf("20 concurrent requests read the user %d times, want 1", n)
	}
}

func TestInvalidateDuringReadIsNotLost(t *testing.T) {
	srv := newServer(t)
	prov := clerkadapter.New(srv.ClientConfig(), fastRetries)
	roles := clerkadapter.NewLiveRoles(prov, nil)
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "user"}})
	srv.DelayNext(1, 200*time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = roles.Account(context.Background(), u.ID) // reads "user" slowly
	}()
	time.Sleep(50 * time.Millisecond)
	if err := prov.UpdateMetadata(t.Context(), u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}}); err != nil {
		t.Fatal(err)
	}
	roles.Invalidate(u.ID)
	<-done
	acct, err := roles.Account(t.Context(), u.ID)
	if err != nil || acct.Role != "admin" {
		t.Errorf("Account after an Invalidate that raced a read = %+v, %v; want admin", acct, err)
	}
}

var _ clerk.Clock = (*clock)(nil)

func TestPendingSessionIsSignedOut(t *testing.T) {
	// Clerk's SDKs treat "sts": "pending" as signed out unless told
	// otherwise (clerk-docs, guides/configure/session-tasks.mdx:
	// "treatPendingAsSignedOut option that defaults to true").
	var rejected []error
	f := newSessionFixture(t, &clerkadapter.SessionOptions{OnReject: func(r *http.Request, err error) { rejected = append(rejected, err) }})
	pending := f.srv.SessionToken(f.user.ID, clerktest.TokenSessionStatus("pending"))
	if _, ok := serve(f.auth, bearer(pending)); ok {
		t.Error("a pending session got a principal")
	}
	if len(rejected) != 1 || !errors.Is(rejected[0], clerkadapter.ErrSessionPending) {
		t.Errorf("OnReject got %v, want ErrSessionPending", rejected)
	}
	if _, err := f.auth.Authenticate(bearer(pending)); !errors.Is(err, clerkadapter.ErrSessionPending) {
		t.Errorf("Authenticate: %v, want ErrSessionPending", err)
	}
	c, err := f.auth.Verify(t.Context(), pending)
	if err != nil || c.SessionStatus != "pending" || c.Version != 2 || c.ID == "" {
		t.Errorf("Verify of a pending token = %+v, %v; want its claims with sts, v and jti", c, err)
	}
	for name, tok := range map[string]string{
		"an active session": f.srv.SessionToken(f.user.ID),
		"a version 1 token": f.srv.SessionToken(f.user.ID, clerktest.TokenVersion(1)),
		"no session status": f.srv.SessionToken(f.user.ID, clerktest.TokenSessionStatus("")),
		"an unknown status": f.srv.SessionToken(f.user.ID, clerktest.TokenSessionStatus("future")),
	} {
		if _, ok := serve(f.auth, bearer(tok)); !ok {
			t.Errorf("%s got no principal", name)
		}
	}
	opted := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{Now: f.clock.Now, TreatPendingAsSignedIn: true})
	if p, ok := serve(opted, bearer(pending)); !ok || p.UserID != f.user.ID {
		t.Errorf("with TreatPendingAsSignedIn, a pending session got %+v (present %v)", p, ok)
	}
}

// adminRoute answers what rbac.Require(admin:users) says of tok.
func adminRoute(auth *clerkadapter.SessionAuth, tok string) int {
	rec := httptest.NewRecorder()
	auth.Handler(rbac.Require(rbac.AdminUsers)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))).ServeHTTP(rec, bearer(tok))
	return rec.Code
}

func TestElevatedRoleClaimsAreConfirmed(t *testing.T) {
	// Clerk's ban "means that all their sessions are revoked and they are
	// not allowed to sign in again" (spec: paths./users/{user_id}/ban),
	// but a token minted before stays valid until exp, and its claims
	// still say admin. By default claims mode confirms such roles.
	f := newSessionFixture(t, nil)
	users := user.NewClient(f.srv.ClientConfig())
	tok := f.srv.SessionToken(f.user.ID) // claims role admin
	gets := func() int { return f.srv.CountRequests(http.MethodGet, "/v1/users/"+f.user.ID) }
	if code := adminRoute(f.auth, tok); code != http.StatusNoContent {
		t.Fatalf("an admin's token: %d, want 204", code)
	}
	if gets() != 1 {
		t.Errorf("the admin's role was confirmed with %d reads, want 1", gets())
	}
	if _, err := users.Ban(t.Context(), f.user.ID); err != nil {
		t.Fatal(err)
	}
	f.auth.Invalidate(f.user.ID) // as the user.updated webhook does
	if code := adminRoute(f.auth, tok); code != http.StatusForbidden {
		t.Errorf("the banned admin's still-valid token: %d, want 403", code)
	}

	// Without the webhook, the confirmation is cached for DefaultConfirmTTL.
	g := newSessionFixture(t, nil)
	gtok := g.srv.SessionToken(g.user.ID)
	adminRoute(g.auth, gtok)
	if _, err := user.NewClient(g.srv.ClientConfig()).UpdateMetadata(t.Context(), g.user.ID,
		&user.UpdateMetadataParams{PublicMetadata: raw(`{"role":"user"}`)}); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(clerkadapter.DefaultConfirmTTL)
	if code := adminRoute(g.auth, gtok); code != http.StatusForbidden {
		t.Errorf("a demoted admin's token after DefaultConfirmTTL: %d, want 403", code)
	}

	// A user's token claims nothing above the default: no Backend API read.
	plain := g.srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "bob@example.com", Verified: true}}})
	before := len(g.srv.Requests())
	if p, ok := serve(g.auth, bearer(g.srv.SessionToken(plain.ID))); !ok || p.Role != rbac.RoleUser {
		t.Errorf("a user's token: %+v, %v", p, ok)
	}
	if n := len(g.srv.Requests()) - before; n != 0 {
		t.Errorf("a user's token cost %d Backend API requests, want 0", n)
	}

	// A deleted admin's token gets no principal.
	if _, err := user.NewClient(g.srv.ClientConfig()).Delete(t.Context(), g.user.ID); err != nil {
		t.Fatal(err)
	}
	g.auth.Invalidate(g.user.ID)
	if _, ok := serve(g.auth, bearer(gtok)); ok {
		t.Error("a deleted admin's token got a principal")
	}

	// TrustRoleClaims keeps the claims' role: the documented trade-off.
	trusting := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{Now: f.clock.Now, TrustRoleClaims: true})
	if code := adminRoute(trusting, tok); code != http.StatusNoContent {
		t.Errorf("with TrustRoleClaims, the banned admin's token: %d, want 204 (trusted claims)", code)
	}
}

func TestOrganizationPermissionsStayInTheirOrganization(t *testing.T) {
	f := newSessionFixture(t, nil)
	plain := f.srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "bob@example.com", Verified: true}}})
	// A version 1 token whose org_permissions name a global permission.
	v1 := f.srv.SessionToken(plain.ID, clerktest.TokenVersion(1), clerktest.TokenOrganization("org_1", "acme", "org:admin"),
		clerktest.TokenClaims(map[string]any{"org_permissions": []string{string(rbac.AdminUsers)}}))
	if code := adminRoute(f.auth, v1); code != http.StatusForbidden {
		t.Errorf("organization permission admin:users on a global route: %d, want 403", code)
	}
	// A version 2 token: the "o" claim scopes the principal.
	v2 := f.srv.SessionToken(plain.ID, clerktest.TokenOrganization("org_1", "acme", "org:admin", "org:posts:manage", "org:posts:read"))
	p, ok := serve(f.auth, bearer(v2))
	if !ok {
		t.Fatal("no principal")
	}
	want := rbac.Principal{UserID: plain.ID, Role: rbac.RoleUser, EmailVerified: true, OrgID: "org_1", OrgRole: "org:admin",
		OrgPermissions: []rbac.Permission{"org:posts:manage", "org:posts:read"}}
	if diff := cmp.Diff(want, p, cmpopts.SortSlices(func(a, b rbac.Permission) bool { return a < b })); diff != "" {
		t.Errorf("principal of an organization session (-want +got):\n%s", diff)
	}
	mux := http.NewServeMux()
	mux.Handle("/orgs/{org}/posts", rbac.RequireOrg("org:posts:manage", func(r *http.Request) string { return r.PathValue("org") })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	for org, want := range map[string]int{"org_1": http.StatusNoContent, "org_2": http.StatusForbidden} {
		r := httptest.NewRequest(http.MethodPost, "/orgs/"+org+"/posts", nil)
		r.Header.Set("Authorization", "Bearer "+v2)
		rec := httptest.NewRecorder()
		f.auth.Handler(mux).ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("org:posts:manage in %s: %d, want %d", org, rec.Code, want)
		}
	}
}

func TestJWKSFailureIsRetriedSoon(t *testing.T) {
	// One failed fetch at start-up must not reject every valid token for
	// the whole minimum refresh interval: failures are retried after
	// DefaultJWKSRetryInterval, doubling, capped by the interval.
	f := newSessionFixture(t, nil)
	tok := f.srv.SessionToken(f.user.ID)
	f.srv.FailNext(1, http.StatusServiceUnavailable, 0)
	if _, err := f.auth.Verify(t.Context(), tok); !errors.Is(err, clerkadapter.ErrKeysUnavailable) {
		t.Fatalf("Verify during the outage: %v, want ErrKeysUnavailable", err)
	}
	if _, err := f.auth.Verify(t.Context(), tok); !errors.Is(err, clerkadapter.ErrKeysUnavailable) || f.jwksHits() != 1 {
		t.Errorf("Verify right after the failure: %v with %d fetches; want ErrKeysUnavailable and no new fetch", err, f.jwksHits())
	}
	f.clock.Advance(clerkadapter.DefaultJWKSRetryInterval)
	if _, err := f.auth.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify %v after a failed fetch: %v, want the retry to succeed", clerkadapter.DefaultJWKSRetryInterval, err)
	}

	// Failures in a row back off: 1 s, 2 s, 4 s ...
	g := newSessionFixture(t, nil)
	gtok := g.srv.SessionToken(g.user.ID)
	g.srv.FailNext(3, http.StatusServiceUnavailable, 0)
	step := func(advance time.Duration, wantHits int, wantOK bool) {
		t.Helper()
		g.clock.Advance(advance)
		_, err := g.auth.Verify(t.Context(), gtok)
		if (err == nil) != wantOK || g.jwksHits() != wantHits {
			t.Errorf("after %v more: %v with %d fetches; want ok=%v with %d", advance, err, g.jwksHits(), wantOK, wantHits)
		}
	}
	step(0, 1, false)
	step(time.Second, 2, false)
	step(time.Second, 2, false)
	step(time.Second, 3, false)
	step(3*time.Second, 3, false)
	step(time.Second, 4, true)

	// The backoff never exceeds the minimum refresh interval.
	h := newSessionFixture(t, &clerkadapter.SessionOptions{JWKSRetryInterval: 20 * time.Second, MinRefreshInterval: 30 * time.Second})
	htok := h.srv.SessionToken(h.user.ID)
	h.srv.FailNext(2, http.StatusServiceUnavailable, 0)
	h.auth.Verify(t.Context(), htok)
	h.clock.Advance(20 * time.Second)
	h.auth.Verify(t.Context(), htok)
	h.clock.Advance(30 * time.Second)
	if _, err := h.auth.Verify(t.Context(), htok); err != nil || h.jwksHits() != 3 {
		t.Errorf("30 s after a second failure: %v with %d fetches, want success on the third", err, h.jwksHits())
	}
}

func TestJWKSFetchHonoursTheRequestDeadline(t *testing.T) {
	f := newSessionFixture(t, nil)
	tok := f.srv.SessionToken(f.user.ID)
	f.srv.DelayNext(1, 2*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.auth.Verify(ctx, tok)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, clerkadapter.ErrKeysUnavailable) {
		t.Errorf("Verify with a 200 ms deadline and a 2 s JWKS: %v, want ErrKeysUnavailable and DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 1500*time.Millisecond {
		t.Errorf("Verify returned after %v; its deadline was 200 ms", waited)
	}
	// The fetch went on and serves the next request.
	if _, err := f.auth.Verify(t.Context(), tok); err != nil || f.jwksHits() != 1 {
		t.Errorf("the next Verify: %v with %d fetches, want the shared fetch's keys", err, f.jwksHits())
	}
}

func TestLiveRolesHonourTheRequestDeadline(t *testing.T) {
	// A Retry-After longer than the request's deadline must not hold the
	// request: a 300 ms deadline once took 3 s.
	srv := newServer(t)
	prov := clerkadapter.New(srv.ClientConfig(), fastRetries)
	roles := clerkadapter.NewLiveRoles(prov, nil)
	auth := clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{Roles: roles})
	u := srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	tok := srv.SessionToken(u.ID)
	if _, err := auth.Verify(t.Context(), tok); err != nil { // fill the JWKS cache
		t.Fatal(err)
	}
	srv.FailNext(1, http.StatusTooManyRequests, 3*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := bearer(tok).WithContext(ctx)
	if _, ok := serve(auth, r); ok {
		t.Error("a principal despite the account read outlasting the deadline")
	}
	if waited := time.Since(start); waited > 1500*time.Millisecond {
		t.Errorf("the request took %v; its deadline was 300 ms", waited)
	}
	if _, err := roles.Account(ctx, u.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Account after the deadline: %v, want DeadlineExceeded", err)
	}
}

func raw(s string) *json.RawMessage {
	m := json.RawMessage(s)
	return &m
}
