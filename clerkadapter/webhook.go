package clerkadapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/stewardlabs/steward"
)

// Defaults of WebhookOptions.
const (
	// DefaultWebhookTolerance is how far a delivery's timestamp may be
	// from now, as in Svix's own libraries.
	DefaultWebhookTolerance = 5 * time.Minute
	// DefaultWebhookMaxBody bounds a delivery's body.
	DefaultWebhookMaxBody = 1 << 20
	// DefaultReplayStoreSize bounds the default MemoryReplayStore.
	DefaultReplayStoreSize = 10_000
	// MinWebhookSecretBytes is the shortest signing key NewWebhookHandler
	// accepts: 24 bytes, the shortest symmetric endpoint secret Svix
	// issues or accepts (svix-webhooks, server/svix-server/src/core/types,
	// EndpointSecret::KEY_SIZE). Svix's Go library itself only refuses an
	// empty key.
	MinWebhookSecretBytes = 24
)

// ErrWebhookSecret reports a webhook signing secret NewWebhookHandler
// refuses: empty (an unset environment variable reads as "" or
// "whsec_"), not base64, or shorter than MinWebhookSecretBytes. A handler
// with such a key would accept deliveries anyone can forge.
var ErrWebhookSecret = errors.New("clerkadapter: unusable webhook signing secret")

// Errors of webhook verification, reported to WebhookOptions.OnReject.
var (
	// ErrWebhookSignature reports missing Svix headers or a signature
	// that does not match the body.
	ErrWebhookSignature = errors.New("clerkadapter: webhook signature does not verify")
	// ErrWebhookTimestamp reports a delivery whose timestamp is outside
	// the tolerance.
	ErrWebhookTimestamp = errors.New("clerkadapter: webhook timestamp outside tolerance")
	// ErrWebhookReplay reports a message ID accepted by a delivery whose
	// handling has not finished (answered 409, so that Svix tries again
	// later); a message already handled is acknowledged instead.
	ErrWebhookReplay = errors.New("clerkadapter: webhook message replayed")
	// ErrWebhookPayload reports a signed body that is not a Clerk event.
	ErrWebhookPayload = errors.New("clerkadapter: malformed webhook payload")
)

// EventType is the type of a Clerk webhook event.
type EventType string

// The user events WebhookHandler decodes. Other types are acknowledged
// and ignored.
const (
	UserCreated EventType = "user.created"
	UserUpdated EventType = "user.updated"
	UserDeleted EventType = "user.deleted"
)

// UserEvent is a decoded user.created, user.updated or user.deleted event.
type UserEvent struct {
	// MessageID is the Svix message ID (svix-id); redeliveries of one
	// event share it.
	MessageID string
	Type      EventType
	// Time is when Clerk created the event.
	Time       time.Time
	InstanceID string
	// UserID is the user the event is about; it is a valid Clerk user ID.
	UserID string
	// User is the user as the event carries it (user.created and
	// user.updated); for user.deleted only its ID is set.
	User steward.User
}

// LogValue implements slog.LogValuer without the user's ID or data.
func (e UserEvent) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("messageID", e.MessageID),
		slog.String("type", string(e.Type)),
		slog.Time("time", e.Time),
		slog.Bool("hasUser", e.UserID != ""),
	)
}

// ReplayStore remembers accepted webhook message IDs so that a message
// is handled once: a captured delivery replayed while its timestamp is
// still within the tolerance is not processed again, and Svix's
// redelivery of a message already handled (its answer was lost, say) is
// acknowledged without being processed again. Its methods use only
// standard types, so a store in another package (sqlstore's
// WebhookMessages) implements it without importing this one.
// Implementations must be safe for concurrent use.
type ReplayStore interface {
	// SeenMessage records msgID for ttl, judged by the store's own clock,
	// and reports seen = false; or, when msgID is already recorded and
	// its record has not expired, it reports seen = true and leaves the
	// record as it was. It is atomic: of any number of concurrent calls
	// with one ID, from any number of processes sharing the store, one
	// reports false. An empty msgID or a ttl that is not positive is an
	// error.
	SeenMessage(ctx context.Context, msgID string, ttl time.Duration) (seen bool, err error)
	// HandleMessage marks msgID's unexpired record as handled, leaving its
	// expiry as it was. Marking an ID that is not recorded (or whose
	// record expired) is not an error and records nothing.
	HandleMessage(ctx context.Context, msgID string) error
	// MessageHandled reports whether msgID is recorded, unexpired and
	// marked handled.
	MessageHandled(ctx context.Context, msgID string) (bool, error)
	// ForgetMessage removes msgID's record, so that Svix's redelivery of
	// a message whose handling failed is accepted. Forgetting an ID that
	// is not recorded is not an error.
	ForgetMessage(ctx context.Context, msgID string) error
}

