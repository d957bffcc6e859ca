package main

import (
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
		if _, _, _, _, _, err := identity(); err == nil || !strings.Contains(err.Error(), "CLERK_AUTHORIZED_PARTIES") {
			t.Errorf("CLERK_AUTHORIZED_PARTIES=%q: %v, want an error naming it", parties, err)
		}
	}
	t.Setenv("CLERK_AUTHORIZED_PARTIES", "https://app.example.com, https://admin.example.com")
	_, _, got, _, closeIdP, err := identity()
	if err != nil {
		t.Fatal(err)
	}
	defer closeIdP()
	if diff := cmp.Diff([]string{"https://app.example.com", "https://admin.example.com"}, got); diff != "" {
		t.Errorf("authorized parties (-want +got):\n%s", diff)
	}
}

func TestFakeClerkAcceptsOnlyItsOwnParty(t *testing.T) {
	t.Setenv("CLERK_SECRET_KEY", "")
	_, _, got, demo, closeIdP, err := identity()
	if err != nil {
		t.Fatal(err)
	}
	defer closeIdP()
	if diff := cmp.Diff([]string{clerktest.DefaultAuthorizedParty}, got); diff != "" || len(demo) != 2 {
		t.Errorf("authorized parties (-want +got):\n%s; %d demo users", diff, len(demo))
	}
}
