package fleet_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/internal/fleet"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/useradmin"
)

// drainClockAhead is how far ahead of the real clock the draining consent
// Manager's clock runs. Update queues a user's sync a minute ahead before
// it appends the records, then again for now after; a worker killed
// between the two leaves the entry due a minute later, as documented.
// Draining as if that minute had passed makes the fleet converge in
// seconds instead.
const drainClockAhead = 2 * time.Minute

// worker is one replica: the library stack over the shared database,
// clerktest and the external service, driven by random operations.
type worker struct {
	cfg       config
	slot, inc int
	pid       int
	j         *fleet.Journal
	ops       atomic.Int64

	db       *sql.DB
	store    *sqlstore.Store
	log      *audit.Logger
	pseudo   *audit.Pseudonymizer
	svc      *privacy.Service // ResumePending takes over requests idle for cfg.ResumeAfter
	drainSvc *privacy.Service // ResumePending takes over every open request
	consents *consent.Manager
	drainCon *consent.Manager
	admins   *useradmin.Manager
}

// runWorker is the worker role's main: set up, run operations until
// SIGTERM, drain, exit 0. Status 2: setup failed; 3: draining did not
// finish in time.
func runWorker() int {
	slot, _ := strconv.Atoi(os.Getenv(slotEnv))
	inc, _ := strconv.Atoi(os.Getenv(incarnationEnv))
	cfg, err := readConfig(os.Getenv(configEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet worker %d: reading the configuration: %v\n", slot, err)
		return 2
	}
	// SIGTERM asks for a drain; catch it before anything else, so that a
	// drain requested during setup is not an exit by signal.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	w, err := newWorker(context.Background(), cfg, slot, inc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet worker %d: setting up: %v\n", slot, err)
		return 2
	}
	defer w.db.Close()
	return w.run(term)
}

func openDB(cfg config) (*sql.DB, error) {
	if cfg.Dialect == sqlstore.SQLite {
		return sqlstore.OpenSQLite(cfg.SQLitePath)
	}
	pc, err := pgx.ParseConfig(cfg.PostgresDSN)
	if err != nil {
		return nil, err
	}
	pc.RuntimeParams["search_path"] = cfg.Schema
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(8)
	return db, nil
}

func newWorker(ctx context.Context, cfg config, slot, inc int) (*worker, error) {
	w := &worker{cfg: cfg, slot: slot, inc: inc, pid: os.Getpid()}
	var err error
	if w.j, err = fleet.CreateJournal(journalPath(cfg.Dir, slot, inc)); err != nil {
		return nil, err
	}
	w.note(recUp, "")
	if w.db, err = openDB(cfg); err != nil {
		return nil, err
	}
	if w.store, err = sqlstore.New(w.db, cfg.Dialect); err != nil {
		return nil, err
	}
	// Every replica migrates at start, as a deployment's would, while
	// the others run.
	if err := w.store.Migrate(ctx); err != nil {
		return nil, err
	}
	if w.log, err = audit.NewLogger(w.store.AuditSink(), audit.WithKey(auditKeyID, cfg.AuditKey)); err != nil {
		return nil, err
	}
	w.pseudo = w.log.Pseudonymizer()

	httpClient := &http.Client{Transport: &stamper{pid: w.pid, requests: w.store.Requests(), next: http.DefaultTransport}}
	cc := &clerk.ClientConfig{}
	cc.URL = clerk.String(cfg.ClerkURL + "/v1")
	cc.Key = clerk.String(cfg.ClerkKey)
	cc.HTTPClient = httpClient
	idp := clerkadapter.New(cc, clerkadapter.WithBackoff(20*time.Millisecond, 400*time.Millisecond))

	appData, err := sqldata.New(ctx, w.db, cfg.Dialect, exampleschema.Tables())
	if err != nil {
		return nil, err
	}
	ext := &external{url: cfg.ExternalURL, client: httpClient, pseudo: w.pseudo, requests: w.store.Requests()}
	opts := []privacy.Option{
		privacy.WithStores(appData, consent.NewDataStore(w.store.Consent())),
		privacy.WithExternal(ext),
		privacy.WithAudit(w.log),
		privacy.WithRequestStore(watchedRequests{Requests: w.store.Requests(), w: w}),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 5, InitialInterval: 20 * time.Millisecond, MaxInterval: 200 * time.Millisecond}),
	}
	if w.svc, err = privacy.NewService(idp, append(opts, privacy.WithResumeAfter(cfg.ResumeAfter))...); err != nil {
		return nil, err
	}
	if w.drainSvc, err = privacy.NewService(idp, append(opts, privacy.WithResumeAfter(0))...); err != nil {
		return nil, err
	}
	conOpts := []consent.Option{
		consent.WithAudit(w.log),
		consent.WithRetry(20*time.Millisecond, 400*time.Millisecond, 4),
		consent.WithClaimTTL(cfg.ClaimTTL),
		consent.WithFence(w.svc), // an erased user's consent is refused, in every process
	}
	if w.consents, err = consent.NewManager(w.store.Consent(), idp, conOpts...); err != nil {
		return nil, err
	}
	ahead := func() time.Time { return time.Now().Add(drainClockAhead) }
	if w.drainCon, err = consent.NewManager(w.store.Consent(), idp, append(conOpts, consent.WithNow(ahead))...); err != nil {
		return nil, err
	}

	if w.admins, err = useradmin.New(idp, rbac.Default(), useradmin.WithAudit(w.log), useradmin.WithLeases(w.store.Leases()), useradmin.WithLockWait(time.Second)); err != nil {
		return nil, err
	}
	return w, nil
}

