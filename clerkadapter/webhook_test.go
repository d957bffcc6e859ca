package clerkadapter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

// webhookFixture is a fake Clerk that signs deliveries and a handler that
// records what it is given.
type webhookFixture struct {
	srv         *clerktest.Server
	clock       *clock
	h           *clerkadapter.WebhookHandler
	events      []clerkadapter.UserEvent
	invalidated []string
	rejected    []error
	failNext    error
	user        steward.User
}

type invalidator func(string)

func (f invalidator) Invalidate(id string) { f(id) }

func newWebhookFixture(t *testing.T) *webhookFixture {
	t.Helper()
	f := &webhookFixture{clock: newClock()}
	f.srv = newServer(t, clerktest.WithNow(f.clock.Now))
	record := func(ctx context.Context, e clerkadapter.UserEvent) error {
		if err := f.failNext; err != nil {
			f.failNext = nil
			return err
		}
		f.events = append(f.events, e)
		return nil
	}
	h, err := clerkadapter.NewWebhookHandler(f.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		OnUserCreated: record,
		OnUserUpdated: record,
		OnUserDeleted: record,
		Roles:         invalidator(func(id string) { f.invalidated = append(f.invalidated, id) }),
		Now:           f.clock.Now,
		OnReject:      func(r *http.Request, err error) { f.rejected = append(f.rejected, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.user = f.srv.AddUser(steward.User{
		FirstName:      "Ada",
		EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "admin"},
	})
	return f
}

func (f *webhookFixture) deliver(r *http.Request) int {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	return rec.Code
}

// request builds a delivery of payload signed at ts with msgID.
func (f *webhookFixture) request(msgID string, ts time.Time, payload []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/clerk", bytes.NewReader(payload))
	r.Header = f.srv.SignWebhook(msgID, ts, payload)
	return r
}

func TestWebhookDeliversUserEvents(t *testing.T) {
	f := newWebhookFixture(t)
	for _, typ := range []string{"user.created", "user.updated", "user.deleted"} {
		if code := f.deliver(f.srv.NewWebhookRequest("/webhooks/clerk", typ, f.user.ID)); code != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (rejections: %v)", typ, code, f.rejected)
		}
	}
	if len(f.events) != 3 {
		t.Fatalf("handlers got %d events, want 3", len(f.events))
	}
	for i, typ := range []clerkadapter.EventType{clerkadapter.UserCreated, clerkadapter.UserUpdated, clerkadapter.UserDeleted} {
		e := f.events[i]
		if e.Type != typ || e.UserID != f.user.ID || e.MessageID == "" || !e.Time.Equal(f.clock.Now()) || e.InstanceID == "" {
			t.Errorf("event %d = %+v, want type %s for the user, with message ID, time and instance", i, e, typ)
		}
	}
	if diff := cmp.Diff(f.user, f.events[1].User); diff != "" {
		t.Errorf("user.updated carries the user (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(steward.User{ID: f.user.ID}, f.events[2].User); diff != "" {
		t.Errorf("user.deleted carries only the ID (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{f.user.ID, f.user.ID}, f.invalidated); diff != "" {
		t.Errorf("roles invalidated for (-want +got):\n%s", diff)
	}
}

func TestWebhookRejections(t *testing.T) {
	payload := func(f *webhookFixture) []byte {
		p, err := f.srv.UserEventPayload("user.updated", f.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := clerktest.NewServer(clerktest.WithSigningKey(sharedKey()))
	defer other.Close()

	tests := []struct {
		name    string
		req     func(f *webhookFixture) *http.Request
		status  int
		wantErr error
	}{
		{"a tampered body", func(f *webhookFixture) *http.Request {
			p := payload(f)
			r := f.request("msg_1", f.clock.Now(), p)
			r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(p, []byte(`"admin"`), []byte(`"root!"`), 1)))
			return r
		}, http.StatusBadRequest, clerkadapter.ErrWebhookSignature},
		{"another endpoint's secret", func(f *webhookFixture) *http.Request {
			p := payload(f)
			r := f.request("msg_1", f.clock.Now(), p)
			r.Header = other.SignWebhook("msg_1", f.clock.Now(), p)
			return r
		}, http.StatusBadRequest, clerkadapter.ErrWebhookSignature},
		{"no signature headers", func(f *webhookFixture) *http.Request {
			r := f.request("msg_1", f.clock.Now(), payload(f))
			r.Header = http.Header{}
			return r
		}, http.StatusBadRequest, clerkadapter.ErrWebhookSignature},
		{"a timestamp six minutes old", func(f *webhookFixture) *http.Request {
			return f.request("msg_1", f.clock.Now().Add(-6*time.Minute), payload(f))
		}, http.StatusBadRequest, clerkadapter.ErrWebhookTimestamp},
		{"a timestamp six minutes ahead", func(f *webhookFixture) *http.Request {
			return f.request("msg_1", f.clock.Now().Add(6*time.Minute), payload(f))
		}, http.StatusBadRequest, clerkadapter.ErrWebhookTimestamp},
		{"a signed body that is not JSON", func(f *webhookFixture) *http.Request {
			return f.request("msg_1", f.clock.Now(), []byte("hello"))
		}, http.StatusBadRequest, clerkadapter.ErrWebhookPayload},
		{"a user event with a malformed user ID", func(f *webhookFixture) *http.Request {
			return f.request("msg_1", f.clock.Now(), []byte(`{"type":"user.deleted","data":{"id":"user_1/../../x","deleted":true}}`))
		}, http.StatusBadRequest, clerkadapter.ErrWebhookPayload},
		{"a GET", func(f *webhookFixture) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/webhooks/clerk", nil)
		}, http.StatusMethodNotAllowed, nil},
		{"a body over the limit", func(f *webhookFixture) *http.Request {
			return f.request("msg_1", f.clock.Now(), bytes.Repeat([]byte(" "), clerkadapter.DefaultWebhookMaxBody+1))
		}, http.StatusRequestEntityTooLarge, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWebhookFixture(t)
			if code := f.deliver(tt.req(f)); code != tt.status {
				t.Errorf("status %d, want %d", code, tt.status)
			}
			if len(f.events) != 0 || len(f.invalidated) != 0 {
				t.Errorf("a rejected delivery reached the handlers (%v) or invalidated roles (%v)", f.events, f.invalidated)
			}
			if len(f.rejected) != 1 || (tt.wantErr != nil && !errors.Is(f.rejected[0], tt.wantErr)) {
				t.Errorf("OnReject got %v, want one %v", f.rejected, tt.wantErr)
			}
		})
	}
}

func TestWebhookReplay(t *testing.T) {
	f := newWebhookFixture(t)
	p, _ := f.srv.UserEventPayload("user.deleted", f.user.ID)
	ts := f.clock.Now()
	if code := f.deliver(f.request("msg_once", ts, p)); code != http.StatusOK {
		t.Fatalf("first delivery: %d", code)
	}
	f.clock.Advance(time.Minute)
	// A replay of a handled message, or Svix's redelivery of it after its
	// answer was lost, is acknowledged so that Svix stops, and not
	// processed again.
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, f.request("msg_once", ts, p))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"duplicate":true`) {
		t.Errorf("replay: %d %s, want 200 with duplicate true", rec.Code, rec.Body)
	}
	if len(f.events) != 1 {
		t.Errorf("the handler ran %d times, want once", len(f.events))
	}
	if len(f.rejected) != 0 {
		t.Errorf("OnReject got %v for an acknowledged duplicate, want nothing", f.rejected)
	}
	// Past the tolerance the timestamp check alone stops the replay.
	f.clock.Advance(clerkadapter.DefaultWebhookTolerance)
	if code := f.deliver(f.request("msg_once", ts, p)); code != http.StatusBadRequest {
		t.Errorf("replay after the tolerance: status %d, want 400", code)
	}
}

// A delivery of a message whose handling is still under way (Svix's
// retry after a timeout, reaching another replica) is refused with 409,
// not acknowledged: were the first handling to fail, an acknowledged
// retry would lose the event.
func TestWebhookDeliveryDuringHandlingIsRefused(t *testing.T) {
	f := newWebhookFixture(t)
	p, _ := f.srv.UserEventPayload("user.deleted", f.user.ID)
	ts := f.clock.Now()
	var during int
	var handled atomic.Int32
	h, err := clerkadapter.NewWebhookHandler(f.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		OnUserDeleted: func(context.Context, clerkadapter.UserEvent) error {
			if handled.Add(1) == 1 {
				during = f.deliver(f.request("msg_slow", ts, p))
				return errors.New("erasure queue unavailable")
			}
			return nil
		},
		Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	if code := f.deliver(f.request("msg_slow", ts, p)); code != http.StatusInternalServerError {
		t.Fatalf("failing first handling: status %d, want 500", code)
	}
	if during != http.StatusConflict {
		t.Errorf("a delivery during the handling: status %d, want 409", during)
	}
	if code := f.deliver(f.request("msg_slow", ts, p)); code != http.StatusOK {
		t.Errorf("redelivery after the failure: status %d, want 200", code)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("the handler ran %d times, want 2: the failed handling and the redelivery", n)
	}
}

func TestWebhookHandlerFailureAllowsRedelivery(t *testing.T) {
	f := newWebhookFixture(t)
	p, _ := f.srv.UserEventPayload("user.deleted", f.user.ID)
	f.failNext = errors.New("erasure queue unavailable")
	if code := f.deliver(f.request("msg_retry", f.clock.Now(), p)); code != http.StatusInternalServerError {
		t.Fatalf("failing handler: status %d, want 500", code)
	}
	f.clock.Advance(5 * time.Second) // Svix's second attempt
	if code := f.deliver(f.request("msg_retry", f.clock.Now(), p)); code != http.StatusOK {
		t.Fatalf("redelivery after a failure: status %d, want 200", code)
	}
	if len(f.events) != 1 {
		t.Errorf("handled %d times, want once", len(f.events))
	}
}

func TestWebhookIgnoresOtherEvents(t *testing.T) {
	f := newWebhookFixture(t)
	p := []byte(`{"type":"session.created","object":"event","data":{"id":"sess_1","user_id":"user_1"}}`)
	if code := f.deliver(f.request("msg_s", f.clock.Now(), p)); code != http.StatusOK {
		t.Errorf("status %d, want 200", code)
	}
	if len(f.events) != 0 || len(f.invalidated) != 0 || len(f.rejected) != 0 {
		t.Errorf("an ignored event reached handlers %v / roles %v / OnReject %v", f.events, f.invalidated, f.rejected)
	}
}

func TestNewWebhookHandlerRefusesUnusableSecrets(t *testing.T) {
	// Svix issues symmetric secrets of 24 to 75 bytes (svix-webhooks,
	// server/svix-server/src/core/types/mod.rs, EndpointSecret::KEY_SIZE);
	// svix.NewWebhook itself only refuses an empty key, so "whsec_" plus
	// one byte would verify signatures anyone can compute.
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	fake := newServer(t)
	for _, tt := range []struct {
		name, secret string
		ok           bool
	}{
		{"empty, as an unset environment variable", "", false},
		{"the prefix alone", "whsec_", false},
		{"blank", "  ", false},
		{"not base64", "whsec_not*base64", false},
		{"a 1-byte key", "whsec_" + b64(1), false},
		{"a 23-byte key", "whsec_" + b64(23), false},
		{"a 24-byte key", "whsec_" + b64(24), true},
		{"a 24-byte key without the prefix, as svix accepts", b64(24), true},
		{"the fake's secret", fake.WebhookSecret(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := clerkadapter.NewWebhookHandler(tt.secret, nil)
			if tt.ok {
				if err != nil || h == nil {
					t.Errorf("NewWebhookHandler: %v", err)
				}
				return
			}
			if !errors.Is(err, clerkadapter.ErrWebhookSecret) || h != nil {
				t.Fatalf("NewWebhookHandler = %v, %v; want ErrWebhookSecret", h, err)
			}
			if enc := strings.TrimPrefix(tt.secret, "whsec_"); len(enc) > 2 && strings.Contains(err.Error(), enc) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestShortSecretCannotBeForged(t *testing.T) {
	// The attack the rule stops: with a 1-byte key, a forger tries the 256
	// keys and one signs a user.deleted that the handler would accept.
	for k := range 256 {
		secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte{byte(k)})
		if _, err := clerkadapter.NewWebhookHandler(secret, &clerkadapter.WebhookOptions{
			OnUserDeleted: func(context.Context, clerkadapter.UserEvent) error { return nil },
		}); err == nil {
			t.Fatalf("a handler was built with the guessable key %d", k)
		}
	}
}

func TestMemoryReplayStore(t *testing.T) {
	clk := newClock()
	c := clerkadapter.NewMemoryReplayStore(3, clk.Now)
	ctx := context.Background()
	fresh := func(id string, ttl time.Duration) bool {
		seen, err := c.SeenMessage(ctx, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return !seen
	}
	if !fresh("a", time.Minute) || fresh("a", time.Minute) {
		t.Error("a fresh ID must be recorded once")
	}
	clk.Advance(time.Minute)
	if !fresh("a", time.Minute) {
		t.Error("an expired ID must be recorded again")
	}
	if err := c.ForgetMessage(ctx, "a"); err != nil || !fresh("a", time.Minute) {
		t.Error("a forgotten ID must be recorded again")
	}
	handled := func(id string) bool {
		ok, err := c.MessageHandled(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if handled("a") {
		t.Error("an ID just recorded is reported handled")
	}
	if err := c.HandleMessage(ctx, "a"); err != nil || !handled("a") {
		t.Errorf("HandleMessage = %v; the ID must then be reported handled", err)
	}
	clk.Advance(time.Minute)
	if handled("a") || !fresh("a", time.Minute) || handled("a") {
		t.Error("an expired handled ID must be recorded afresh, unhandled")
	}
	if err := c.HandleMessage(ctx, "never"); err != nil || handled("never") {
		t.Errorf("HandleMessage of an unknown ID = %v, and it must not record it", err)
	}
	for i := range 10 {
		fresh(fmt.Sprint("id", i), time.Duration(i+2)*time.Minute)
	}
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d, want the bound 3", n)
	}
	if fresh("id9", time.Minute) {
		t.Error("the latest ID, expiring last, was evicted first")
	}
	for _, tt := range []struct {
		id  string
		ttl time.Duration
	}{{"", time.Minute}, {"b", 0}, {"b", -time.Second}} {
		if _, err := c.SeenMessage(ctx, tt.id, tt.ttl); err == nil {
			t.Errorf("SeenMessage(%q, %v) succeeded, want an error", tt.id, tt.ttl)
		}
	}
}

// replayFunc is a ReplayStore whose SeenMessage is a function; it
// forgets nothing and never finds a message handled.
type replayFunc func(ctx context.Context, id string, ttl time.Duration) (bool, error)

func (f replayFunc) SeenMessage(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	return f(ctx, id, ttl)
}

func (f replayFunc) HandleMessage(context.Context, string) error { return nil }

func (f replayFunc) MessageHandled(context.Context, string) (bool, error) { return false, nil }

func (f replayFunc) ForgetMessage(context.Context, string) error { return nil }

func TestWebhookReplayStoreDownFailsClosed(t *testing.T) {
	f := newWebhookFixture(t)
	down := errors.New("database unreachable")
	h, err := clerkadapter.NewWebhookHandler(f.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		OnUserDeleted: func(context.Context, clerkadapter.UserEvent) error {
			t.Error("the handler ran for a message whose ID could not be recorded")
			return nil
		},
		Replay:   replayFunc(func(context.Context, string, time.Duration) (bool, error) { return false, down }),
		Now:      f.clock.Now,
		OnReject: func(r *http.Request, err error) { f.rejected = append(f.rejected, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	p, _ := f.srv.UserEventPayload("user.deleted", f.user.ID)
	if code := f.deliver(f.request("msg_down", f.clock.Now(), p)); code != http.StatusServiceUnavailable {
		t.Errorf("status %d with the replay store down, want 503 so that Svix retries", code)
	}
	if len(f.rejected) != 1 || !errors.Is(f.rejected[0], down) {
		t.Errorf("OnReject got %v, want the store's error", f.rejected)
	}
}

func TestWebhookReplayTTLCoversTheTolerance(t *testing.T) {
	f := newWebhookFixture(t)
	var ttls []time.Duration
	h, err := clerkadapter.NewWebhookHandler(f.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		Replay: replayFunc(func(_ context.Context, _ string, ttl time.Duration) (bool, error) {
			ttls = append(ttls, ttl)
			return false, nil
		}),
		Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	p, _ := f.srv.UserEventPayload("user.updated", f.user.ID)
	tol := clerkadapter.DefaultWebhookTolerance
	for _, age := range []time.Duration{0, -tol, 2 * time.Minute, tol} {
		if code := f.deliver(f.request("msg_"+age.String(), f.clock.Now().Add(-age), p)); code != http.StatusOK {
			t.Fatalf("a delivery %v old: status %d", age, code)
		}
	}
	// Until the timestamp leaves the window here, and the tolerance again
	// for replicas whose clocks run behind.
	want := []time.Duration{2 * tol, 3 * tol, 2*tol - 2*time.Minute, tol}
	if diff := cmp.Diff(want, ttls); diff != "" {
		t.Errorf("ttls given to the store (-want +got):\n%s", diff)
	}
}
