package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// stepRecorder is a DataStore and an ExternalService that takes its time
// and records, per user, how many calls it had and whether two of them
// ever ran at once.
type stepRecorder struct {
	name  string
	delay time.Duration
	gate  chan struct{} // when not nil, each call waits for it

	mu      sync.Mutex
	calls   map[string]int
	running map[string]int
	overlap map[string]bool
}

func newRecorder(name string, delay time.Duration) *stepRecorder {
	return &stepRecorder{name: name, delay: delay, calls: map[string]int{}, running: map[string]int{}, overlap: map[string]bool{}}
}

func (r *stepRecorder) Name() string { return r.name }

func (r *stepRecorder) Export(context.Context, string) iter.Seq2[privacy.Record, error] {
	return func(func(privacy.Record, error) bool) {}
}

func (r *stepRecorder) call(ctx context.Context, userID string) error {
	r.mu.Lock()
	r.calls[userID]++
	r.running[userID]++
	if r.running[userID] > 1 {
		r.overlap[userID] = true
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[userID]--
		r.mu.Unlock()
	}()
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-time.After(r.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *stepRecorder) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	return privacy.Erased{Count: 1}, r.call(ctx, userID)
}

func (r *stepRecorder) snapshot() (calls map[string]int, overlap map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls, overlap = map[string]int{}, map[string]bool{}
	for k, v := range r.calls {
		calls[k] = v
	}
	for k, v := range r.overlap {
		overlap[k] = v
	}
	return calls, overlap
}

type recordingExternal struct{ *stepRecorder }

func (e recordingExternal) Erase(ctx context.Context, userID string) error {
	return e.call(ctx, userID)
}

