package clerkadapter_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/privacy"
)

// TestAPIErrorSaysWhenThrottled: a 429 that outlasts the adapter's
// retries comes back as a privacy.Throttler carrying Clerk's Retry-After,
// so a job engine can wait for it; other failures are not throttling.
func TestAPIErrorSaysWhenThrottled(t *testing.T) {
	type got struct {
		Wait      time.Duration
		Throttled bool
	}
	for _, c := range []struct {
		name       string
		status     int
		retryAfter time.Duration
		want       got
	}{
		{"a 429 with Retry-After is throttling", http.StatusTooManyRequests, 3 * time.Second, got{3 * time.Second, true}},
		{"a 429 always says at least a second, as Clerk does", http.StatusTooManyRequests, 0, got{time.Second, true}},
		{"a 503 is not throttling", http.StatusServiceUnavailable, 0, got{0, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, prov := newProvider(t, nil, clerkadapter.WithMaxAttempts(1))
			u := srv.AddUser(steward.User{FirstName: "Tess"})
			srv.FailNext(1, c.status, c.retryAfter)
			err := prov.DeleteUser(t.Context(), u.ID)
			var th privacy.Throttler
			if !errors.As(err, &th) {
				t.Fatalf("DeleteUser = %v, want an error that is a privacy.Throttler", err)
			}
			wait, ok := th.Throttled()
			if diff := cmp.Diff(c.want, got{wait, ok}); diff != "" {
				t.Errorf("Throttled (-want +got):\n%s", diff)
			}
		})
	}
}
