package privacy_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// These tests kill the "process" at every point where erasure touches
// the outside world, before and after the effect, by ending the
// goroutine on the spot (runtime.Goexit: the Service turns a store's
// panic into a failed step, so a panic no longer crashes) or by
// cancelling the context, and then let a new process finish the work.
// Whatever the point, the end state must be the same: every store erased
// once, the identity deleted once, one completed request, and audit
// events that say so once.

// crashed is what erasePassing reports for a simulated crash.
type crashed struct{ point string }

// crasher fires at one named point, once; with at == "" it records the
// points it passes instead.
type crasher struct {
	at     string
	exits  bool
	cancel context.CancelFunc

	mu     sync.Mutex
	fired  bool
	passed []string
}

func (c *crasher) point(name string) {
	c.mu.Lock()
	c.passed = append(c.passed, name)
	fire := !c.fired && c.at == name
	if fire {
		c.fired = true
	}
	c.mu.Unlock()
	if !fire {
		return
	}
	if c.exits {
		runtime.Goexit()
	}
	c.cancel()
}

type crashStore struct {
	privacy.DataStore
	c *crasher
}

func (s crashStore) Erase(ctx context.Context, id string) (privacy.Erased, error) {
	s.c.point("store " + s.Name() + " before")
	er, err := s.DataStore.Erase(ctx, id)
	s.c.point("store " + s.Name() + " after")
	return er, err
}

type crashIDP struct {
	*countingIDP
	c *crasher
}

func (p crashIDP) DeleteUser(ctx context.Context, id string) error {
	p.c.point("identity before")
	err := p.countingIDP.DeleteUser(ctx, id)
	p.c.point("identity after")
	return err
}

type crashExternal struct {
	*countingExternal
	c *crasher
}

func (e crashExternal) Erase(ctx context.Context, id string) error {
	e.c.point("external " + e.Name() + " before")
	err := e.countingExternal.Erase(ctx, id)
	e.c.point("external " + e.Name() + " after")
	return err
}

type crashAudit struct {
	l *audit.Logger
	c *crasher
}

func (a crashAudit) Log(ctx context.Context, e audit.Event) error {
	a.c.point("audit before")
	err := a.l.Log(ctx, e)
	a.c.point("audit after")
	return err
}

// crashRequests numbers the RequestStore's writes so each can be a
// crash point.
type crashRequests struct {
	privacy.RequestStore
	c *crasher

	mu sync.Mutex
	n  int
}

func (r *crashRequests) next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return r.n
}

func (r *crashRequests) Create(ctx context.Context, req privacy.Request) error {
	r.c.point("create request before")
	err := r.RequestStore.Create(ctx, req)
	r.c.point("create request after")
	return err
}

func (r *crashRequests) Update(ctx context.Context, req privacy.Request) error {
	n := r.next()
	r.c.point(fmt.Sprintf("checkpoint %d before", n))
	err := r.RequestStore.Update(ctx, req)
	r.c.point(fmt.Sprintf("checkpoint %d after", n))
	return err
}

// erasePassing runs one erasure in w's first process, crashing at c.
func erasePassing(t *testing.T, w *world, c *crasher) (panicked any, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.cancel = cancel
	svc, nerr := privacy.NewService(crashIDP{w.idp, c},
		privacy.WithStores(crashStore{w.orders, c}, crashStore{w.prefs, c}),
		privacy.WithExternal(crashExternal{w.email, c}),
		privacy.WithAudit(crashAudit{w.log, c}),
		privacy.WithRequestStore(&crashRequests{RequestStore: w.reqs, c: c}),
		privacy.WithNow(w.clock.Now),
		privacy.WithRetry(fastRetry),
	)
	if nerr != nil {
		t.Fatal(nerr)
	}
	// The "process" is the goroutine running Erase; Goexit ends it
	// mid-call, running only the deferred calls, as a crash that unwinds.
	done, returned := make(chan struct{}), false
	go func() {
		defer close(done)
		_, err = svc.Erase(ctx, testUser)
		returned = true
	}()
	<-done
	if !returned {
		return crashed{c.at}, nil
	}
	return nil, err
}