// requestStores are the RequestStores two Services share: one in memory
// (two Services in one process) and one database each dialect (two
// processes), every Service with its own *sql.DB on the database.
func requestStores(t *testing.T) map[string]func(t *testing.T) (privacy.RequestStore, privacy.RequestStore) {
	sql := func(d sqlstore.Dialect) func(t *testing.T) (privacy.RequestStore, privacy.RequestStore) {
		return func(t *testing.T) (privacy.RequestStore, privacy.RequestStore) {
			db := sqltest.Open(t, d)
			s, err := sqlstore.New(db, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s.Requests(), s.Requests()
		}
	}
	return map[string]func(t *testing.T) (privacy.RequestStore, privacy.RequestStore){
		"memory": func(*testing.T) (privacy.RequestStore, privacy.RequestStore) {
			m := privacy.NewMemoryRequestStore()
			return m, m
		},
		"sqlite":   sql(sqlstore.SQLite),
		"postgres": sql(sqlstore.Postgres),
	}
}

// TestTwoServicesRunEachErasureOnce erases users from two Services on
// one request store, many of them from both at once: every request
// completes, each step runs once per user with no two runs of it at once,
// and each request has one completion event.
func TestTwoServicesRunEachErasureOnce(t *testing.T) {
	for name, stores := range requestStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := stores(t)
			idp := steward.NewMemoryIdentity()
			var users []string
			for i := range 12 {
				id := fmt.Sprintf("user_%02d", i)
				users = append(users, id)
				idp.Put(steward.User{ID: id})
			}
			orders, ext := newRecorder("orders", 5*time.Millisecond), newRecorder("email", 5*time.Millisecond)
			sink := audit.NewMemorySink()
			svc := func(rs privacy.RequestStore) *privacy.Service {
				log, err := audit.NewLogger(sink, audit.WithKey("k1", make([]byte, 32)))
				if err != nil {
					t.Fatal(err)
				}
				s, err := privacy.NewService(idp, privacy.WithStores(orders), privacy.WithExternal(recordingExternal{ext}),
					privacy.WithAudit(log), privacy.WithRequestStore(rs), privacy.WithRetry(fastRetry))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			services := []*privacy.Service{svc(a), svc(b)}
			var wg sync.WaitGroup
			// Every caller waits here, so that the calls meant to run at
			// once do, however late their goroutine starts.
			ready := make(chan struct{})
			results := make(chan privacy.DeletionResult, 3*len(users))
			for i, u := range users {
				callers := []*privacy.Service{services[i%2]}
				if i%3 == 0 {
					callers = services // both at once
				}
				for _, s := range callers {
					wg.Go(func() {
						<-ready
						res, err := s.Erase(ctx, u)
						if err != nil {
							t.Errorf("Erase(%s): %v", u, err)
						}
						results <- res
					})
				}
			}
			close(ready)
			wg.Wait()
			close(results)
			for res := range results {
				if !res.Success {
					t.Errorf("result %+v, want success", res)
				}
			}
			// A store is called twice per user, by its step and by the
			// final pass; an external service once.
			for rec, want := range map[*stepRecorder]int{orders: 2, ext: 1} {
				calls, overlap := rec.snapshot()
				for _, u := range users {
					if calls[u] != want || overlap[u] {
						t.Errorf("%s of %s: %d calls, overlapping %v; want %d", rec.name, u, calls[u], overlap[u], want)
					}
				}
			}
			completed := map[string]int{}
			for _, e := range sink.Snapshot() {
				if e.Type == audit.DataDeletion && e.Details["status"] == "completed" {
					completed[fmt.Sprint(e.Details["requestId"])]++
				}
			}
			if len(completed) != len(users) {
				t.Errorf("%d requests have a completion event, want %d", len(completed), len(users))
			}
			for id, n := range completed {
				if n != 1 {
					t.Errorf("request %s has %d completion events, want 1", id, n)
				}
			}
			if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestResumePendingLeavesARunningRequestAlone has a step outlast the
// claim's ttl and WithResumeAfter several times over while another
// Service calls ResumePending in a loop: the heartbeat keeps the claim,
// so the other never takes the request over.
func TestResumePendingLeavesARunningRequestAlone(t *testing.T) {
	for name, stores := range requestStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := stores(t)
			idp := steward.NewMemoryIdentity()
			idp.Put(steward.User{ID: testUser})
			slow := newRecorder("orders", time.Second)
			mk := func(rs privacy.RequestStore) *privacy.Service {
				s, err := privacy.NewService(idp, privacy.WithStores(slow), privacy.WithRequestStore(rs),
					privacy.WithRetry(fastRetry), privacy.WithClaimTTL(300*time.Millisecond), privacy.WithResumeAfter(0))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			first, second := mk(a), mk(b)
			done := make(chan error, 1)
			go func() { _, err := first.Erase(ctx, testUser); done <- err }()
			var resumed atomic.Int64
			stop := make(chan struct{})
			loop := make(chan struct{})
			go func() {
				defer close(loop)
				for {
					select {
					case <-stop:
						return
					default:
					}
					n, err := second.ResumePending(ctx)
					if err != nil {
						t.Errorf("ResumePending while another Service runs the request: %v", err)
						return
					}
					resumed.Add(int64(n))
					time.Sleep(10 * time.Millisecond)
				}
			}()
			if err := <-done; err != nil {
				t.Fatalf("Erase: %v", err)
			}
			close(stop)
			<-loop
			calls, overlap := slow.snapshot()
			if calls[testUser] != 2 || overlap[testUser] {
				t.Errorf("the slow store ran %d times (overlapping %v), want twice: its step and the final pass", calls[testUser], overlap[testUser])
			}
		})
	}
}

// theftStore is a RequestStore whose claims are taken over by another
// worker as soon as the first step has started.
type theftStore struct {
	privacy.RequestStore
	claimer privacy.RequestClaimer
	stolen  atomic.Bool
}

func (s *theftStore) ClaimRequest(ctx context.Context, id, owner string, ttl time.Duration) (privacy.Request, error) {
	return s.claimer.ClaimRequest(ctx, id, owner, ttl)
}

func (s *theftStore) RenewClaim(ctx context.Context, id, owner string, ttl time.Duration) error {
	if s.stolen.Load() {
		return fmt.Errorf("%w: taken over", privacy.ErrClaimLost)
	}
	return s.claimer.RenewClaim(ctx, id, owner, ttl)
}

func (s *theftStore) ReleaseClaim(ctx context.Context, id, owner string) error {
	return s.claimer.ReleaseClaim(ctx, id, owner)
}

// TestAWorkerThatLostItsClaimStops shows the fence: once the heartbeat
// finds the claim gone, the run stops before its next step, its
// checkpoint is refused, and another worker finishes the request with
// every step once.
func TestAWorkerThatLostItsClaimStops(t *testing.T) {
	ctx := context.Background()
	mem := privacy.NewMemoryRequestStore()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: testUser})
	first := newRecorder("orders", 300*time.Millisecond)
	second := newRecorder("files", 0)
	stolen := &theftStore{RequestStore: mem, claimer: mem}
	svc, err := privacy.NewService(idp, privacy.WithStores(first, second), privacy.WithRequestStore(stolen),
		privacy.WithRetry(fastRetry), privacy.WithClaimTTL(60*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stolen.stolen.Store(true)
	res, err := svc.Erase(ctx, testUser)
	if !errors.Is(err, privacy.ErrClaimLost) || !errors.Is(err, steward.ErrLeaseLost) {
		t.Fatalf("Erase after its claim was lost = %+v, %v; want ErrClaimLost", res, err)
	}
	if calls, _ := second.snapshot(); calls[testUser] != 0 {
		t.Errorf("the next step ran %d times after the claim was lost, want 0", calls[testUser])
	}
	// Another worker, on the plain store, finishes it.
	other, err := privacy.NewService(idp, privacy.WithStores(first, second), privacy.WithRequestStore(mem), privacy.WithRetry(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	res, err = other.Resume(ctx, res.RequestID)
	if err != nil || !res.Success {
		t.Fatalf("Resume by another worker = %+v, %v", res, err)
	}
	want := []string{"orders", "files", "identity"}
	if diff := cmp.Diff(want, res.DeletedFrom); diff != "" {
		t.Errorf("DeletedFrom (-want +got):\n%s", diff)
	}
	if calls, _ := second.snapshot(); calls[testUser] != 2 {
		t.Errorf("the second store ran %d times, want 2: its step and the final pass", calls[testUser])
	}
}
