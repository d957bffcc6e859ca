package clerkadapter_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
)

// fastRetries keeps backoff waits short; Retry-After still applies.
var fastRetries = clerkadapter.WithBackoff(time.Millisecond, 5*time.Millisecond)

func newProvider(t *testing.T, srvOpts []clerktest.Option, opts ...clerkadapter.Option) (*clerktest.Server, *clerkadapter.Provider) {
	t.Helper()
	srv := newServer(t, srvOpts...)
	return srv, clerkadapter.New(srv.ClientConfig(), append([]clerkadapter.Option{fastRetries}, opts...)...)
}

// statuses returns the statuses of the logged requests for path.
func statuses(srv *clerktest.Server, path string) []int {
	var out []int
	for _, r := range srv.Requests() {
		if r.Path == path {
			out = append(out, r.Status)
		}
	}
	return out
}

func TestGetUserMapsEveryField(t *testing.T) {
	srv, prov := newProvider(t, nil)
	ms := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := steward.User{
		ID: "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
		EmailAddresses: []steward.EmailAddress{
			{ID: "idn_a", Address: "ada@example.com", Verified: false},
			{ID: "idn_b", Address: "ada@example.org", Verified: true},
		},
		PrimaryEmailID:  "idn_b",
		FirstName:       "Ada",
		LastName:        "Lovelace",
		ImageURL:        "https://img.example.com/ada.png",
		CreatedAt:       ms("2024-03-01T09:30:00.123Z"),
		UpdatedAt:       ms("2024-03-02T10:00:00.456Z"),
		LastSignInAt:    ms("2024-03-03T11:00:00.789Z"),
		LastActiveAt:    ms("2024-03-04T00:00:00Z"), // Clerk keeps it at day precision
		Banned:          true,
		Locked:          true,
		PublicMetadata:  map[string]any{"role": "admin", "n": 1.5, "nested": map[string]any{"a": []any{"x", true}}},
		PrivateMetadata: map[string]any{"stripe": "cus_1"},
	}
	srv.AddUser(want)
	got, err := prov.GetUser(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}
	if got.EmailVerified() != true {
		t.Error("EmailVerified() = false; the primary address is verified")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv, prov := newProvider(t, nil)
	u := srv.AddUser(steward.User{})
	srv.FailNext(1, http.StatusTooManyRequests, time.Second)

	start := time.Now()
	if _, err := prov.GetUser(t.Context(), u.ID); err != nil {
		t.Fatalf("GetUser after one 429: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("GetUser retried after %v; the 429 said Retry-After: 1", waited)
	}
	if diff := cmp.Diff([]int{429, 200}, statuses(srv, "/v1/users/"+u.ID)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, prov := newProvider(t, nil)
			u := srv.AddUser(steward.User{})
			srv.FailNext(2, status, 0)
			if err := prov.UpdateMetadata(t.Context(), u.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}}); err != nil {
				t.Fatalf("UpdateMetadata after two %d answers: %v", status, err)
			}
			if diff := cmp.Diff([]int{status, status, 200}, statuses(srv, "/v1/users/"+u.ID+"/metadata")); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if got, _ := srv.User(u.ID); got.PublicMetadata["role"] != "admin" {
				t.Errorf("role = %v after the retried update", got.PublicMetadata["role"])
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	srv, prov := newProvider(t, nil, clerkadapter.WithMaxAttempts(3))
	u := srv.AddUser(steward.User{})
	srv.FailNext(10, http.StatusServiceUnavailable, 0)
	_, err := prov.GetUser(t.Context(), u.ID)
	var apiErr *clerkadapter.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || apiErr.Code != "internal_clerk_error" {
		t.Fatalf("GetUser: %v, want an *APIError with status 503", err)
	}
	if n := len(statuses(srv, "/v1/users/"+u.ID)); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestClientErrorsFailAtOnce(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, prov := newProvider(t, nil)
			u := srv.AddUser(steward.User{})
			srv.FailNext(1, status, 0)
			_, err := prov.GetUser(t.Context(), u.ID)
			var apiErr *clerkadapter.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("GetUser: %v (%T), want an *APIError", err, err)
			}
			if apiErr.Status != status || apiErr.Code != "injected_fault" || apiErr.TraceID == "" || apiErr.Temporary() {
				t.Errorf("APIError = %+v, want status %d, code injected_fault, a trace ID, not temporary", apiErr, status)
			}
			if n := len(statuses(srv, "/v1/users/"+u.ID)); n != 1 {
				t.Errorf("%d attempts, want 1: a %d must not be retried", n, status)
			}
			if strings.Contains(err.Error(), u.ID) {
				t.Errorf("error %q contains the user ID", err)
			}
		})
	}
}

