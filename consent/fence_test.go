package consent_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// gatedStore is a DataStore whose Erase waits at a gate, so a test can
// act while an erasure is under way.
type gatedStore struct {
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gatedStore) Name() string { return "app" }
func (g *gatedStore) Export(context.Context, string) iter.Seq2[privacy.Record, error] {
	return func(func(privacy.Record, error) bool) {}
}
func (g *gatedStore) Erase(ctx context.Context, _ string) (privacy.Erased, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.gate
	}
	return privacy.Erased{}, ctx.Err()
}

// fenced builds a consent Manager fenced by a privacy Service that erases
// its store, the way an application wires them.
func fenced(t *testing.T, extra ...privacy.DataStore) (*consent.Manager, *privacy.Service, *consent.MemoryStore) {
	t.Helper()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_alice"})
	store := consent.NewMemoryStore()
	log, err := audit.NewLogger(audit.NewMemorySink(), audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := privacy.NewService(idp, privacy.WithStores(append(extra, consent.NewDataStore(store))...), privacy.WithAudit(log),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := consent.NewManager(store, idp, consent.WithFence(svc), consent.WithAudit(log))
	if err != nil {
		t.Fatal(err)
	}
	return m, svc, store
}

func put(t *testing.T, m *consent.Manager, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, "/api/user/consent", strings.NewReader(body))
	req = req.WithContext(rbac.WithPrincipal(req.Context(), rbac.Principal{UserID: "user_alice", Role: "user", EmailVerified: true}))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func records(t *testing.T, s *consent.MemoryStore, userID string) int {
	t.Helper()
	n := 0
	for _, err := range s.History(context.Background(), userID) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestConsentRefusedDuringAndAfterErasure: a still-valid session can
// neither PUT consent nor call Update for a user whose erasure is under
// way (409) or done (410), and no record comes back.
func TestConsentRefusedDuringAndAfterErasure(t *testing.T) {
	gate := &gatedStore{entered: make(chan struct{}), gate: make(chan struct{})}
	m, svc, store := fenced(t, gate)
	ctx := context.Background()
	if code, _ := put(t, m, `{"marketing": true}`); code != http.StatusOK {
		t.Fatalf("PUT before the erasure: %d", code)
	}
	done := make(chan error, 1)
	go func() { _, err := svc.Erase(ctx, "user_alice"); done <- err }()
	<-gate.entered

	code, body := put(t, m, `{"analytics": true}`)
	if diff := cmp.Diff(map[string]any{"error": "User is being erased", "code": "erasure_in_progress"}, body); code != http.StatusConflict || diff != "" {
		t.Errorf("PUT during the erasure: %d (-want +got):\n%s", code, diff)
	}
	if _, err := m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: true}, consent.Meta{}); !errors.Is(err, privacy.ErrFenced) || errors.Is(err, privacy.ErrErased) {
		t.Errorf("Update during the erasure = %v, want ErrFenced", err)
	}
	close(gate.gate)
	if err := <-done; err != nil {
		t.Fatalf("Erase: %v", err)
	}

	code, body = put(t, m, `{"marketing": true}`)
	if diff := cmp.Diff(map[string]any{"error": "User erased", "code": "erased"}, body); code != http.StatusGone || diff != "" {
		t.Errorf("PUT after the erasure: %d (-want +got):\n%s", code, diff)
	}
	if _, err := m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("Update after the erasure = %v, want ErrErased", err)
	}
	if n := records(t, store, "user_alice"); n != 0 {
		t.Errorf("%d consent records of the erased user exist", n)
	}
}

// raceFence lets the first check pass and refuses every later one: an
// erasure that opened while Update was recording.
type raceFence struct {
	mu    sync.Mutex
	calls int
}

func (f *raceFence) CheckFence(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 1 {
		return nil
	}
	return privacy.ErrFenced
}

// TestUpdateRacingAnErasureLeavesNothing: an Update that passed the
// fence before an erasure opened, and recorded after the erasure could
// have erased the store, removes what it wrote and says so.
func TestUpdateRacingAnErasureLeavesNothing(t *testing.T) {
	store := consent.NewMemoryStore()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_alice"})
	f := &raceFence{}
	m, err := consent.NewManager(store, idp, consent.WithFence(f))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Update(context.Background(), "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{})
	if !errors.Is(err, privacy.ErrFenced) {
		t.Fatalf("Update racing an erasure = %v, want ErrFenced", err)
	}
	if n := records(t, store, "user_alice"); n != 0 {
		t.Errorf("%d records survive an Update that raced the erasure", n)
	}
	if ok, _ := m.Allowed(context.Background(), "user_alice", consent.Marketing); ok {
		t.Error("consent recorded during the erasure counts as given")
	}
}

// TestConsentGraceDoesNotFence: during an erasure's grace period the user
// is not fenced yet.
func TestConsentGraceDoesNotFence(t *testing.T) {
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_alice"})
	store := consent.NewMemoryStore()
	svc, err := privacy.NewService(idp, privacy.WithStores(consent.NewDataStore(store)), privacy.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m, err := consent.NewManager(store, idp, consent.WithFence(svc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Erase(context.Background(), "user_alice"); !errors.Is(err, privacy.ErrScheduled) {
		t.Fatalf("Erase with a grace period = %v, want ErrScheduled", err)
	}
	if _, err := m.Update(context.Background(), "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{}); err != nil {
		t.Errorf("Update during the grace period: %v", err)
	}
}
