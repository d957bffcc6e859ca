package fleet_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/internal/fleet"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// fullEnv selects the full run (about a minute per dialect) instead of
// the short one go test ./... makes.
const fullEnv = "STEWARD_FLEET_FULL"

// workers is how many replicas share the database.
const workers = 3

// mode sizes a run.
type mode struct {
	run     time.Duration // how long workers are killed and restarted
	regular int           // users whose roles and bans change
	victims int           // users erased
	opLoops int           // operation goroutines per worker
	opPause time.Duration // up to this between a loop's operations
}

var (
	shortMode = mode{run: 10 * time.Second, regular: 10, victims: 8, opLoops: 2, opPause: 10 * time.Millisecond}
	fullMode  = mode{run: 60 * time.Second, regular: 12, victims: 30, opLoops: 2, opPause: 5 * time.Millisecond}
)

// TestFleet runs three replicas on one SQLite file, then three on one
// PostgreSQL schema, exporting, erasing, changing consent and roles and
// logging audit events while one of them is SIGKILLed and restarted every
// one to three seconds; then it stops killing, lets them drain, and
// checks what must hold.
func TestFleet(t *testing.T) {
	m := shortMode
	if os.Getenv(fullEnv) == "1" {
		m = fullMode
	}
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) { runFleet(t, d, m) })
	}
}

// call is one call that reached the fake external service, or a Clerk
// user deletion that went through the proxy in front of clerktest.
type call struct {
	Service string // externalName or "clerk"
	Subject string // the user's pseudonym
	Request string // the erasure request the caller was running
	Pid     int
	Start   time.Time
	End     time.Time
	Status  int
}

// done reports whether the call did its work: the external service
// erased (200), or clerktest deleted the user or found it gone already
// (200, 404). Injected faults (5xx, 429) did nothing.
func (c call) done() bool {
	return c.Status == http.StatusOK || (c.Service == "clerk" && c.Status == http.StatusNotFound)
}

// recorder keeps the calls of the external service and of Clerk user
// deletions.
type recorder struct {
	pseudo *audit.Pseudonymizer
	// faults: the external service fails one call in 20 and takes slow
	// for one in 8, longer than a request may stay untouched before
	// ResumePending elsewhere takes it over.
	faults atomic.Bool
	slow   time.Duration

	mu    sync.Mutex
	calls []call
}

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// external serves the fake erasure service: POST /erase with the
// subject's pseudonym and the request ID. A call takes 50–250 ms, so
// kills land during erasures and concurrent calls for one subject
// overlap visibly.
func (r *recorder) external(w http.ResponseWriter, req *http.Request) {
	var body externalCall
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.Subject == "" {
		http.Error(w, "want {subject, request}", http.StatusBadRequest)
		return
	}
	pid, _ := strconv.Atoi(req.Header.Get(pidHeader))
	c := call{Service: externalName, Subject: body.Subject, Request: body.Request, Pid: pid, Start: time.Now()}
	faults := r.faults.Load()
	if faults && mrand.IntN(20) == 0 {
		c.End, c.Status = time.Now(), http.StatusServiceUnavailable
		r.add(c)
		http.Error(w, "try again", c.Status)
		return
	}
	if faults && mrand.IntN(8) == 0 {
		time.Sleep(r.slow)
	} else {
		time.Sleep(50*time.Millisecond + mrand.N(200*time.Millisecond))
	}
	c.End, c.Status = time.Now(), http.StatusOK
	r.add(c)
}

// clerkProxy forwards to clerktest, recording every user deletion with
// the caller's pid and request ID and the user's pseudonym.
func (r *recorder) clerkProxy(srv *clerktest.Server) http.Handler {
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = srv.ClientConfig().HTTPClient.Transport
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway) // the caller was killed, mostly
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, ok := strings.CutPrefix(req.URL.Path, "/v1/users/")
		if !ok || req.Method != http.MethodDelete || strings.Contains(id, "/") {
			proxy.ServeHTTP(w, req)
			return
		}
		pid, _ := strconv.Atoi(req.Header.Get(pidHeader))
		c := call{Service: "clerk", Subject: r.pseudo.Pseudonym(id), Request: req.Header.Get(requestHeader), Pid: pid, Start: time.Now()}
		sw := &statusWriter{ResponseWriter: w}
		proxy.ServeHTTP(sw, req)
		c.End, c.Status = time.Now(), sw.status
		r.add(c)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// incarnation is one run of a worker slot: one OS process.
