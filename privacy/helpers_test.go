package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
)

const testUser = "user_2abcDEF123"

var t0 = time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fastRetry keeps retries in tests to microseconds.
var fastRetry = privacy.Retry{MaxAttempts: 3, InitialInterval: time.Microsecond, MaxInterval: 10 * time.Microsecond}

// world is a Service's surroundings: identity provider, stores, audit.
type world struct {
	t      *testing.T
	clock  *clock
	idp    *countingIDP
	orders *countingStore
	prefs  *countingStore
	email  *countingExternal
	sink   *audit.MemorySink
	log    *audit.Logger
	reqs   privacy.RequestStore
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: newClock(), sink: audit.NewMemorySink(), reqs: privacy.NewMemoryRequestStore()}
	mem := steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
	mem.Put(steward.User{
		ID:             testUser,
		EmailAddresses: []steward.EmailAddress{{ID: "idn_1", Address: "ada@example.com", Verified: true}},
		PrimaryEmailID: "idn_1",
		FirstName:      "Ada",
		LastName:       "Lovelace",
		CreatedAt:      t0.AddDate(-1, 0, 0),
		LastSignInAt:   t0.Add(-time.Hour),
		PublicMetadata: map[string]any{"role": "user"},
		PrivateMetadata: map[string]any{
			"stripeCustomer": "cus_123",
		},
	})
	w.idp = &countingIDP{MemoryIdentity: mem}
	orders := privacy.NewMemoryStore("orders")
	orders.Add(testUser,
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_1", "total": 42, "internalNotes": "VIP"}},
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_2", "total": 7.5}},
		privacy.Record{Category: "activityLog", Data: map[string]any{"action": "login", "adminFlags": []any{"watch"}}},
	)
	orders.Add("user_other", privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_9"}})
	w.orders = newCountingStore(orders)
	prefs := privacy.NewMemoryStore("preferences")
	prefs.Add(testUser, privacy.Record{Category: "preferences", Data: map[string]any{"theme": "dark"}})
	w.prefs = newCountingStore(prefs)
	w.email = &countingExternal{name: "email"}
	log, err := audit.NewLogger(w.sink, audit.WithKey("k1", bytes.Repeat([]byte{7}, 32)), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.log = log
	return w
}

// service returns a Service over the world; extra options come last.
func (w *world) service(opts ...privacy.Option) *privacy.Service {
	w.t.Helper()
	base := []privacy.Option{
		privacy.WithStores(w.orders, w.prefs),
		privacy.WithExternal(w.email),
		privacy.WithAudit(w.log),
		privacy.WithRequestStore(w.reqs),
		privacy.WithNow(w.clock.Now),
		privacy.WithRetry(fastRetry),
	}
	svc, err := privacy.NewService(w.idp, append(base, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc
}

// events returns the stored audit events, after checking that none of
// them holds the raw user ID anywhere.
func (w *world) events() []audit.Event {
	w.t.Helper()
	evs := w.sink.Snapshot()
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			w.t.Fatal(err)
		}
		if bytes.Contains(b, []byte(testUser)) {
			w.t.Errorf("audit event %d holds the raw user ID: %s", e.Sequence, b)
		}
	}
	if err := audit.Verify(w.sink.Events(context.Background(), 0)); err != nil {
		w.t.Errorf("audit chain does not verify: %v", err)
	}
	return evs
}

// statuses returns the "status" detail of each data_deletion event.
func statuses(evs []audit.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type == audit.DataDeletion {
			s, _ := e.Details["status"].(string)
			out = append(out, s)
		}
	}
	return out
}

// countingIDP counts DeleteUser calls that removed a user, and can fail
// or panic on demand.
type countingIDP struct {
	*steward.MemoryIdentity
	mu      sync.Mutex
	deleted int
	calls   int
	failN   int
	err     error
	hook    func(calls int)
}

