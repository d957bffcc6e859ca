package privacycenter_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
)

// TestBehindClerkSessions mounts the center behind clerkadapter's
// session middleware in both of its modes — roles from the token's
// claims (confirmed at Clerk for an admin's) and roles read live from
// the identity provider — and checks who gets which page, and that the
// session of a user whose erasure has begun no longer opens the pages.
func TestBehindClerkSessions(t *testing.T) {
	modes := []struct {
		name string
		opts func(w *world) *clerkadapter.SessionOptions
	}{
		{"claims", func(w *world) *clerkadapter.SessionOptions {
			return &clerkadapter.SessionOptions{AuthorizedParties: []string{clerktest.DefaultAuthorizedParty}, Fence: w.svc}
		}},
		{"live", func(w *world) *clerkadapter.SessionOptions {
			return &clerkadapter.SessionOptions{Roles: clerkadapter.NewLiveRoles(w.idp, nil),
				AuthorizedParties: []string{clerktest.DefaultAuthorizedParty}, Fence: w.svc}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			w := newWorld(t, withClerk())
			auth := clerkadapter.NewSessionAuth(w.clerk.ClientConfig(), m.opts(w))
			h := auth.Handler(w.center.Handler())
			get := func(path, user string) int {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				if user != "" {
					r.Header.Set("Authorization", "Bearer "+w.clerk.SessionToken(user))
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				return rec.Code
			}
			for _, tc := range []struct {
				name, path, user string
				want             int
			}{
				{"nobody, self-service", "/privacy/", "", http.StatusUnauthorized},
				{"the user, self-service", "/privacy/", w.user, http.StatusOK},
				{"the user, admin", "/privacy/admin", w.user, http.StatusForbidden},
				{"the admin, admin", "/privacy/admin", w.admin, http.StatusOK},
			} {
				if got := get(tc.path, tc.user); got != tc.want {
					t.Errorf("%s: GET %s answered %d, want %d", tc.name, tc.path, got, tc.want)
				}
			}
			if _, err := w.svc.QueueErasure(context.Background(), w.user, privacy.SkipGracePeriod()); err != nil {
				t.Fatal(err)
			}
			if got := get("/privacy/", w.user); got != http.StatusUnauthorized {
				t.Errorf("a user being erased: GET /privacy/ answered %d, want 401 (the fenced session has no principal)", got)
			}
		})
	}
}
