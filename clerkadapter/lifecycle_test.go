package clerkadapter_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// lifecycle is a fake Clerk, an application store and a privacy Service
// over them, with the webhook handler wired as an application would.
type lifecycle struct {
	srv  *clerktest.Server
	prov *clerkadapter.Provider
	app  *privacy.MemoryStore
	reqs *privacy.MemoryRequestStore
	sink *audit.MemorySink
	svc  *privacy.Service
	h    *clerkadapter.WebhookHandler
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	l := &lifecycle{srv: newServer(t), app: privacy.NewMemoryStore("app"), reqs: privacy.NewMemoryRequestStore(), sink: audit.NewMemorySink()}
	l.prov = clerkadapter.New(l.srv.ClientConfig(), clerkadapter.WithMaxAttempts(2), clerkadapter.WithBackoff(time.Millisecond, 2*time.Millisecond))
	log, err := audit.NewLogger(l.sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	l.svc, err = privacy.NewService(l.prov, privacy.WithStores(l.app), privacy.WithRequestStore(l.reqs), privacy.WithAudit(log),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	l.h, err = clerkadapter.NewWebhookHandler(l.srv.WebhookSecret(), &clerkadapter.WebhookOptions{
		OnUserDeleted: clerkadapter.EraseDeletedUsers(l.svc),
		OnUserCreated: clerkadapter.AssignDefaultRole(l.prov, "", log),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lifecycle) deliver(eventType, userID string) int {
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, l.srv.NewWebhookRequest("/webhooks/clerk", eventType, userID))
	return rec.Code
}

func (l *lifecycle) requests(t *testing.T) []privacy.Request {
	t.Helper()
	var out []privacy.Request
	for r, err := range l.reqs.List(context.Background(), privacy.RequestFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestUserDeletedWebhookErasesAppData: a user who deleted their account
// in Clerk's own pages leaves no application data, the identity step is
// recorded as done at the provider, and redeliveries change nothing.
func TestUserDeletedWebhookErasesAppData(t *testing.T) {
	l := newLifecycle(t)
	ctx := context.Background()
	u := l.srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}})
	other := l.srv.AddUser(steward.User{})
	l.app.Add(u.ID, privacy.Record{Category: "orders", Data: map[string]any{"total": 42}})
	l.app.Add(other.ID, privacy.Record{Category: "orders", Data: map[string]any{"total": 7}})
	if err := l.prov.DeleteUser(ctx, u.ID); err != nil { // the dashboard's deletion
		t.Fatal(err)
	}
	if code := l.deliver("user.deleted", u.ID); code != http.StatusOK {
		t.Fatalf("user.deleted: %d, want 200", code)
	}
	if l.app.Len(u.ID) != 0 || l.app.Len(other.ID) != 1 {
		t.Errorf("app data after user.deleted: %d records of the user, %d of another; want 0 and 1", l.app.Len(u.ID), l.app.Len(other.ID))
	}
	reqs := l.requests(t)
	if len(reqs) != 1 || reqs[0].Status != privacy.StatusCompleted {
		t.Fatalf("requests %+v; want one completed", reqs)
	}
	st := reqs[0].Step("identity")
	if st == nil || st.Status != privacy.StepDone || st.Outcome != privacy.StepOutcomeDeletedAtProvider || st.Attempts != 0 {
		t.Errorf("identity step %+v; want done at the provider, with no call", st)
	}
	deletes := l.srv.CountRequests(http.MethodDelete, "/v1/users/"+u.ID)
	if deletes != 1 {
		t.Errorf("Clerk saw %d DELETEs of the user; want only the dashboard's", deletes)
	}
	if err := l.svc.CheckFence(ctx, u.ID); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("CheckFence after user.deleted = %v, want ErrErased", err)
	}

	// Svix delivers at least once: a redelivery (a new message ID, say
	// after a timeout) is idempotent.
	events := len(l.sink.Snapshot())
	for range 2 {
		if code := l.deliver("user.deleted", u.ID); code != http.StatusOK {
			t.Errorf("redelivered user.deleted: %d, want 200", code)
		}
	}
	if n := len(l.requests(t)); n != 1 {
		t.Errorf("%d requests after redeliveries, want 1", n)
	}
	if n := len(l.sink.Snapshot()); n != events {
		t.Errorf("redeliveries wrote %d more audit events, want none", n-events)
	}
}

// TestUserCreatedWebhookWritesTheDefaultRole: a new account gets the
// data model's default role; one that has a role keeps it.
func TestUserCreatedWebhookWritesTheDefaultRole(t *testing.T) {
	l := newLifecycle(t)
	bare := l.srv.AddUser(steward.User{})
	admin := l.srv.AddUser(steward.User{PublicMetadata: map[string]any{"role": "admin"}})
	for range 2 { // a redelivery changes nothing
		for _, id := range []string{bare.ID, admin.ID} {
			if code := l.deliver("user.created", id); code != http.StatusOK {
				t.Errorf("user.created: %d, want 200", code)
			}
		}
	}
	got := map[string]any{}
	for name, id := range map[string]string{"bare": bare.ID, "admin": admin.ID} {
		u, _ := l.srv.User(id)
		got[name] = u.PublicMetadata["role"]
	}
	if diff := cmp.Diff(map[string]any{"bare": "user", "admin": "admin"}, got); diff != "" {
		t.Errorf("roles after user.created (-want +got):\n%s", diff)
	}
	roleEvents := 0
	for _, e := range l.sink.Snapshot() {
		if e.Type == audit.RoleChange {
			roleEvents++
		}
	}
	if roleEvents != 1 {
		t.Errorf("%d role_change events, want 1 (the one role written)", roleEvents)
	}
}

// partialStore fails every Erase, leaving its user's erasure open.
type partialStore struct{ *privacy.MemoryStore }

func (partialStore) Erase(context.Context, string) (privacy.Erased, error) {
	return privacy.Erased{}, errors.New("database unavailable")
}

// TestFencedSessionsAreRefusedAcrossInstances: once an erasure is open
// in one instance, a still-valid token of the user gets no principal in
// another instance sharing the database, in claims mode and in live
// mode, and after the erasure completes too.
func TestFencedSessionsAreRefusedAcrossInstances(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			srv := newServer(t)
			prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(1))
			u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}, PublicMetadata: map[string]any{"role": "user"}})
			tok := srv.SessionToken(u.ID, clerktest.TokenExpiresAt(time.Now().Add(time.Hour)))
			key := []byte("0123456789abcdef0123456789abcdef")
			pseudo, err := audit.NewPseudonymizer(audit.Key{ID: "k1", Secret: key})
			if err != nil {
				t.Fatal(err)
			}
			// Two instances whose requests meet only in the database: on
			// SQLite each has its own *sql.DB on one file.
			dbs := []*sql.DB{sqltest.Open(t, d)}
			if d == sqlstore.SQLite {
				path := filepath.Join(t.TempDir(), "shared.db")
				dbs = nil
				for range 2 {
					db, err := sqlstore.OpenSQLite(path)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					dbs = append(dbs, db)
				}
			}
			instance := func(db *sql.DB, stores ...privacy.DataStore) *privacy.Service {
				store, err := sqlstore.New(db, d)
				if err != nil {
					t.Fatal(err)
				}
				if err := store.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				s, err := privacy.NewService(prov, privacy.WithStores(stores...), privacy.WithRequestStore(store.Requests()),
					privacy.WithPseudonymizer(pseudo), privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			app := privacy.NewMemoryStore("app")
			eraser, other := instance(dbs[0], partialStore{app}), instance(dbs[len(dbs)-1], app)
			modes := map[string]*clerkadapter.SessionAuth{
				"claims": clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{
					AuthorizedParties: []string{clerktest.DefaultAuthorizedParty}, Fence: other}),
				"live": clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{
					AuthorizedParties: []string{clerktest.DefaultAuthorizedParty}, Fence: other,
					Roles: clerkadapter.NewLiveRoles(prov, nil)}),
			}
			check := func(when string, wantPrincipal bool) {
				for mode, auth := range modes {
					p, ok := serve(auth, bearer(tok))
					if ok != wantPrincipal {
						t.Errorf("%s, %s mode: principal %+v (%v), want one: %v", when, mode, p, ok, wantPrincipal)
					}
					_, err := auth.Authenticate(bearer(tok))
					if !wantPrincipal && !errors.Is(err, clerkadapter.ErrSessionFenced) {
						t.Errorf("%s, %s mode: Authenticate = %v, want ErrSessionFenced", when, mode, err)
					}
				}
			}
			check("before the erasure", true)
			if _, err := eraser.Erase(ctx, u.ID); !errors.Is(err, privacy.ErrPartialDeletion) {
				t.Fatalf("Erase = %v, want the request left partial (open)", err)
			}
			check("while the erasure is open in another instance", false)
			res, err := other.Erase(ctx, u.ID) // the other instance finishes it
			if err != nil || !res.Success {
				t.Fatalf("Erase in the other instance = %+v, %v", res, err)
			}
			check("after the erasure", false)
			// rbac.Require then answers 401 for the erased user's token.
			rec := httptest.NewRecorder()
			modes["claims"].Handler(rbac.Require(rbac.ChatSend)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))).ServeHTTP(rec, bearer(tok))
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("a protected route for the erased user's token: %d, want 401", rec.Code)
			}
		})
	}
}

