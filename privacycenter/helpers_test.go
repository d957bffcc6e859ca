package privacycenter_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
)

// clock is real time shifted by an offset the test moves.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
	fixed  time.Time // when set, the clock stands still there (plus offset)
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed.IsZero() {
		return c.fixed.Add(c.offset)
	}
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

const grace = time.Hour

// world is a privacy center over in-memory stores: a Service with a
// grace period, queued exports and a hold checker, a consent Manager
// fenced by it, an audit trail, and the Center.
type world struct {
	t      *testing.T
	clock  *clock
	idp    steward.IdentityProvider
	clerk  *clerktest.Server // nil with the memory identity
	sink   *audit.MemorySink
	log    *audit.Logger
	reqs   *privacy.MemoryRequestStore
	orders *privacy.MemoryStore
	holds  *retention.MemoryHolds
	svc    *privacy.Service
	cons   *consent.Manager
	center *privacycenter.Center
	// user and admin are the IDs of the two accounts.
	user, admin string
	// roles gives the role of each user for the test principal
	// middleware (memory identity only).
	roles map[string]rbac.Role
}

type worldOption func(*worldConfig)

type worldConfig struct {
	clerk  bool
	fixed  time.Time
	center []privacycenter.Option
}

// withClerk runs the world over the fake Clerk and clerkadapter's
// provider, for real session tokens.
func withClerk() worldOption { return func(c *worldConfig) { c.clerk = true } }

// at stands the clock still at t.
func at(t time.Time) worldOption { return func(c *worldConfig) { c.fixed = t } }

func withCenter(opts ...privacycenter.Option) worldOption {
	return func(c *worldConfig) { c.center = append(c.center, opts...) }
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newWorld(t *testing.T, opts ...worldOption) *world {
	t.Helper()
	var cfg worldConfig
	for _, o := range opts {
		o(&cfg)
	}
	w := &world{t: t, clock: &clock{fixed: cfg.fixed}, sink: audit.NewMemorySink(), reqs: privacy.NewMemoryRequestStore(),
		orders: privacy.NewMemoryStore("orders"), holds: &retention.MemoryHolds{}, roles: map[string]rbac.Role{}}
	verified := func(a string) []steward.EmailAddress { return []steward.EmailAddress{{Address: a, Verified: true}} }
	alice := steward.User{FirstName: "Alice", EmailAddresses: verified("alice@example.com"), PublicMetadata: map[string]any{"role": "user"}}
	ada := steward.User{FirstName: "Ada", EmailAddresses: verified("ada@example.com"), PublicMetadata: map[string]any{"role": "admin"}}
	if cfg.clerk {
		w.clerk = clerktest.NewServer()
		t.Cleanup(w.clerk.Close)
		w.user, w.admin = w.clerk.AddUser(alice).ID, w.clerk.AddUser(ada).ID
		w.idp = clerkadapter.New(w.clerk.ClientConfig())
	} else {
		mem := steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
		alice.ID, ada.ID = "user_alice", "user_admin"
		alice.PrimaryEmailID, ada.PrimaryEmailID = "", ""
		mem.Put(alice)
		mem.Put(ada)
		w.user, w.admin, w.idp = alice.ID, ada.ID, mem
	}
	w.roles[w.user], w.roles[w.admin] = rbac.RoleUser, rbac.RoleAdmin
	w.orders.Add(w.user,
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_1", "total": 42}},
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_2", "total": 7.5}},
		privacy.Record{Category: "activityLog", Data: map[string]any{"action": "login"}})
	var err error
	w.log, err = audit.NewLogger(w.sink, audit.WithKey("k1", bytes.Repeat([]byte{9}, 32)), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	cstore := consent.NewMemoryStore()
	w.svc, err = privacy.NewService(w.idp,
		privacy.WithStores(w.orders, consent.NewDataStore(cstore)),
		privacy.WithAudit(w.log),
		privacy.WithRequestStore(w.reqs),
		privacy.WithBlobWriter(privacy.NewMemoryBlobs()),
		privacy.WithHoldChecker(retention.Checker{Holds: w.holds}),
		privacy.WithAuthorizer(rbac.Default()),
		privacy.WithGracePeriod(grace),
		privacy.WithNow(w.clock.Now),
		privacy.WithResumeAfter(0),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.svc.Close(context.Background()) })
	w.cons, err = consent.NewManager(cstore, w.idp, consent.WithAudit(w.log), consent.WithFence(w.svc), consent.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	copts := append([]privacycenter.Option{
		privacycenter.WithAudit(w.log),
		privacycenter.WithAuditReader(w.sink),
		privacycenter.WithHolds(retention.AuditedHolds{Holds: w.holds, Audit: w.log}),
		privacycenter.WithNow(w.clock.Now),
		privacycenter.WithSignInURL("/sign-in"),
	}, cfg.center...)
	w.center, err = privacycenter.New(w.svc, w.cons, copts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// testPrincipal is a stand-in for the session middleware in handler
// tests: the header X-Test-User names the signed-in user.
func (w *world) testPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Test-User"); id != "" {
			// As SessionOptions.Fence does, unless X-Test-Fence: off
			// plays an application whose sessions are not fenced.
			if r.Header.Get("X-Test-Fence") == "off" || w.svc.CheckFence(r.Context(), id) == nil {
				r = r.WithContext(rbac.WithPrincipal(r.Context(), rbac.Principal{UserID: id, Role: w.roles[id], EmailVerified: true}))
			}
		}
		next.ServeHTTP(rw, r)
	})
}

// handler is the center behind the test principal middleware.
func (w *world) handler() http.Handler { return w.testPrincipal(w.center.Handler()) }

// call sends one request to the center as user ("" for nobody); form
// values make it a form post.
func (w *world) call(method, target, user string, form url.Values, header ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	w.handler().ServeHTTP(rec, r)
	return rec
}

// openErasure returns the user's open erasure request, or fails.
func (w *world) openErasure(userID string) privacy.Request {
	w.t.Helper()
	for r, err := range w.svc.Requests(context.Background(), privacy.RequestFilter{UserID: userID, Kind: privacy.KindErasure,
		Statuses: []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld}}) {
		if err != nil {
			w.t.Fatal(err)
		}
		return r
	}
	w.t.Fatalf("no open erasure")
	return privacy.Request{}
}

// consentRecords returns the user's consent history as
// "purpose=granted/source/vN".
func (w *world) consentRecords(userID string) []string {
	w.t.Helper()
	var out []string
	for r, err := range w.cons.History(context.Background(), userID) {
		if err != nil {
			w.t.Fatal(err)
		}
		g := "false"
		if r.Granted {
			g = "true"
		}
		out = append(out, string(r.Purpose)+"="+g+"/"+r.Source+"/v"+strconv.Itoa(r.PolicyVersion))
	}
	return out
}

// userNamed returns a user for the fake Clerk.
func userNamed(i int) steward.User {
	name := []string{"Grace", "Linus", "Barbara", "Edsger", "Frances", "Donald"}[i%6]
	return steward.User{FirstName: name, EmailAddresses: []steward.EmailAddress{{Address: strings.ToLower(name) + strconv.Itoa(i) + "@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "user"}}
}