// run runs the operation loops, the erasure schedule and the background
// duties until term, then drains.
func (w *worker) run(term <-chan os.Signal) int {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range w.cfg.OpLoops {
		wg.Go(func() { w.opLoop(stop, rand.New(rand.NewPCG(uint64(w.pid), uint64(i)))) })
	}
	wg.Go(func() { w.scheduleLoop(stop) })
	wg.Go(func() { w.background(stop) })
	<-term
	close(stop)
	wg.Wait() // operations in flight finish; none is cancelled
	return w.drain()
}

// note journals a record of kind, failing the worker when the journal
// cannot be written: a lost record would make the checks lie.
func (w *worker) note(kind, text string) {
	w.append(record{Kind: kind, User: -1, Note: text})
}

func (w *worker) append(r record) {
	r.At, r.Pid, r.Slot, r.Inc = time.Now(), w.pid, w.slot, w.inc
	if err := w.j.Append(r); err != nil {
		fmt.Fprintf(os.Stderr, "fleet worker %d: %v\n", w.slot, err)
		os.Exit(4)
	}
}

// watchedRequests is the worker's request store, journalling every
// failed claim renewal: a run whose renewals fail for a claim's TTL loses
// the claim although its process lives (ResumePending reports that as
// another worker's), and the next worker may do the step that was in
// flight again, as after a kill.
type watchedRequests struct {
	*sqlstore.Requests
	w *worker
}

func (r watchedRequests) RenewClaim(ctx context.Context, id, owner string, ttl time.Duration) error {
	err := r.Requests.RenewClaim(ctx, id, owner, ttl)
	if err != nil {
		text, leak := r.w.redact(err.Error())
		r.w.append(record{Kind: recClaim, User: -1, Request: id, Err: text, Leak: leak})
	}
	return err
}

// outcome is what one operation reports.
type outcome struct {
	event    bool // an audit event must be stored for it
	n        int
	request  string
	expected bool // err is one the operation may return in a fleet
}

// do journals the start of an operation, runs it, and journals its end.
func (w *worker) do(typ string, user int, f func(ctx context.Context, op string) (outcome, error)) {
	op := opID(w.slot, w.inc, int(w.ops.Add(1)))
	w.append(record{Kind: recStart, Op: op, Type: typ, User: user})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	out, err := f(ctx, op)
	cancel()
	r := record{Kind: recEnd, Op: op, Type: typ, User: user, OK: err == nil, Event: err == nil && out.event, N: out.n, Request: out.request}
	if err != nil {
		r.Err, r.Leak = w.redact(err.Error())
		r.Expected = out.expected
	}
	w.append(r)
}