func TestWrongSecretKeyIsTyped(t *testing.T) {
	srv := newServer(t)
	prov := clerkadapter.New(func() *clerk.ClientConfig {
		cfg := srv.ClientConfig()
		cfg.Key = clerk.String("sk_test_wrong_and_secret")
		return cfg
	}(), fastRetries)
	err := prov.DeleteUser(t.Context(), "user_1")
	var apiErr *clerkadapter.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Code != "clerk_key_invalid" {
		t.Fatalf("DeleteUser with a wrong key: %v, want a 401 clerk_key_invalid *APIError", err)
	}
	if strings.Contains(err.Error(), "sk_test_wrong_and_secret") {
		t.Errorf("error %q contains the secret key", err)
	}
}

func TestSlowResponseAgainstContextDeadline(t *testing.T) {
	srv, prov := newProvider(t, nil)
	u := srv.AddUser(steward.User{})
	srv.SetLatency(time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := prov.GetUser(ctx, u.ID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetUser past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if strings.Contains(err.Error(), u.ID) || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error %q contains the request URL", err)
	}
}

func TestSlowAttemptIsRetried(t *testing.T) {
	srv, prov := newProvider(t, nil, clerkadapter.WithAttemptTimeout(50*time.Millisecond))
	u := srv.AddUser(steward.User{})
	srv.DelayNext(1, time.Second)
	if _, err := prov.GetUser(t.Context(), u.ID); err != nil {
		t.Fatalf("GetUser after one slow attempt: %v", err)
	}
	if n := srv.CountRequests(http.MethodGet, "/v1/users/"+u.ID); n != 2 {
		t.Errorf("%d requests, want 2 (the slow one abandoned, then the retry)", n)
	}
}

func TestRetryAfterBeyondDeadlineReturnsAtOnce(t *testing.T) {
	srv, prov := newProvider(t, nil)
	u := srv.AddUser(steward.User{})
	srv.FailNext(1, http.StatusTooManyRequests, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := prov.GetUser(ctx, u.ID)
	var apiErr *clerkadapter.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != time.Minute {
		t.Fatalf("GetUser: %v, want the 429 *APIError with RetryAfter 1m", err)
	}
	if ctx.Err() != nil {
		t.Error("GetUser waited until its deadline instead of returning the 429")
	}
}

func TestDeferredRateLimitReturnsAtOnce(t *testing.T) {
	tests := []struct {
		name string
		call func(ctx context.Context, prov *clerkadapter.Provider, id string) error
	}{
		{"GetUser", func(ctx context.Context, prov *clerkadapter.Provider, id string) error {
			_, err := prov.GetUser(ctx, id)
			return err
		}},
		{"DeleteUser", func(ctx context.Context, prov *clerkadapter.Provider, id string) error {
			return prov.DeleteUser(ctx, id)
		}},
		{"UpdateMetadata", func(ctx context.Context, prov *clerkadapter.Provider, id string) error {
			return prov.UpdateMetadata(ctx, id, steward.MetadataPatch{Public: map[string]any{"a": 1}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, prov := newProvider(t, nil)
			u := srv.AddUser(steward.User{})
			srv.FailNext(1, http.StatusTooManyRequests, 30*time.Second)
			before := time.Now()
			err := tt.call(privacy.DeferRateLimits(t.Context()), prov, u.ID)
			var apiErr *clerkadapter.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != 30*time.Second {
				t.Fatalf("%s: %v, want the 429 *APIError with RetryAfter 30s", tt.name, err)
			}
			if took := time.Since(before); took > 5*time.Second {
				t.Errorf("%s waited %v for the Retry-After under privacy.DeferRateLimits", tt.name, took)
			}
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	srv, prov := newProvider(t, nil)
	u := srv.AddUser(steward.User{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]error{
		"GetUser":        func() error { _, err := prov.GetUser(ctx, u.ID); return err }(),
		"UpdateMetadata": prov.UpdateMetadata(ctx, u.ID, steward.MetadataPatch{Public: map[string]any{"a": 1}}),
		"DeleteUser":     prov.DeleteUser(ctx, u.ID),
	}
	for _, err := range prov.ListUsers(ctx, steward.UserQuery{}) {
		calls["ListUsers"] = err
	}
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests were sent with a cancelled context", n)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	srv, prov := newProvider(t, nil)
	u := srv.AddUser(steward.User{})
	srv.FailNext(1, http.StatusTooManyRequests, 30*time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := prov.GetUser(ctx, u.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("GetUser cancelled while waiting out Retry-After: %v, want context.Canceled", err)
	}
}

func TestDeleteOfMissingUserSucceeds(t *testing.T) {
	srv, prov := newProvider(t, nil)
	const id = "user_2neverExisted"
	if err := prov.DeleteUser(t.Context(), id); err != nil {
		t.Fatalf("DeleteUser of a missing user: %v, want nil", err)
	}
	if diff := cmp.Diff([]int{404}, statuses(srv, "/v1/users/"+id)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestBare404IsNotADeletedUser(t *testing.T) {
	// A 404 without Clerk's resource_not_found code (a proxy or a wrong
	// host) is not Clerk saying the user is gone: DeleteUser must not
	// report success.
	srv := newServer(t)
	cfg := srv.ClientConfig()
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("<html>nope</html>")), Request: r}, nil
	})}
	err := clerkadapter.New(cfg).DeleteUser(t.Context(), "user_1")
	var apiErr *clerkadapter.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "" {
		t.Errorf("DeleteUser answered by a bare 404: %v, want an *APIError with status 404 and no code", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetriesProxyErrorsAndNetworkErrors(t *testing.T) {
	srv := newServer(t)
	u := srv.AddUser(steward.User{FirstName: "Ada"})
	cfg := srv.ClientConfig()
	base := cfg.HTTPClient.Transport
	failures := []func(r *http.Request) (*http.Response, error){
		func(r *http.Request) (*http.Response, error) { // a proxy's HTML error page
			return &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{"Content-Type": {"text/html"}},
				Body: io.NopCloser(strings.NewReader("<html>bad gateway</html>")), Request: r}, nil
		},
		func(r *http.Request) (*http.Response, error) { // a reset connection
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		},
		func(r *http.Request) (*http.Response, error) { return nil, io.ErrUnexpectedEOF },
	}
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if len(failures) > 0 {
			f := failures[0]
			failures = failures[1:]
			return f(r)
		}
		return base.RoundTrip(r)
	})}
	prov := clerkadapter.New(cfg, fastRetries)
	got, err := prov.GetUser(t.Context(), u.ID)
	if err != nil || got.FirstName != "Ada" {
		t.Fatalf("GetUser after a 502 page, a reset and a cut-off answer: %+v, %v", got, err)
	}
}

func TestInvalidIDsSendNothing(t *testing.T) {
	srv, prov := newProvider(t, nil)
	for _, id := range []string{"", "abc", "user_", "usr_123", "user_1/../../jwks", "user_1?x=1"} {
		_, err := prov.GetUser(t.Context(), id)
		if !errors.Is(err, steward.ErrInvalidUserID) {
			t.Errorf("GetUser(%q): %v, want ErrInvalidUserID", id, err)
		}
		if err := prov.DeleteUser(t.Context(), id); !errors.Is(err, steward.ErrInvalidUserID) {
			t.Errorf("DeleteUser(%q): %v, want ErrInvalidUserID", id, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests were sent for malformed IDs", n)
	}
}

func TestListUsersPagesLazilyByCreationTime(t *testing.T) {
	srv, prov := newProvider(t, nil)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 7 {
		ids = append(ids, srv.AddUser(steward.User{CreatedAt: base.Add(time.Duration(i) * time.Hour)}).ID)
	}
	srv.ResetRequests()

	var got []string
	for u, err := range prov.ListUsers(t.Context(), steward.UserQuery{PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.ID)
		if len(got) == 2 {
			break
		}
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("stopping within the first page sent %d requests, want 1", n)
	}

	srv.ResetRequests()
	cutoff := base.Add(5*time.Hour + 500*time.Microsecond)
	got = nil
	for u, err := range prov.ListUsers(t.Context(), steward.UserQuery{PageSize: 2, CreatedBefore: cutoff}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.ID)
	}
	if diff := cmp.Diff(ids[:6], got); diff != "" {
		t.Errorf("ListUsers(CreatedBefore) (-want +got):\n%s", diff)
	}
	// Pages after the first ask for one more user (the last one seen,
	// which tells where the page starts); a full last page costs one more
	// request to learn it was the last.
	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		q := r.Query
		if q.Get("order_by") != "+created_at" || q.Get("created_at_before") != strconv.FormatInt(cutoff.UnixMilli()+1, 10) || q.Has("offset") {
			t.Errorf("request %d query %v: want order_by=+created_at, created_at_before rounded up to the ms, no offset", i, q)
		}
		if i > 0 && q.Get("created_at_after") == "" {
			t.Errorf("request %d query %v: want created_at_after the previous page", i, q)
		}
	}
}

func TestListUsersManyInOneMillisecond(t *testing.T) {
	// More users share a creation millisecond than fit in a page: paging
	// falls back to offsets within that millisecond and still yields each
	// user once.
	srv, prov := newProvider(t, nil)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	srv.AddUser(steward.User{ID: "user_0first", CreatedAt: at.Add(-time.Hour)})
	want = append(want, "user_0first")
	for i := range 7 {
		id := "user_tie" + string(rune('a'+i))
		srv.AddUser(steward.User{ID: id, CreatedAt: at})
		want = append(want, id)
	}
	srv.AddUser(steward.User{ID: "user_zlast", CreatedAt: at.Add(time.Hour)})
	want = append(want, "user_zlast")

	for _, size := range []int{1, 2, 3} {
		var got []string
		for u, err := range prov.ListUsers(t.Context(), steward.UserQuery{PageSize: size}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, u.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PageSize %d (-want +got):\n%s", size, diff)
		}
	}
}

func TestRateLimitKeepsUnderClerksLimit(t *testing.T) {
	const n, window = 3, 300 * time.Millisecond
	srv, prov := newProvider(t, []clerktest.Option{clerktest.WithRateLimit(n, window)},
		// The client counts when it sends, the server when a request
		// arrives; the first request's connection setup delays its
		// arrival, so the client leaves some headroom.
		clerkadapter.WithRateLimit(n, window+100*time.Millisecond), clerkadapter.WithMaxAttempts(1))
	u := srv.AddUser(steward.User{})
	for i := range 2*n + 1 {
		if _, err := prov.GetUser(t.Context(), u.ID); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	for _, s := range statuses(srv, "/v1/users/"+u.ID) {
		if s != http.StatusOK {
			t.Errorf("the server answered %d; the limiter let too many requests through", s)
		}
	}
}