// WebhookOptions configures a WebhookHandler. nil gives the defaults
// with no handlers.
type WebhookOptions struct {
	// OnUserCreated, OnUserUpdated and OnUserDeleted handle the events.
	// An error answers 500, so Svix delivers the event again later; since
	// Svix delivers at least once, handlers must be idempotent. A
	// user.deleted handler is where local erasure starts.
	OnUserCreated func(ctx context.Context, e UserEvent) error
	OnUserUpdated func(ctx context.Context, e UserEvent) error
	OnUserDeleted func(ctx context.Context, e UserEvent) error

	// Roles, when set, has its cached account of the user invalidated
	// on user.updated and user.deleted, before the handlers run; pass the
	// SessionAuth (which invalidates its RoleSource and its role
	// confirmations) or the LiveRoles given to SessionOptions.Roles.
	// When it has an InvalidateContext method, as those two have, that
	// is called, so that a LiveRoles with an InvalidationLog tells the
	// other replicas; its error fails the delivery with 500 (the
	// handlers do not run) and Svix delivers it again.
	Roles interface{ Invalidate(userID string) }

	// Replay remembers accepted message IDs. nil means a
	// MemoryReplayStore of DefaultReplayStoreSize entries, which protects
	// one process only: a delivery replayed to another replica is
	// accepted there. Several replicas share one store, such as
	// sqlstore's WebhookMessages over their database. A store that
	// cannot be reached fails the delivery with 503, without calling
	// the handlers, so that Svix delivers it again later.
	Replay ReplayStore

	// Tolerance is how far a delivery's timestamp may be from now. Zero
	// means DefaultWebhookTolerance.
	Tolerance time.Duration

	// MaxBodyBytes bounds a delivery's body. Zero means
	// DefaultWebhookMaxBody.
	MaxBodyBytes int64

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// OnReject, when set, is called for each delivery that is rejected or
	// whose handler fails, for logging and metrics.
	OnReject func(r *http.Request, err error)
}

// WebhookHandler is an http.Handler for Clerk's webhook endpoint. It
// verifies the Svix signature (svix-id, svix-timestamp, svix-signature)
// with the endpoint's signing secret, rejects deliveries whose timestamp
// is outside the tolerance and message IDs it has already accepted,
// decodes user events and calls the handlers.
//
// Answers: 200 when handled or ignored (an event type without handler),
// and for a message ID already handled, which is not processed again
// (body {"ok": true, "duplicate": true}), so Svix stops redelivering it;
// 400 for a bad signature, a stale timestamp or a malformed payload; 405
// for a method other than POST; 409 for a message ID whose handling, by
// this or another replica, has not finished; 413 for an oversized body;
// 500 when a handler fails and 503 when the replay store cannot be
// reached (Svix retries 409, 500 and 503). Other bodies are JSON:
// {"ok": true} or {"error": "..."}.
type WebhookHandler struct {
	wh        *svix.Webhook
	o         WebhookOptions
	tolerance time.Duration
	maxBody   int64
	now       func() time.Time
	replay    ReplayStore
}

var _ http.Handler = (*WebhookHandler)(nil)