// redact replaces pool users' IDs in s, reporting whether there were any.
func (w *worker) redact(s string) (string, bool) {
	leak := false
	for i, id := range w.cfg.Users {
		if strings.Contains(s, id) {
			s, leak = strings.ReplaceAll(s, id, fmt.Sprintf("<user %d>", i)), true
		}
	}
	return s, leak
}

// opLoop runs random operations on random users until stop.
func (w *worker) opLoop(stop <-chan struct{}, rng *rand.Rand) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		switch n := rng.IntN(100); {
		case n < 15:
			w.export(rng.IntN(len(w.cfg.Users)))
		case n < 45:
			w.changeConsent(rng.IntN(len(w.cfg.Users)), rng)
		case n < 60:
			w.assignRole(w.cfg.Regular[rng.IntN(len(w.cfg.Regular))], rng)
		case n < 65:
			w.ban(w.cfg.Regular[rng.IntN(len(w.cfg.Regular))], rng)
		default:
			w.logRaw(rng.IntN(len(w.cfg.Users)))
		}
		if w.cfg.OpPause > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(w.cfg.OpPause))))
		}
	}
}

// operator is the administrator an operation acts as: an ID of its own,
// outside the pool, so its events are told apart and it never acts on
// itself.
func operator(op string) rbac.Principal {
	return rbac.Principal{UserID: actorID(op), Role: rbac.RoleAdmin, EmailVerified: true}
}

func (w *worker) export(u int) {
	w.do(opExport, u, func(ctx context.Context, op string) (outcome, error) {
		var buf bytes.Buffer
		err := w.svc.Export(rbac.WithPrincipal(ctx, operator(op)), w.cfg.Users[u], &buf)
		if err != nil {
			// A victim's erasure fences exports of them from when it
			// opens, as it fences their consent.
			return outcome{expected: errors.Is(err, steward.ErrUserNotFound) || errors.Is(err, privacy.ErrFenced)}, err
		}
		var doc privacy.ExportDocument
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			return outcome{event: true}, fmt.Errorf("the export is not one JSON document: %w", err)
		}
		return outcome{event: true}, nil
	})
}

func (w *worker) changeConsent(u int, rng *rand.Rand) {
	changes := map[consent.Purpose]bool{}
	for _, p := range []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty} {
		if rng.IntN(2) == 0 {
			changes[p] = rng.IntN(2) == 0
		}
	}
	if len(changes) == 0 {
		changes[consent.Marketing] = rng.IntN(2) == 0
	}
	w.do(opConsent, u, func(ctx context.Context, op string) (outcome, error) {
		_, err := w.consents.Update(ctx, w.cfg.Users[u], changes, consent.Meta{PolicyVersion: 1, Source: "fleet", Actor: actorID(op)})
		// A victim's erasure fences their consent from when it opens.
		return outcome{event: true, expected: errors.Is(err, privacy.ErrFenced)}, err
	})
}

func (w *worker) assignRole(u int, rng *rand.Rand) {
	role := rbac.RoleUser
	if rng.IntN(2) == 0 {
		role = rbac.RoleAdmin
	}
	w.do(opRole, u, func(ctx context.Context, op string) (outcome, error) {
		old, err := w.admins.AssignRole(ctx, operator(op), w.cfg.Users[u], role)
		if err != nil {
			return outcome{expected: adminRefusal(err)}, err
		}
		// Every pool user starts with an explicit role, so an unchanged
		// role is exactly a role change that writes no event.
		return outcome{event: old != role}, nil
	})
}

func (w *worker) ban(u int, rng *rand.Rand) {
	banned := rng.IntN(2) == 0
	w.do(opBan, u, func(ctx context.Context, op string) (outcome, error) {
		err := w.admins.SetBanned(ctx, operator(op), w.cfg.Users[u], banned)
		if err != nil {
			return outcome{expected: adminRefusal(err)}, err
		}
		return outcome{event: true}, nil
	})
}

