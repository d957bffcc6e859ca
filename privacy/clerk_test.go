package privacy_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
)

// These tests erase through the Clerk adapter against the fake Clerk,
// with the faults Clerk really answers: 429 and 5xx.

type clerkWorld struct {
	srv   *clerktest.Server
	user  steward.User
	app   *privacy.MemoryStore
	reqs  *privacy.MemoryRequestStore
	idp   steward.IdentityProvider
	clock *clock
}

func newClerkWorld(t *testing.T) *clerkWorld {
	t.Helper()
	srv := clerktest.NewServer()
	t.Cleanup(srv.Close)
	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}})
	app := privacy.NewMemoryStore("app")
	app.Add(u.ID, privacy.Record{Category: "orders", Data: map[string]any{"total": 42}})
	// The adapter retries each call twice, quickly; the saga retries the
	// step on top of that.
	idp := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithMaxAttempts(2), clerkadapter.WithBackoff(time.Millisecond, 2*time.Millisecond))
	return &clerkWorld{srv: srv, user: u, app: app, reqs: privacy.NewMemoryRequestStore(), idp: idp, clock: newClock()}
}

func (w *clerkWorld) service(t *testing.T, idp steward.IdentityProvider) *privacy.Service {
	t.Helper()
	svc, err := privacy.NewService(idp, privacy.WithStores(w.app), privacy.WithRequestStore(w.reqs),
		privacy.WithIdentityName("clerk"), privacy.WithNow(w.clock.Now),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (w *clerkWorld) deletes() int {
	return w.srv.CountRequests(http.MethodDelete, "/v1/users/"+w.user.ID)
}

func TestEraseThroughClerkFaults(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway} {
		t.Run(http.StatusText(status)+" within the retries", func(t *testing.T) {
			w := newClerkWorld(t)
			// The fence's lock at Clerk fails both its attempts (the
			// erasure goes on without it), then both adapter attempts of
			// the identity step's first read fail and the saga's second
			// succeeds.
			w.srv.FailNext(2+3, status, 0)
			res, err := w.service(t, w.idp).Erase(context.Background(), w.user.ID)
			if err != nil || !res.Success {
				t.Fatalf("Erase = %+v, %v; want success", res, err)
			}
			if _, ok := w.srv.User(w.user.ID); ok {
				t.Error("the user still exists at Clerk")
			}
			req, _ := w.reqs.Get(context.Background(), res.RequestID)
			if st := req.Step("clerk"); st == nil || st.Attempts != 2 {
				t.Errorf("clerk step %+v; want done after 2 saga attempts", st)
			}
		})
	}

	t.Run("outage beyond the retries, then Resume", func(t *testing.T) {
		w := newClerkWorld(t)
		w.srv.FailNext(2+4, http.StatusServiceUnavailable, 0) // the lock, then both saga attempts
		svc := w.service(t, w.idp)
		res, err := svc.Erase(context.Background(), w.user.ID)
		if !errors.Is(err, privacy.ErrPartialDeletion) || len(res.Errors) == 0 || res.Errors[0].Step != "clerk" || res.Errors[0].Code != privacy.CodeIdentityFailed {
			t.Fatalf("Erase = %+v, %v; want partial at the clerk step", res, err)
		}
		noUserID(t, "step error", res.Errors[0].Message)
		if w.app.Len(w.user.ID) != 0 {
			t.Error("app data was not erased before the identity")
		}
		res, err = svc.Resume(context.Background(), res.RequestID)
		if err != nil || !res.Success {
			t.Fatalf("Resume = %+v, %v; want success", res, err)
		}
		if _, ok := w.srv.User(w.user.ID); ok {
			t.Error("the user still exists at Clerk")
		}
	})
}

// dieAfterDelete ends its goroutine (runtime.Goexit) once DeleteUser has
// reached Clerk, as a process killed before its checkpoint.
type dieAfterDelete struct {
	steward.IdentityProvider
	armed bool
}

func (d *dieAfterDelete) DeleteUser(ctx context.Context, id string) error {
	err := d.IdentityProvider.DeleteUser(ctx, id)
	if d.armed {
		d.armed = false
		runtime.Goexit()
	}
	return err
}

func TestCrashAfterClerkDeleteThenResume(t *testing.T) {
	w := newClerkWorld(t)
	done, returned := make(chan struct{}), false
	go func() {
		defer close(done)
		_, _ = w.service(t, &dieAfterDelete{IdentityProvider: w.idp, armed: true}).Erase(context.Background(), w.user.ID)
		returned = true
	}()
	<-done
	if returned {
		t.Fatal("no crash")
	}
	if _, ok := w.srv.User(w.user.ID); ok {
		t.Fatal("the delete did not reach Clerk before the crash")
	}
	// A request touched a moment ago belongs to a process presumed alive.
	if n, err := w.service(t, w.idp).ResumePending(context.Background()); n != 0 || err != nil {
		t.Fatalf("ResumePending of a fresh request = %d, %v; want 0", n, err)
	}
	w.clock.Advance(2 * privacy.DefaultResumeAfter)
	if n, err := w.service(t, w.idp).ResumePending(context.Background()); n != 1 || err != nil {
		t.Fatalf("ResumePending = %d, %v; want 1", n, err)
	}
	// The second DELETE met Clerk's 404, which counts as done.
	if got := w.deletes(); got != 2 {
		t.Errorf("Clerk saw %d DELETEs; want 2 (the crashed one and the resumed one)", got)
	}
	var all []privacy.Request
	for r := range w.reqs.List(context.Background(), privacy.RequestFilter{}) {
		all = append(all, r)
	}
	if len(all) != 1 || all[0].Status != privacy.StatusCompleted {
		t.Errorf("requests %+v; want one completed", all)
	}
}