// NewWebhookHandler returns a handler for the endpoint whose Svix signing
// secret ("whsec_" followed by base64, as Clerk's dashboard shows it) is
// given. It fails with an error wrapping ErrWebhookSecret, which never
// contains the secret, when the secret is empty, "whsec_" alone, not
// base64, or decodes to fewer than MinWebhookSecretBytes bytes.
func NewWebhookHandler(secret string, opts *WebhookOptions) (*WebhookHandler, error) {
	if err := checkWebhookSecret(secret); err != nil {
		return nil, err
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWebhookSecret, err)
	}
	h := &WebhookHandler{wh: wh}
	if opts != nil {
		h.o = *opts
	}
	h.tolerance = orDefault(h.o.Tolerance, DefaultWebhookTolerance)
	h.maxBody = h.o.MaxBodyBytes
	if h.maxBody <= 0 {
		h.maxBody = DefaultWebhookMaxBody
	}
	h.now = h.o.Now
	if h.now == nil {
		h.now = time.Now
	}
	h.replay = h.o.Replay
	if h.replay == nil {
		h.replay = NewMemoryReplayStore(DefaultReplayStoreSize, h.now)
	}
	return h, nil
}

// checkWebhookSecret applies NewWebhookHandler's rules to secret.
func checkWebhookSecret(secret string) error {
	enc := strings.TrimPrefix(strings.TrimSpace(secret), "whsec_")
	if enc == "" {
		return fmt.Errorf("%w: it is empty (is the environment variable that holds it set?)", ErrWebhookSecret)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("%w: it is not whsec_ followed by base64", ErrWebhookSecret)
	}
	if len(key) < MinWebhookSecretBytes {
		return fmt.Errorf("%w: its key is %d bytes; Svix's secrets have at least %d", ErrWebhookSecret, len(key), MinWebhookSecretBytes)
	}
	return nil
}

// ServeHTTP verifies, decodes and dispatches one delivery.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, dup, err := h.serve(r)
	if err != nil && h.o.OnReject != nil {
		h.o.OnReject(r, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err != nil {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(status)})
		return
	}
	if dup {
		_, _ = io.WriteString(w, `{"ok":true,"duplicate":true}`+"\n")
		return
	}
	_, _ = io.WriteString(w, `{"ok":true}`+"\n")
}

// serve handles one delivery, reporting its status, whether it was a
// message already handled, and the reason for a status other than 200.
func (h *WebhookHandler) serve(r *http.Request) (status int, duplicate bool, err error) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, false, fmt.Errorf("clerkadapter: webhook: method %s", r.Method)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.maxBody+1))
	if err != nil {
		return http.StatusBadRequest, false, fmt.Errorf("clerkadapter: webhook: reading the body: %w", err)
	}
	if int64(len(body)) > h.maxBody {
		return http.StatusRequestEntityTooLarge, false, fmt.Errorf("clerkadapter: webhook: body larger than %d bytes", h.maxBody)
	}
	// Svix's Verify checks the timestamp against the system clock; the
	// handler checks it against its own, so it can be tested.
	if err := h.wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
		return http.StatusBadRequest, false, ErrWebhookSignature
	}
	msgID, ts, ok := svixIDAndTime(r.Header)
	if !ok {
		return http.StatusBadRequest, false, ErrWebhookSignature
	}
	now := h.now()
	if d := now.Sub(ts); d > h.tolerance || d < -h.tolerance {
		return http.StatusBadRequest, false, fmt.Errorf("%w: %v from now", ErrWebhookTimestamp, d.Round(time.Second))
	}
	e, err := decodeEvent(body)
	if err != nil {
		return http.StatusBadRequest, false, err
	}
	e.MessageID = msgID

	// Fail closed: an event whose ID cannot be recorded is not
	// processed, since another replica might process it too; Svix
	// retries the 503.
	seen, err := h.replay.SeenMessage(r.Context(), msgID, h.replayTTL(ts, now))
	if err != nil {
		return http.StatusServiceUnavailable, false, fmt.Errorf("clerkadapter: webhook: recording the message ID: %w", err)
	}
	if seen {
		handled, err := h.replay.MessageHandled(r.Context(), msgID)
		switch {
		case err != nil:
			return http.StatusServiceUnavailable, false, fmt.Errorf("clerkadapter: webhook: reading the message ID: %w", err)
		case handled:
			return http.StatusOK, true, nil
		}
		return http.StatusConflict, false, ErrWebhookReplay
	}
	if err := h.dispatch(r.Context(), e); err != nil {
		if ferr := h.replay.ForgetMessage(context.WithoutCancel(r.Context()), msgID); ferr != nil {
			err = errors.Join(err, fmt.Errorf("forgetting the message ID (Svix's redeliveries are refused until it expires): %w", ferr))
		}
		return http.StatusInternalServerError, false, fmt.Errorf("clerkadapter: webhook: %s: %w", e.Type, err)
	}
	if err := h.replay.HandleMessage(context.WithoutCancel(r.Context()), msgID); err != nil {
		// Handled all the same; a redelivery is answered 409 until the
		// record expires, then handled again (handlers are idempotent).
		err = fmt.Errorf("clerkadapter: webhook: %s handled, but marking its message ID failed: %w", e.Type, err)
		if h.o.OnReject != nil {
			h.o.OnReject(r, err)
		}
	}
	return http.StatusOK, false, nil
}