// helperEnv names the SQLite file in which TestHelperOpensAnErasure, run
// as a process of its own, opens an erasure of the user helperUserEnv.
const helperEnv, helperUserEnv = "STEWARD_TEST_HELPER_ERASE_DB", "STEWARD_TEST_HELPER_ERASE_USER"

// TestHelperOpensAnErasure is not a test: TestFencedSessionsInAnotherProcess
// runs the test binary on it as a separate process, which opens an
// erasure (left partial by a store that fails) and exits.
func TestHelperOpensAnErasure(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("run by TestFencedSessionsInAnotherProcess")
	}
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := privacy.NewService(steward.NewMemoryIdentity(), privacy.WithStores(partialStore{privacy.NewMemoryStore("app")}),
		privacy.WithRequestStore(store.Requests()), privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Erase(ctx, os.Getenv(helperUserEnv)); !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase in the helper process = %v, want partial", err)
	}
}

// TestFencedSessionsInAnotherProcess: an erasure opened by another OS
// process on the same SQLite file fences the user's sessions here.
func TestFencedSessionsInAnotherProcess(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}})
	tok := srv.SessionToken(u.ID, clerktest.TokenExpiresAt(time.Now().Add(time.Hour)))
	path := filepath.Join(t.TempDir(), "shared.db")
	db, err := sqlstore.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := privacy.NewService(clerkadapter.New(srv.ClientConfig()), privacy.WithRequestStore(store.Requests()))
	if err != nil {
		t.Fatal(err)
	}
	auth := clerkadapter.NewSessionAuth(srv.ClientConfig(), &clerkadapter.SessionOptions{
		AuthorizedParties: []string{clerktest.DefaultAuthorizedParty}, Fence: svc})
	if _, ok := serve(auth, bearer(tok)); !ok {
		t.Fatal("no principal before the erasure")
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperOpensAnErasure$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path, helperUserEnv+"="+u.ID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, out)
	}
	if _, err := auth.Authenticate(bearer(tok)); !errors.Is(err, clerkadapter.ErrSessionFenced) {
		t.Errorf("Authenticate after another process opened the erasure = %v, want ErrSessionFenced", err)
	}
}