type incarnation struct {
	slot, inc int
	proc      *fleet.Process
	output    string // its standard output and error
}

// kill is one SIGKILL the harness sent.
type kill struct {
	Slot, Pid int
	At        time.Time
}

// harness starts, kills and restarts the workers of one run.
type harness struct {
	t       *testing.T
	cfgPath string
	dir     string

	mu      sync.Mutex
	all     []*incarnation
	current [workers]*incarnation
	next    [workers]int
	kills   []kill
}

func (h *harness) start(slot int) {
	h.t.Helper()
	inc := h.next[slot]
	h.next[slot]++
	out := filepath.Join(h.dir, fmt.Sprintf("w%d.%d.out", slot, inc))
	f, err := os.Create(out)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	cmd := fleet.Command(workerRole, configEnv+"="+h.cfgPath, slotEnv+"="+strconv.Itoa(slot), incarnationEnv+"="+strconv.Itoa(inc))
	cmd.Stdout, cmd.Stderr = f, f
	p, err := fleet.Start(cmd)
	if err != nil {
		h.t.Fatalf("starting worker %d: %v", slot, err)
	}
	in := &incarnation{slot: slot, inc: inc, proc: p, output: out}
	h.mu.Lock()
	h.all = append(h.all, in)
	h.current[slot] = in
	h.mu.Unlock()
}

// killAndRestart SIGKILLs the slot's process and starts the next.
func (h *harness) killAndRestart(slot int) {
	h.t.Helper()
	cur := h.current[slot]
	select {
	case <-cur.proc.Done():
		// It ended on its own: the checks report it; do not restart it,
		// so the failure is not hidden.
		return
	default:
	}
	h.mu.Lock()
	h.kills = append(h.kills, kill{Slot: slot, Pid: cur.proc.Pid(), At: time.Now()})
	h.mu.Unlock()
	if err := cur.proc.Kill(); err != nil {
		h.t.Fatal(err)
	}
	<-cur.proc.Done()
	h.start(slot)
}

// waitUp waits until in has journalled that it is up, which it does
// once it handles SIGTERM: a process started just before the drain would
// otherwise be terminated by the signal instead of draining.
func (h *harness) waitUp(in *incarnation, dir string) {
	h.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs, err := fleet.ReadJournal[record](journalPath(dir, in.slot, in.inc))
		if err == nil && slices.ContainsFunc(recs, func(r record) bool { return r.Kind == recUp }) {
			return
		}
		select {
		case <-in.proc.Done():
			return // the checks report why it ended
		default:
		}
	}
	h.t.Errorf("worker %d incarnation %d did not come up within 30 s", in.slot, in.inc)
}

// stopAll kills whatever still runs; the test's cleanup.
func (h *harness) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.all {
		_ = in.proc.Kill()
		<-in.proc.Done()
	}
}

// world is what a run set up, for the checks.
type world struct {
	cfg    config
	db     *sql.DB
	store  *sqlstore.Store
	clerk  *clerktest.Server
	rec    *recorder
	h      *harness
	pseudo *audit.Pseudonymizer
}