func (c *countingIDP) DeleteUser(ctx context.Context, id string) error {
	c.mu.Lock()
	c.calls++
	calls, hook := c.calls, c.hook
	fail := c.failN < 0 || c.failN > 0
	if c.failN > 0 {
		c.failN--
	}
	c.mu.Unlock()
	if hook != nil {
		hook(calls)
	}
	if fail {
		return c.err
	}
	_, err := c.GetUser(ctx, id)
	existed := err == nil
	if err := c.MemoryIdentity.DeleteUser(ctx, id); err != nil {
		return err
	}
	if existed {
		c.mu.Lock()
		c.deleted++
		c.mu.Unlock()
	}
	return nil
}

// countingStore counts Erase calls and those that removed something; its
// faults come from faults, a privacytest.FaultyStore over the memory
// store that every call goes through.
type countingStore struct {
	*privacy.MemoryStore
	faults  *privacytest.FaultyStore
	mu      sync.Mutex
	erasing int // erasures that removed records
}

func newCountingStore(m *privacy.MemoryStore) *countingStore {
	return &countingStore{MemoryStore: m, faults: privacytest.NewFaultyStore(m)}
}

// calls returns how many times Erase was called.
func (c *countingStore) calls() int {
	_, n := c.faults.Calls()
	return n
}

func (c *countingStore) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return c.faults.Export(ctx, id)
}

func (c *countingStore) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	er, err := c.faults.Erase(ctx, id)
	if err == nil && er.Count > 0 {
		c.mu.Lock()
		c.erasing++
		c.mu.Unlock()
	}
	return er, err
}

// countingExternal is an ExternalService that remembers erased users.
type countingExternal struct {
	name   string
	mu     sync.Mutex
	erased map[string]int
	calls  int
	failN  int
	err    error
	hook   func(calls int)
}

func (c *countingExternal) Name() string { return c.name }

func (c *countingExternal) Erase(ctx context.Context, id string) error {
	c.mu.Lock()
	c.calls++
	calls, hook := c.calls, c.hook
	fail := c.failN < 0 || c.failN > 0
	if c.failN > 0 {
		c.failN--
	}
	c.mu.Unlock()
	if hook != nil {
		hook(calls)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if fail {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.erased == nil {
		c.erased = map[string]int{}
	}
	c.erased[id]++
	return nil
}

// memBlobs is a BlobWriter into memory.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
	failN int
}

type memBlob struct {
	bytes.Buffer
	b    *memBlobs
	name string
}

func (m *memBlob) Close() error {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	if m.b.blobs == nil {
		m.b.blobs = map[string][]byte{}
	}
	m.b.blobs[m.name] = m.Bytes()
	return nil
}

func (m *memBlobs) Create(_ context.Context, name string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failN != 0 {
		m.failN--
		return nil, errors.New("bucket unavailable")
	}
	return &memBlob{b: m, name: name}, nil
}

// Delete implements privacy.BlobDeleter.
func (m *memBlobs) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, name)
	return nil
}

// Open implements privacy.BlobOpener.
func (m *memBlobs) Open(_ context.Context, name string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[name]
	if !ok {
		return nil, privacy.ErrBlobNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) get(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[name]
	return b, ok
}

// notifier records finished exports.
type notifier struct {
	ch chan privacy.Request
}

func (n notifier) ExportDone(_ context.Context, r privacy.Request) error {
	n.ch <- r
	return nil
}

// holds is a HoldChecker over a set.
type holds struct {
	mu   sync.Mutex
	held map[string]string
}

func (h *holds) Held(_ context.Context, id string) (bool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.held[id]
	return ok, r, nil
}

func (h *holds) set(id, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if reason == "" {
		delete(h.held, id)
		return
	}
	h.held[id] = reason
}

// noUserID fails t if s holds the raw test user ID.
func noUserID(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testUser) {
		t.Errorf("%s holds the raw user ID: %s", what, s)
	}
}
