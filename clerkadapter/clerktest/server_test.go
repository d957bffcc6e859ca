package clerktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/user"
	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

// sharedKey saves generating an RSA key per server.
var sharedKey = sync.OnceValue(clerktest.GenerateKey)

func newServer(t *testing.T, opts ...clerktest.Option) *clerktest.Server {
	t.Helper()
	srv := clerktest.NewServer(append([]clerktest.Option{clerktest.WithSigningKey(sharedKey())}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

func raw(s string) *json.RawMessage {
	m := json.RawMessage(s)
	return &m
}

// apiError returns err as the SDK's typed error, failing the test if it
// is not one.
func apiError(t *testing.T, err error) *clerk.APIErrorResponse {
	t.Helper()
	var apiErr *clerk.APIErrorResponse
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not a *clerk.APIErrorResponse", err, err)
	}
	return apiErr
}

func TestSDKUserLifecycle(t *testing.T) {
	srv := newServer(t)
	ctx := t.Context()
	users := user.NewClient(srv.ClientConfig())

	created, err := users.Create(ctx, &user.CreateParams{
		EmailAddresses:  &[]string{"ada@example.com"},
		FirstName:       clerk.String("Ada"),
		LastName:        clerk.String("Lovelace"),
		PublicMetadata:  raw(`{"role":"user","profile":{"theme":"dark","lang":"en"}}`),
		PrivateMetadata: raw(`{"note":"vip"}`),
		CreatedAt:       clerk.String("2024-03-01T09:30:00.123Z"),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := steward.ValidateUserID(created.ID); err != nil || created.ID[:5] != "user_" || len(created.ID) != 32 {
		t.Errorf("created ID %q is not Clerk-like (user_ + 27 base62)", created.ID)
	}
	if want := time.Date(2024, 3, 1, 9, 30, 0, 123e6, time.UTC).UnixMilli(); created.CreatedAt != want {
		t.Errorf("CreatedAt = %d, want %d", created.CreatedAt, want)
	}
	if len(created.EmailAddresses) != 1 || created.PrimaryEmailAddressID == nil ||
		*created.PrimaryEmailAddressID != created.EmailAddresses[0].ID ||
		created.EmailAddresses[0].Verification.Status != "verified" {
		t.Errorf("emails = %+v, primary %v: want one verified primary address", created.EmailAddresses, created.PrimaryEmailAddressID)
	}

	got, err := users.Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.ID != created.ID || *got.FirstName != "Ada" || got.Response == nil || got.Response.TraceID == "" {
		t.Errorf("Get = %+v, want the created user with a trace ID", got)
	}

	_, err = users.UpdateMetadata(ctx, created.ID, &user.UpdateMetadataParams{
		PublicMetadata:  raw(`{"role":null,"profile":{"theme":"light","tz":"UTC"},"plan":"pro"}`),
		PrivateMetadata: raw(`{"stripe":"cus_1"}`),
	})
	if err != nil {
		t.Fatalf("UpdateMetadata: %v", err)
	}
	u, _ := srv.User(created.ID)
	wantPublic := map[string]any{"profile": map[string]any{"theme": "light", "lang": "en", "tz": "UTC"}, "plan": "pro"}
	if diff := cmp.Diff(wantPublic, u.PublicMetadata); diff != "" {
		t.Errorf("public metadata after the merge (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"note": "vip", "stripe": "cus_1"}, u.PrivateMetadata); diff != "" {
		t.Errorf("private metadata after the merge (-want +got):\n%s", diff)
	}

	for _, step := range []struct {
		name   string
		call   func(context.Context, string) (*clerk.User, error)
		banned bool
		locked bool
	}{
		{"Ban", users.Ban, true, false},
		{"Lock", users.Lock, true, true},
		{"Unban", users.Unban, false, true},
		{"Unlock", users.Unlock, false, false},
	} {
		got, err := step.call(ctx, created.ID)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got.Banned != step.banned || got.Locked != step.locked {
			t.Errorf("after %s: banned %v locked %v, want %v %v", step.name, got.Banned, got.Locked, step.banned, step.locked)
		}
	}

	del, err := users.Delete(ctx, created.ID)
	if err != nil || !del.Deleted || del.ID != created.ID || del.Object != "user" {
		t.Fatalf("Delete = %+v, %v", del, err)
	}
	_, err = users.Delete(ctx, created.ID)
	if e := apiError(t, err); e.HTTPStatusCode != http.StatusNotFound || e.Errors[0].Code != "resource_not_found" || e.TraceID == "" {
		t.Errorf("second Delete: %+v, want 404 resource_not_found with a trace ID", e)
	}
	_, err = users.Get(ctx, created.ID)
	if e := apiError(t, err); e.HTTPStatusCode != http.StatusNotFound {
		t.Errorf("Get after Delete: status %d, want 404", e.HTTPStatusCode)
	}
}

func TestSDKCreateRejectsTakenEmail(t *testing.T) {
	srv := newServer(t)
	users := user.NewClient(srv.ClientConfig())
	srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com"}}})
	_, err := users.Create(t.Context(), &user.CreateParams{EmailAddresses: &[]string{"ADA@example.com"}})
	if e := apiError(t, err); e.HTTPStatusCode != http.StatusUnprocessableEntity || e.Errors[0].Code != "form_identifier_exists" {
		t.Errorf("got %+v, want 422 form_identifier_exists", e)
	}
}

func TestSDKListAndCount(t *testing.T) {
	srv := newServer(t)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return base.AddDate(0, 0, n) }
	var ids []string
	for i := range 6 {
		u := steward.User{CreatedAt: day(i)}
		if i%2 == 0 {
			u.LastActiveAt = day(i + 1)
		}
		ids = append(ids, srv.AddUser(u).ID)
	}
	users := user.NewClient(srv.ClientConfig())
	ms := func(t time.Time) *int64 { return clerk.Int64(t.UnixMilli()) }

	tests := []struct {
		name   string
		params user.ListParams
		want   []string
	}{
		{"default order is newest first", user.ListParams{}, []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"oldest first, paged", user.ListParams{OrderBy: clerk.String("+created_at"), ListParams: clerk.ListParams{Limit: clerk.Int64(2), Offset: clerk.Int64(1)}}, ids[1:3]},
		{"created_at_before is strict", user.ListParams{OrderBy: clerk.String("+created_at"), CreatedAtBefore: ms(day(2))}, ids[:2]},
		{"created_at_after is strict", user.ListParams{OrderBy: clerk.String("+created_at"), CreatedAtAfter: ms(day(3))}, ids[4:]},
		{"last_active_at_before skips never-active users", user.ListParams{OrderBy: clerk.String("+created_at"), LastActiveAtBefore: ms(day(4))}, []string{ids[0], ids[2]}},
		{"user_id", user.ListParams{OrderBy: clerk.String("+created_at"), UserIDs: []string{ids[4], ids[1]}}, []string{ids[1], ids[4]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := users.List(t.Context(), &tt.params)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, u := range list.Users {
				got = append(got, u.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			unpaged := tt.params
			unpaged.ListParams = clerk.ListParams{}
			count, err := users.Count(t.Context(), &unpaged)
			if err != nil {
				t.Fatalf("Count: %v", err)
			}
			if tt.params.Limit == nil && count.TotalCount != int64(len(tt.want)) {
				t.Errorf("Count = %d, want %d", count.TotalCount, len(tt.want))
			}
			if list.TotalCount != count.TotalCount {
				t.Errorf("List's TotalCount %d differs from Count %d", list.TotalCount, count.TotalCount)
			}
		})
	}

	for _, bad := range []user.ListParams{
		{ListParams: clerk.ListParams{Limit: clerk.Int64(501)}},
		{OrderBy: clerk.String("+favourite_colour")},
	} {
		_, err := users.List(t.Context(), &bad)
		if e := apiError(t, err); e.HTTPStatusCode != http.StatusUnprocessableEntity {
			t.Errorf("List(%+v): status %d, want 422", bad, e.HTTPStatusCode)
		}
	}
}

func TestFailNext(t *testing.T) {
	srv := newServer(t)
	u := srv.AddUser(steward.User{})
	users := user.NewClient(srv.ClientConfig())
	srv.FailNext(1, http.StatusTooManyRequests, 1500*time.Millisecond)
	srv.FailNext(1, http.StatusServiceUnavailable, 0)

	_, err := users.Get(t.Context(), u.ID)
	e := apiError(t, err)
	if e.HTTPStatusCode != http.StatusTooManyRequests || e.Response.Header.Get("Retry-After") != "2" {
		t.Errorf("first call: status %d, Retry-After %q; want 429 with Retry-After 2 (1.5 s rounded up)",
			e.HTTPStatusCode, e.Response.Header.Get("Retry-After"))
	}
	_, err = users.Get(t.Context(), u.ID)
	if e := apiError(t, err); e.HTTPStatusCode != http.StatusServiceUnavailable || e.Response.Header.Get("Retry-After") != "" {
		t.Errorf("second call: status %d, want 503 without Retry-After", e.HTTPStatusCode)
	}
	if _, err := users.Get(t.Context(), u.ID); err != nil {
		t.Errorf("third call: %v, want success once the faults are used up", err)
	}

	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	if diff := cmp.Diff([]int{429, 503, 200}, statuses); diff != "" {
		t.Errorf("request log statuses (-want +got):\n%s", diff)
	}
	if n := srv.CountRequests(http.MethodGet, "/v1/users/"+u.ID); n != 3 {
		t.Errorf("CountRequests = %d, want 3", n)
	}
}

func TestDelayNextTimesOutAClient(t *testing.T) {
	srv := newServer(t)
	u := srv.AddUser(steward.User{})
	users := user.NewClient(srv.ClientConfig())
	srv.DelayNext(1, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := users.Get(ctx, u.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed call: %v, want context.DeadlineExceeded", err)
	}
	if _, err := users.Get(t.Context(), u.ID); err != nil {
		t.Errorf("next call: %v, want success", err)
	}
}

func TestRateLimit(t *testing.T) {
	srv := newServer(t, clerktest.WithRateLimit(3, time.Minute))
	users := user.NewClient(srv.ClientConfig())
	for i := range 3 {
		if _, err := users.Count(t.Context(), &user.ListParams{}); err != nil {
			t.Fatalf("call %d within the limit: %v", i+1, err)
		}
	}
	_, err := users.Count(t.Context(), &user.ListParams{})
	e := apiError(t, err)
	if e.HTTPStatusCode != http.StatusTooManyRequests || e.Response.Header.Get("Retry-After") == "" {
		t.Errorf("call beyond the limit: status %d, Retry-After %q; want 429 with Retry-After",
			e.HTTPStatusCode, e.Response.Header.Get("Retry-After"))
	}
}

func TestAddUserFillsWhatClerkWould(t *testing.T) {
	now := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	srv := newServer(t, clerktest.WithNow(func() time.Time { return now }))
	got := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{Address: "a@example.com", Verified: true}, {Address: "b@example.com"}},
		PublicMetadata: map[string]any{"n": 1},
	})
	if len(got.EmailAddresses) != 2 || got.PrimaryEmailID != got.EmailAddresses[0].ID || got.EmailAddresses[0].ID == "" {
		t.Errorf("emails %+v, primary %q: want IDs and the first address primary", got.EmailAddresses, got.PrimaryEmailID)
	}
	wantTime := now.Truncate(time.Millisecond)
	if !got.CreatedAt.Equal(wantTime) || !got.UpdatedAt.Equal(wantTime) {
		t.Errorf("CreatedAt %v UpdatedAt %v, want both %v", got.CreatedAt, got.UpdatedAt, wantTime)
	}
	if diff := cmp.Diff(map[string]any{"n": 1.0}, got.PublicMetadata); diff != "" {
		t.Errorf("metadata is not stored as JSON would (-want +got):\n%s", diff)
	}
	if stored, ok := srv.User(got.ID); !ok || !cmp.Equal(got, stored) {
		t.Errorf("User(%q) = %+v, %v; want what AddUser returned", got.ID, stored, ok)
	}
}

// verifier verifies tokens with the SDK against srv's JWKS.
func verify(ctx context.Context, srv *clerktest.Server, token string) (*clerk.SessionClaims, error) {
	return jwt.Verify(ctx, &jwt.VerifyParams{Token: token, JWKSClient: jwks.NewClient(srv.ClientConfig())})
}

func TestSessionTokenVerifiesWithTheSDK(t *testing.T) {
	srv := newServer(t)
	u := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "admin"},
	})
	perms := []string{"org:posts:read", "org:posts:manage", "org:billing:read"}
	for _, version := range []int{1, 2} {
		t.Run(map[int]string{1: "version 1", 2: "version 2"}[version], func(t *testing.T) {
			tok := srv.SessionToken(u.ID,
				clerktest.TokenVersion(version),
				clerktest.TokenOrganization("org_1", "acme", "org:admin", perms...),
				clerktest.TokenClaims(map[string]any{"extra": "x"}))
			claims, err := jwt.Verify(t.Context(), &jwt.VerifyParams{
				Token:                   tok,
				JWKSClient:              jwks.NewClient(srv.ClientConfig()),
				CustomClaimsConstructor: func(context.Context) any { return &map[string]any{} },
			})
			if err != nil {
				t.Fatalf("jwt.Verify: %v", err)
			}
			if claims.Subject != u.ID || claims.Issuer != clerktest.DefaultIssuer ||
				claims.AuthorizedParty != clerktest.DefaultAuthorizedParty || claims.SessionID == "" {
				t.Errorf("registered claims %+v", claims.RegisteredClaims)
			}
			if *claims.Expiry-*claims.IssuedAt != 60 || *claims.IssuedAt-*claims.NotBefore != 10 {
				t.Errorf("iat %d nbf %d exp %d: want nbf = iat-10, exp = iat+60", *claims.IssuedAt, *claims.NotBefore, *claims.Expiry)
			}
			if claims.ActiveOrganizationID != "org_1" || claims.ActiveOrganizationRole != "org:admin" {
				t.Errorf("organization %q role %q", claims.ActiveOrganizationID, claims.ActiveOrganizationRole)
			}
			gotPerms := slices.Sorted(slices.Values(claims.ActiveOrganizationPermissions))
			if diff := cmp.Diff(slices.Sorted(slices.Values(perms)), gotPerms); diff != "" {
				t.Errorf("organization permissions (-want +got):\n%s", diff)
			}
			custom := *claims.Custom.(*map[string]any)
			want := map[string]any{"metadata": map[string]any{"role": "admin"}, "email_verified": true, "extra": "x"}
			for k, v := range want {
				if diff := cmp.Diff(v, custom[k]); diff != "" {
					t.Errorf("custom claim %q (-want +got):\n%s", k, diff)
				}
			}
		})
	}
}

func TestSessionTokenRejections(t *testing.T) {
	now := time.Now()
	srv := newServer(t)
	other := clerktest.GenerateKey()
	tests := []struct {
		name string
		opts []clerktest.TokenOption
	}{
		{"expired", []clerktest.TokenOption{clerktest.TokenIssuedAt(now.Add(-2 * time.Minute))}},
		{"not yet valid", []clerktest.TokenOption{clerktest.TokenIssuedAt(now.Add(time.Minute)), clerktest.TokenNotBefore(now.Add(time.Minute))}},
		{"foreign issuer", []clerktest.TokenOption{clerktest.TokenIssuer("https://evil.example.com")}},
		{"signed by another key", []clerktest.TokenOption{clerktest.TokenSignedWith(other, srv.KeyID())}},
		{"unknown key ID", []clerktest.TokenOption{clerktest.TokenKeyID("ins_unknown")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := verify(t.Context(), srv, srv.SessionToken("user_1", tt.opts...)); err == nil {
				t.Error("jwt.Verify accepted the token")
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	srv := newServer(t)
	oldKID := srv.KeyID()
	oldTok := srv.SessionToken("user_1")
	newKID := srv.RotateKey()
	if newKID == oldKID || srv.KeyID() != newKID {
		t.Fatalf("RotateKey = %q, KeyID = %q; want a new current key", newKID, srv.KeyID())
	}
	newTok := srv.SessionToken("user_1")
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := verify(t.Context(), srv, tok); err != nil {
			t.Errorf("%s token during rotation: %v", name, err)
		}
	}
	srv.RetireKey(oldKID)
	if _, err := verify(t.Context(), srv, oldTok); err == nil {
		t.Error("a token of a retired key still verifies")
	}
	if _, err := verify(t.Context(), srv, newTok); err != nil {
		t.Errorf("new token after retiring the old key: %v", err)
	}
	if _, err := jwt.Verify(t.Context(), &jwt.VerifyParams{Token: newTok, JWK: srv.JSONWebKey()}); err != nil {
		t.Errorf("jwt.Verify with JSONWebKey given: %v", err)
	}
}

func TestSignWebhookVerifiesWithSvix(t *testing.T) {
	srv := newServer(t)
	u := srv.AddUser(steward.User{FirstName: "Ada"})
	payload, err := srv.UserEventPayload("user.updated", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := svix.NewWebhook(srv.WebhookSecret())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(payload, srv.SignWebhook("msg_1", time.Now(), payload)); err != nil {
		t.Errorf("svix rejected a signed payload: %v", err)
	}
	var event struct {
		Type string     `json:"type"`
		Data clerk.User `json:"data"`
	}
	if err := json.Unmarshal(payload, &event); err != nil || event.Type != "user.updated" || event.Data.ID != u.ID {
		t.Errorf("payload %s: decoded %+v, %v", payload, event, err)
	}
	req := srv.NewWebhookRequest("http://example.com/hook", "user.deleted", "user_gone")
	if req.Header.Get("svix-id") == "" || req.Method != http.MethodPost {
		t.Errorf("NewWebhookRequest: %s with headers %v", req.Method, req.Header)
	}
	if _, err := srv.UserEventPayload("user.created", "user_missing"); err == nil {
		t.Error("UserEventPayload of an unknown user for user.created: no error")
	}
}