func runFleet(t *testing.T, d sqlstore.Dialect, m mode) {
	ctx := t.Context()
	db := sqltest.Open(t, d)
	store, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exampleschema.Create(ctx, db, d); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := config{
		Dialect: d, Dir: dir, OpLoops: m.opLoops, OpPause: m.opPause,
		ResumeAfter: 2 * time.Second, ClaimTTL: 3 * time.Second, DrainTimeout: 60 * time.Second,
		AuditKey: make([]byte, 32),
	}
	_, _ = rand.Read(cfg.AuditKey)
	if d == sqlstore.SQLite {
		if err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&cfg.SQLitePath); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg.PostgresDSN = os.Getenv(sqltest.PostgresDSNEnv)
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&cfg.Schema); err != nil {
			t.Fatal(err)
		}
	}
	pseudo, err := audit.NewPseudonymizer(audit.Key{ID: auditKeyID, Secret: cfg.AuditKey})
	if err != nil {
		t.Fatal(err)
	}

	// The pool: regular users first (the first three admins), then the
	// victims, each with rows in the application's tables.
	clerk := clerktest.NewServer()
	t.Cleanup(clerk.Close)
	now := time.Now()
	for i := range m.regular + m.victims {
		id := fmt.Sprintf("user_fleet%02d", i)
		role := "user"
		if i < 3 {
			role = "admin"
		}
		clerk.AddUser(steward.User{ID: id, PublicMetadata: map[string]any{"role": role},
			EmailAddresses: []steward.EmailAddress{{Address: fmt.Sprintf("fleet%02d@example.com", i), Verified: true}}})
		if _, err := exampleschema.Seed(ctx, db, d, id, 12, now); err != nil {
			t.Fatal(err)
		}
		cfg.Users = append(cfg.Users, id)
		if i < m.regular {
			cfg.Regular = append(cfg.Regular, i)
		}
	}
	// Victims fall due from a tenth to four fifths of the run; every
	// third is erased by two workers at once.
	for i := range m.victims {
		v := victim{User: m.regular + i, Slots: []int{i % workers}}
		v.At = time.Duration(float64(m.run) * (0.1 + 0.7*float64(i)/float64(max(m.victims-1, 1))))
		if i%3 == 0 {
			v.Slots = append(v.Slots, (i+1)%workers)
		}
		cfg.Victims = append(cfg.Victims, v)
	}

	rec := &recorder{pseudo: pseudo, slow: cfg.ResumeAfter + 500*time.Millisecond}
	extSrv := httptest.NewServer(http.HandlerFunc(rec.external))
	t.Cleanup(extSrv.Close)
	proxy := httptest.NewServer(rec.clerkProxy(clerk))
	t.Cleanup(proxy.Close)
	cfg.ExternalURL, cfg.ClerkURL, cfg.ClerkKey = extSrv.URL, proxy.URL, clerk.SecretKey()

	h := &harness{t: t, cfgPath: filepath.Join(dir, "config.json"), dir: dir}
	cfg.Start = time.Now()
	if err := cfg.write(h.cfgPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stopAll)
	rec.faults.Store(true)
	for slot := range workers {
		h.start(slot)
	}

	// Run: inject Clerk faults, kill a random worker every 1–3 s.
	stopFaults := make(chan struct{})
	var faults sync.WaitGroup
	faults.Go(func() {
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopFaults:
				return
			case <-tick.C:
				clerk.FailNext(1, http.StatusServiceUnavailable, 0)
			}
		}
	})
	rng := mrand.New(mrand.NewPCG(uint64(now.UnixNano()), 1))
	deadline := cfg.Start.Add(m.run)
	for {
		wait := time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))
		if time.Until(deadline) < wait {
			break
		}
		time.Sleep(wait)
		h.killAndRestart(rng.IntN(workers))
	}
	time.Sleep(time.Until(deadline))

	// Drain: no more faults or kills; every worker finishes the fleet's
	// work and exits.
	close(stopFaults)
	faults.Wait()
	rec.faults.Store(false)
	drainStart := time.Now()
	for _, in := range h.current {
		h.waitUp(in, cfg.Dir)
		if err := in.proc.Terminate(); err != nil {
			t.Error(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout+30*time.Second)
	defer cancel()
	for _, in := range h.current {
		if _, err := in.proc.Wait(wctx); err != nil {
			t.Errorf("worker %d did not exit after draining: %v", in.slot, err)
		}
	}
	t.Logf("%s: ran %v with %d kills, drained in %v", d, m.run, len(h.kills), time.Since(drainStart).Round(time.Millisecond))

	checkAll(t, &world{cfg: cfg, db: db, store: store, clerk: clerk, rec: rec, h: h, pseudo: pseudo})
}