// adminRefusal reports the errors a role change or ban may meet in a
// fleet: the last-admin guard, the administrators lock held by another
// change, and Clerk's limit of updates per user (ten in ten seconds),
// which a busy user's consent mirrors and role changes together exceed
// however the adapter waits.
func adminRefusal(err error) bool {
	var t interface{ Throttled() (time.Duration, bool) }
	throttled := errors.As(err, &t)
	if throttled {
		_, throttled = t.Throttled()
	}
	return errors.Is(err, useradmin.ErrLastAdmin) || errors.Is(err, useradmin.ErrBusy) || throttled
}

// rawEventID is the ID of a raw Log operation's event.
func rawEventID(op string) string { return audit.EventID("fleet/" + op) }

func (w *worker) logRaw(u int) {
	w.do(opLog, u, func(ctx context.Context, op string) (outcome, error) {
		err := w.log.Log(ctx, audit.Event{ID: rawEventID(op), Type: audit.DataAccess, Subject: w.cfg.Users[u],
			Actor: actorID(op), Details: map[string]any{"op": op}})
		return outcome{event: true}, err
	})
}

// myVictims are the victims this worker's slot erases.
func (w *worker) myVictims() []victim {
	var out []victim
	for _, v := range w.cfg.Victims {
		for _, s := range v.Slots {
			if s == w.slot {
				out = append(out, v)
			}
		}
	}
	return out
}

// scheduleLoop erases this slot's victims as they fall due.
func (w *worker) scheduleLoop(stop <-chan struct{}) {
	done := map[int]bool{}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.erasePass(done, false)
	}
}

// erasePass erases the victims that are due (all of them with all) and
// not yet done in this incarnation, unless their erasure has completed.
func (w *worker) erasePass(done map[int]bool, all bool) {
	for _, v := range w.myVictims() {
		if done[v.User] || (!all && time.Since(w.cfg.Start) < v.At) {
			continue
		}
		if w.erased(v.User) {
			done[v.User] = true
			continue
		}
		w.do(opErase, v.User, func(ctx context.Context, op string) (outcome, error) {
			res, err := w.svc.Erase(ctx, w.cfg.Users[v.User], privacy.RequestedBy(actorID(op)))
			if res.RequestID != "" {
				done[v.User] = true // ResumePending finishes what this left
			}
			return outcome{request: res.RequestID, expected: errors.Is(err, privacy.ErrPartialDeletion)}, err
		})
	}
}

// erased reports whether u has a completed erasure request.
func (w *worker) erased(u int) bool {
	f := privacy.RequestFilter{Kind: privacy.KindErasure, UserID: w.cfg.Users[u], Statuses: []privacy.Status{privacy.StatusCompleted}, Limit: 1}
	for _, err := range w.store.Requests().List(context.Background(), f) {
		return err == nil
	}
	return false
}

// background runs what every replica runs: ResumePending and
// SyncPending, until stop.
func (w *worker) background(stop <-chan struct{}) {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.resume(w.svc)
		w.sync(w.consents)
	}
}

// resume runs ResumePending and journals it when it did or failed
// something.
func (w *worker) resume(svc *privacy.Service) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := svc.ResumePending(ctx)
	if n > 0 || err != nil {
		w.journalOp(opResume, n, err, allMatch(err, privacy.ErrPartialDeletion))
	}
	return n, err
}

func (w *worker) sync(m *consent.Manager) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := m.SyncPending(ctx)
	if n > 0 || err != nil {
		w.journalOp(opSync, n, err, allMatch(err, steward.ErrLeaseLost))
	}
	return n, err
}

// journalOp journals a background duty's call as one finished operation.
func (w *worker) journalOp(typ string, n int, err error, expected bool) {
	op := opID(w.slot, w.inc, int(w.ops.Add(1)))
	r := record{Kind: recEnd, Op: op, Type: typ, User: -1, OK: err == nil, N: n}
	if err != nil {
		r.Err, r.Leak = w.redact(err.Error())
		r.Expected = expected
	}
	w.append(r)
}