func TestCrashAtEveryPointThenResume(t *testing.T) {
	// A clean run lists the points.
	probe := &crasher{}
	w := newWorld(t)
	if p, err := erasePassing(t, w, probe); p != nil || err != nil {
		t.Fatalf("clean run: panic %v, error %v", p, err)
	}
	points := probe.passed
	if len(points) < 14 {
		t.Fatalf("only %d crash points found: %v", len(points), points)
	}
	// The last point is after the final checkpoint: the work is done and
	// recorded, so the crash changes nothing. Between the audit write and
	// that checkpoint, the resumed run writes the completion event again,
	// under the same event ID, which the audit sink (an Appender) stores
	// once: one completion event per request, wherever the crash.
	last := points[len(points)-1]

	// The request store is the memory one, or SQLite on disk: the crashed
	// process's checkpoints are what the new one reads back.
	backends := map[string]func(t *testing.T) privacy.RequestStore{
		"memory": func(*testing.T) privacy.RequestStore { return privacy.NewMemoryRequestStore() },
		"sqlite": func(t *testing.T) privacy.RequestStore {
			s, err := sqlstore.New(sqltest.Open(t, sqlstore.SQLite), sqlstore.SQLite)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s.Requests()
		},
	}
	for _, backend := range []string{"memory", "sqlite"} {
		for _, mode := range []string{"exit", "cancel"} {
			for _, at := range points {
				t.Run(backend+"/"+mode+" at "+at, func(t *testing.T) {
					crashAndResume(t, backends[backend](t), mode, at, last)
				})
			}
		}
	}
}

// crashAndResume crashes an erasure at point at, resumes it in a new
// process and checks the end state.
func crashAndResume(t *testing.T, reqs privacy.RequestStore, mode, at, last string) {
	w := newWorld(t)
	w.reqs = reqs
	c := &crasher{at: at, exits: mode == "exit"}
	p, err := erasePassing(t, w, c)
	if !c.fired {
		t.Fatalf("the crash point was not reached")
	}
	if mode == "exit" && p == nil {
		t.Fatalf("Erase returned (error %v) instead of the crash ending it", err)
	}
	if mode == "cancel" && err == nil && at != last {
		t.Fatalf("Erase returned no error after its context was cancelled")
	}

	// A new process: new Service and audit Logger over the same
	// durable state.
	log, lerr := audit.NewLogger(w.sink, audit.WithKey("k1", bytes.Repeat([]byte{7}, 32)), audit.WithNow(w.clock.Now))
	if lerr != nil {
		t.Fatal(lerr)
	}
	w.log = log
	svc := w.service(privacy.WithResumeAfter(0))
	ctx := context.Background()
	if len(requests(t, w.reqs, privacy.RequestFilter{})) == 0 {
		// Died before the request was stored: the user asks again.
		if _, err := svc.Erase(ctx, testUser); err != nil {
			t.Fatalf("Erase after the crash: %v", err)
		}
	} else if n, err := svc.ResumePending(ctx); err != nil || (n != 1 && at != last) {
		t.Fatalf("ResumePending = %d, %v; want 1 completed", n, err)
	}

	all := requests(t, w.reqs, privacy.RequestFilter{})
	if len(all) != 1 || all[0].Status != privacy.StatusCompleted {
		t.Fatalf("requests after resume: %+v; want one completed", all)
	}
	for _, st := range all[0].Steps {
		if st.Status != privacy.StepDone {
			t.Errorf("step %s is %s", st.Name, st.Status)
		}
	}
	if w.orders.Len(testUser) != 0 || w.prefs.Len(testUser) != 0 {
		t.Errorf("stores still hold the user's data")
	}
	if w.orders.erasing != 1 || w.prefs.erasing != 1 {
		t.Errorf("stores erased data %d and %d times; want once each", w.orders.erasing, w.prefs.erasing)
	}
	if w.idp.deleted != 1 {
		t.Errorf("identity deleted %d times; want once", w.idp.deleted)
	}
	if w.email.erased[testUser] < 1 {
		t.Errorf("external service never erased the user")
	}
	want := []string{"started", "completed"}
	evs := w.events()
	if diff := cmp.Diff(want, statuses(evs)); diff != "" {
		t.Errorf("data_deletion statuses (-want +got):\n%s", diff)
	}
	for _, e := range evs {
		if e.Details["requestId"] != all[0].ID {
			t.Errorf("event %d is about request %v; want %s", e.Sequence, e.Details["requestId"], all[0].ID)
		}
	}
}