// replayTTL is how long a message ID signed at ts is remembered: until
// the timestamp leaves the tolerance by this process's clock (now), plus
// the tolerance again for replicas whose clocks run behind this one's.
// It is a duration, so the store's clock measures it out and a store
// whose clock differs from this process's keeps the ID as long.
func (h *WebhookHandler) replayTTL(ts, now time.Time) time.Duration {
	return ts.Add(h.tolerance).Sub(now) + h.tolerance
}

func (h *WebhookHandler) dispatch(ctx context.Context, e UserEvent) error {
	var handle func(context.Context, UserEvent) error
	switch e.Type {
	case UserCreated:
		handle = h.o.OnUserCreated
	case UserUpdated:
		handle = h.o.OnUserUpdated
	case UserDeleted:
		handle = h.o.OnUserDeleted
	default:
		return nil
	}
	if h.o.Roles != nil && (e.Type == UserUpdated || e.Type == UserDeleted) {
		// Clerk delivers to one replica: the others learn of the change
		// through the invalidation log, so a record that cannot be made
		// fails the delivery and Svix retries it.
		if err := invalidate(ctx, h.o.Roles, e.UserID); err != nil {
			return fmt.Errorf("invalidating the cached account: %w", err)
		}
	}
	if handle == nil {
		return nil
	}
	if err := handle(ctx, e); err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	return nil
}

// svixIDAndTime reads the message ID and timestamp from the Svix headers
// (or their "webhook-" equivalents, as svix does).
func svixIDAndTime(hd http.Header) (string, time.Time, bool) {
	id, ts := hd.Get("svix-id"), hd.Get("svix-timestamp")
	if id == "" || ts == "" || hd.Get("svix-signature") == "" {
		id, ts = hd.Get("webhook-id"), hd.Get("webhook-timestamp")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return "", time.Time{}, false
	}
	return id, time.Unix(secs, 0), true
}

// wireEvent is the envelope of a Clerk webhook payload.
type wireEvent struct {
	Type       string          `json:"type"`
	Object     string          `json:"object"`
	Timestamp  int64           `json:"timestamp"`
	InstanceID string          `json:"instance_id"`
	Data       json.RawMessage `json:"data"`
}

