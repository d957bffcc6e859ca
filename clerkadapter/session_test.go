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
	"github.com/google/go-cmp/cmp"

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
	f := newSessionFixture(t, nil)
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
		Now: f.clock.Now, RoleClaim: "app.role", EmailVerifiedClaim: "ev",
	})
	p, _ = serve(custom, bearer(f.srv.SessionToken(f.user.ID, clerktest.TokenClaims(map[string]any{"app": map[string]any{"role": "admin"}, "ev": true}))))
	if p.Role != "admin" || !p.EmailVerified {
		t.Errorf("with RoleClaim app.role and EmailVerifiedClaim ev: %+v", p)
	}

	policy := clerkadapter.NewSessionAuth(f.srv.ClientConfig(), &clerkadapter.SessionOptions{
		Now: f.clock.Now,
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