// allMatch reports whether err, or every error it joins, matches one of
// targets.
func allMatch(err error, targets ...error) bool {
	if err == nil {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				if !allMatch(e, targets...) {
					return false
				}
			}
			return true
		}
	}
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// drain finishes the fleet's work: this slot's victims not yet erased,
// then ResumePending (taking over every open request) and SyncPending
// (due entries, as if the queue grace had passed) until the database has
// no open request and no queued sync for a few rounds.
func (w *worker) drain() int {
	w.note(recNote, "draining")
	if q, err := w.store.Consent().Queued(context.Background(), 0); err == nil {
		later := 0
		for _, c := range q {
			if c.Due.After(time.Now()) && c.Owner == "" {
				later++
			}
		}
		w.append(record{Kind: recNote, User: -1, N: later, Note: "syncs queued for later"})
	}
	w.erasePass(map[int]bool{}, true)
	deadline := time.Now().Add(w.cfg.DrainTimeout)
	quiet := 0
	var state string
	for time.Now().Before(deadline) {
		n1, err1 := w.resume(w.drainSvc)
		n2, err2 := w.sync(w.drainCon)
		open, queued, err3 := w.backlog()
		state = fmt.Sprintf("resumed %d (%v), synced %d (%v), %d open requests, %d queued syncs (%v)", n1, err1, n2, err2, open, queued, err3)
		if n1 == 0 && n2 == 0 && err1 == nil && err2 == nil && err3 == nil && open == 0 && queued == 0 {
			if quiet++; quiet >= 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := w.log.Close(ctx); err != nil {
					w.note(recNote, "closing the audit logger: "+err.Error())
					return 3
				}
				w.note(recDrained, "")
				return 0
			}
		} else {
			quiet = 0
		}
		time.Sleep(250 * time.Millisecond)
	}
	text, _ := w.redact(state)
	w.note(recNote, "drain timed out: "+text)
	return 3
}

// backlog counts the open erasure requests and the queued consent syncs.
func (w *worker) backlog() (open, queued int, err error) {
	ctx := context.Background()
	f := privacy.RequestFilter{Statuses: []privacy.Status{privacy.StatusPending, privacy.StatusPartial}}
	for _, err := range w.store.Requests().List(ctx, f) {
		if err != nil {
			return 0, 0, err
		}
		open++
	}
	q, err := w.store.Consent().Queued(ctx, 0)
	return open, len(q), err
}

// stamper adds the worker's pid to every call, and to a Clerk user
// deletion the ID of the erasure request it belongs to.
type stamper struct {
	pid      int
	requests privacy.RequestStore
	next     http.RoundTripper
}

func (s *stamper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(pidHeader, strconv.Itoa(s.pid))
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/users/"); ok && r.Method == http.MethodDelete && !strings.Contains(id, "/") {
		r.Header.Set(requestHeader, openRequest(r.Context(), s.requests, id))
	}
	return s.next.RoundTrip(r)
}

// openRequest returns the ID of userID's open erasure request, the one
// being run, or "" when there is none or it cannot be read.
func openRequest(ctx context.Context, rs privacy.RequestStore, userID string) string {
	f := privacy.RequestFilter{Kind: privacy.KindErasure, UserID: userID, Statuses: []privacy.Status{privacy.StatusPending, privacy.StatusPartial}, Limit: 1}
	for r, err := range rs.List(ctx, f) {
		if err != nil {
			return ""
		}
		return r.ID
	}
	return ""
}

// external is the privacy.ExternalService of the fake erasure service:
// it sends the user's pseudonym, never the ID, with the request ID.
type external struct {
	url      string
	client   *http.Client
	pseudo   *audit.Pseudonymizer
	requests privacy.RequestStore
}

var _ privacy.ExternalService = (*external)(nil)

func (*external) Name() string { return externalName }

func (e *external) Erase(ctx context.Context, userID string) error {
	body, _ := json.Marshal(externalCall{Subject: e.pseudo.Pseudonym(userID), Request: openRequest(ctx, e.requests, userID)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/erase", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", externalName, resp.StatusCode)
	}
	return nil
}

// externalCall is the body of a call to the fake erasure service.
type externalCall struct {
	Subject string `json:"subject"`
	Request string `json:"request"`
}
