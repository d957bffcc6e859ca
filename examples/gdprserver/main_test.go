package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

func TestServerBoundsEveryConnection(t *testing.T) {
	srv := newHTTPServer(nil)
	got := []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout}
	want := []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute, 2 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read-header, read, write and idle timeouts (-want +got):\n%s", diff)
	}
}

func TestRealClerkNeedsAuthorizedParties(t *testing.T) {
	t.Setenv("CLERK_SECRET_KEY", "sk_test_not_a_real_key")
	for _, parties := range []string{"", " , "} {
		t.Setenv("CLERK_AUTHORIZED_PARTIES", parties)
		if _, err := identity(); err == nil || !strings.Contains(err.Error(), "CLERK_AUTHORIZED_PARTIES") {
			t.Errorf("CLERK_AUTHORIZED_PARTIES=%q: %v, want an error naming it", parties, err)
		}
	}
	t.Setenv("CLERK_AUTHORIZED_PARTIES", "https://app.example.com, https://admin.example.com")
	clk, err := identity()
	if err != nil {
		t.Fatal(err)
	}
	defer clk.close()
	if diff := cmp.Diff([]string{"https://app.example.com", "https://admin.example.com"}, clk.parties); diff != "" {
		t.Errorf("authorized parties (-want +got):\n%s", diff)
	}
	if clk.webhookSecret != "" {
		t.Errorf("webhook secret %q without CLERK_WEBHOOK_SECRET, want none (no endpoint)", clk.webhookSecret)
	}
	t.Setenv("CLERK_WEBHOOK_SECRET", "whsec_from_the_dashboard")
	if clk, err := identity(); err != nil || clk.webhookSecret != "whsec_from_the_dashboard" {
		t.Errorf("with CLERK_WEBHOOK_SECRET: secret %q, %v; want the variable's value", clk.webhookSecret, err)
	}
}

func TestFakeClerkAcceptsOnlyItsOwnParty(t *testing.T) {
	t.Setenv("CLERK_SECRET_KEY", "")
	clk, err := identity()
	if err != nil {
		t.Fatal(err)
	}
	defer clk.close()
	if diff := cmp.Diff([]string{clerktest.DefaultAuthorizedParty}, clk.parties); diff != "" || len(clk.demo) != 2 {
		t.Errorf("authorized parties (-want +got):\n%s; %d demo users", diff, len(clk.demo))
	}
	if clk.webhookSecret == "" {
		t.Error("the fake Clerk gives no webhook secret: /webhooks/clerk would not be served")
	}
}

func TestDemoSignInSetsTheSessionCookie(t *testing.T) {
	h := demoSignIn([]demoUser{{"user", "user_1", "tok-user"}, {"admin", "user_2", "tok-admin"}})
	tests := []struct {
		as, wantLocation, wantCookie string
		wantStatus                   int
	}{
		{"user", "/privacy/", "tok-user", http.StatusSeeOther},
		{"admin", "/privacy/admin", "tok-admin", http.StatusSeeOther},
		{"user_1", "", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/demo/sign-in?as="+tt.as, nil))
		var cookie string
		for _, c := range rec.Result().Cookies() {
			if c.Name == "__session" && c.HttpOnly {
				cookie = c.Value
			}
		}
		got := []any{rec.Code, rec.Header().Get("Location"), cookie}
		if diff := cmp.Diff([]any{tt.wantStatus, tt.wantLocation, tt.wantCookie}, got); diff != "" {
			t.Errorf("as=%s: status, Location, __session (-want +got):\n%s", tt.as, diff)
		}
	}
}