// decodeEvent decodes a signed payload. Event types other than the user
// events decode to a UserEvent with only Type, Time and InstanceID set.
func decodeEvent(payload []byte) (UserEvent, error) {
	var w wireEvent
	if err := json.Unmarshal(payload, &w); err != nil {
		return UserEvent{}, fmt.Errorf("%w: %v", ErrWebhookPayload, err)
	}
	if w.Type == "" {
		return UserEvent{}, fmt.Errorf("%w: no event type", ErrWebhookPayload)
	}
	e := UserEvent{Type: EventType(w.Type), Time: fromMillis(w.Timestamp), InstanceID: w.InstanceID}
	switch e.Type {
	case UserCreated, UserUpdated:
		var cu clerk.User
		if err := json.Unmarshal(w.Data, &cu); err != nil {
			return UserEvent{}, fmt.Errorf("%w: %s data: %v", ErrWebhookPayload, e.Type, err)
		}
		u, err := toUser(&cu)
		if err != nil {
			return UserEvent{}, fmt.Errorf("%w: %s data: %v", ErrWebhookPayload, e.Type, err)
		}
		e.User = u
	case UserDeleted:
		var d clerk.DeletedResource
		if err := json.Unmarshal(w.Data, &d); err != nil {
			return UserEvent{}, fmt.Errorf("%w: %s data: %v", ErrWebhookPayload, e.Type, err)
		}
		e.User = steward.User{ID: d.ID}
	default:
		return e, nil
	}
	if err := validateID(e.User.ID); err != nil {
		return UserEvent{}, fmt.Errorf("%w: %s data: %w", ErrWebhookPayload, e.Type, err)
	}
	e.UserID = e.User.ID
	return e, nil
}

// MemoryReplayStore is a ReplayStore in process memory holding at most a
// fixed number of message IDs: it protects one process only, so use it
// alone or in tests; replicas share a store in their database instead.
// When full, it drops expired IDs, then the ones that expire soonest; a
// flood of distinct valid deliveries could thus push out an ID before its
// time, which only matters under a replay attack of a message already
// pushed out. It is safe for concurrent use.
type MemoryReplayStore struct {
	max int
	now func() time.Time

	mu  sync.Mutex
	ids map[string]replayEntry
}

// replayEntry is one recorded message ID.
type replayEntry struct {
	expires time.Time
	handled bool
}

var _ ReplayStore = (*MemoryReplayStore)(nil)

// NewMemoryReplayStore returns a store of at most maxEntries IDs (at
// least 1) using the given clock (nil means time.Now).
func NewMemoryReplayStore(maxEntries int, now func() time.Time) *MemoryReplayStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayStore{max: max(maxEntries, 1), now: now, ids: make(map[string]replayEntry)}
}

// checkReplayArgs applies the argument rules of ReplayStore.SeenMessage.
func checkReplayArgs(msgID string, ttl time.Duration) error {
	if msgID == "" {
		return errors.New("clerkadapter: replay store: empty message ID")
	}
	if ttl <= 0 {
		return fmt.Errorf("clerkadapter: replay store: ttl %v is not positive", ttl)
	}
	return nil
}

// SeenMessage implements ReplayStore.
func (c *MemoryReplayStore) SeenMessage(_ context.Context, msgID string, ttl time.Duration) (bool, error) {
	if err := checkReplayArgs(msgID, ttl); err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e, ok := c.ids[msgID]; ok && now.Before(e.expires) {
		return true, nil
	}
	if len(c.ids) >= c.max {
		for id, e := range c.ids {
			if !now.Before(e.expires) {
				delete(c.ids, id)
			}
		}
		for len(c.ids) >= c.max {
			var soonest string
			var at time.Time
			for id, e := range c.ids {
				if soonest == "" || e.expires.Before(at) {
					soonest, at = id, e.expires
				}
			}
			delete(c.ids, soonest)
		}
	}
	c.ids[msgID] = replayEntry{expires: now.Add(ttl)}
	return false, nil
}

// HandleMessage implements ReplayStore.
func (c *MemoryReplayStore) HandleMessage(_ context.Context, msgID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.ids[msgID]; ok && c.now().Before(e.expires) {
		e.handled = true
		c.ids[msgID] = e
	}
	return nil
}

// MessageHandled implements ReplayStore.
func (c *MemoryReplayStore) MessageHandled(_ context.Context, msgID string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.ids[msgID]
	return ok && e.handled && c.now().Before(e.expires), nil
}

// ForgetMessage implements ReplayStore.
func (c *MemoryReplayStore) ForgetMessage(_ context.Context, msgID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ids, msgID)
	return nil
}

// Len returns how many IDs the store holds.
func (c *MemoryReplayStore) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}
