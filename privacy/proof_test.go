package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
)

// TestWriteBetweenStepsDoesNotSurviveSuccess: the application writes a
// row for the user after its store was erased (while the identity step
// runs, the user's session still working): the final pass erases it, so
// a successful erasure leaves nothing, and the result counts both passes.
func TestWriteBetweenStepsDoesNotSurviveSuccess(t *testing.T) {
	w := newWorld(t)
	w.idp.hook = func(int) {
		w.orders.Add(testUser, privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_late"}})
	}
	res, err := w.service().Erase(context.Background(), testUser)
	if err != nil || !res.Success {
		t.Fatalf("Erase = %+v, %v", res, err)
	}
	if n := w.orders.Len(testUser); n != 0 {
		t.Errorf("%d records written mid-way survived a successful erasure", n)
	}
	if res.Erased["orders"] != 4 {
		t.Errorf("orders erased %d, want 4: three in the first pass, one in the final pass", res.Erased["orders"])
	}
	last := w.events()[len(w.events())-1]
	if last.Details["finalPass"] != 1 {
		t.Errorf("completion event finalPass = %v, want 1", last.Details["finalPass"])
	}
}

// TestCheckFence: the one-line guard of the application's own writes.
func TestCheckFence(t *testing.T) {
	w := newWorld(t)
	w.prefs.faults.FailNextErase(1, errors.New("down"))
	svc := w.service(privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
	ctx := context.Background()
	if err := svc.CheckFence(ctx, testUser); err != nil {
		t.Fatalf("CheckFence before any erasure = %v", err)
	}
	if _, err := svc.Erase(ctx, testUser); !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase = %v, want partial", err)
	}
	if err := svc.CheckFence(ctx, testUser); !errors.Is(err, privacy.ErrFenced) || errors.Is(err, privacy.ErrErased) {
		t.Errorf("CheckFence while the erasure is open = %v, want ErrFenced", err)
	}
	if err := svc.CheckFence(ctx, "user_other"); err != nil {
		t.Errorf("CheckFence of another user = %v", err)
	}
	if _, err := svc.ResumePending(ctx); err != nil {
		t.Fatal(err)
	}
	err := svc.CheckFence(ctx, testUser)
	if !errors.Is(err, privacy.ErrErased) || !errors.Is(err, privacy.ErrFenced) {
		t.Errorf("CheckFence after the erasure = %v, want ErrErased", err)
	}
	noUserID(t, "fence error", err.Error())
	// Another Service over the same stores (another instance) agrees.
	again := w.service()
	if err := again.CheckFence(ctx, testUser); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("CheckFence in another instance = %v, want ErrErased", err)
	}
}

// TestCompletedRequestsHoldPseudonyms: a finished request names neither
// the user nor the administrator who asked.
func TestCompletedRequestsHoldPseudonyms(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	ctx := context.Background()
	res, err := svc.Erase(ctx, testUser, privacy.RequestedBy("user_admin1"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := svc.Request(ctx, res.RequestID)
	p := w.log.Pseudonymizer()
	if req.UserID != p.Pseudonym(testUser) || req.Actor != p.Pseudonym("user_admin1") || !req.Pseudonymous() {
		t.Errorf("completed request names %q by %q; want their pseudonyms", req.UserID, req.Actor)
	}
	b, _ := json.Marshal(req)
	for _, raw := range []string{testUser, "user_admin1"} {
		if bytes.Contains(b, []byte(raw)) {
			t.Errorf("the completed request holds %s", raw)
		}
	}
	// The user may ask again; a new erasure opens.
	if n := len(requests(t, w.reqs, privacy.RequestFilter{UserID: testUser})); n != 0 {
		t.Errorf("%d requests listed under the raw user ID", n)
	}
}

// TestFinishedRequestsArePurgedAfterTheProofPeriod: finished requests go
// after their proof period; open ones and the ledger stay.
func TestFinishedRequestsArePurgedAfterTheProofPeriod(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	ctx := context.Background()
	res, err := svc.Erase(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	target, err := svc.FinishedRequests()
	if err != nil {
		t.Fatal(err)
	}
	cut := w.clock.Now().Add(-privacy.DefaultProofPeriod)
	if n, err := target.Count(ctx, cut, nil); n != 0 || err != nil {
		t.Errorf("Count before the proof period ended = %d, %v; want 0", n, err)
	}
	w.clock.Advance(privacy.DefaultProofPeriod + time.Hour)
	cut = w.clock.Now().Add(-privacy.DefaultProofPeriod)
	if n, err := target.Purge(ctx, cut, 100, nil); n != 1 || err != nil {
		t.Errorf("Purge after the proof period = %d, %v; want 1", n, err)
	}
	if _, err := svc.Request(ctx, res.RequestID); !errors.Is(err, privacy.ErrRequestNotFound) {
		t.Errorf("the purged request: %v", err)
	}
	if err := svc.CheckFence(ctx, testUser); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("the ledger went with the request: CheckFence = %v", err)
	}
}

// TestEraseUnknownUserIsHonest: a user the provider never had is
// recorded as such: no count, no "deleted" identity.
func TestEraseUnknownUserIsHonest(t *testing.T) {
	w := newWorld(t)
	svc := w.service()
	res, err := svc.Erase(context.Background(), "user_typo")
	if err != nil || !res.Success {
		t.Fatalf("Erase of an unknown user = %+v, %v", res, err)
	}
	if !res.IdentityNotFound || res.Erased["identity"] != 0 {
		t.Errorf("result %+v; want IdentityNotFound and nothing counted for the identity", res)
	}
	if diff := cmp.Diff([]string{"orders", "preferences", "email"}, res.DeletedFrom); diff != "" {
		t.Errorf("DeletedFrom (-want +got):\n%s", diff)
	}
	if w.idp.calls != 0 {
		t.Errorf("DeleteUser called %d times for a user the provider does not know", w.idp.calls)
	}
	last := w.events()[len(w.events())-1]
	if last.Details["identity"] != privacy.StepOutcomeNotFound {
		t.Errorf("completion event details %v; want identity %q", last.Details, privacy.StepOutcomeNotFound)
	}
	if got := last.Details["erased"].(map[string]any)["identity"]; got != 0 {
		t.Errorf("completion event counts %v for the identity, want 0", got)
	}
}

// TestAdminDeleteOfUnknownUserIs404 and of a malformed one is 400.
func TestAdminDeleteOfUnknownUserIs404(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithAuthorizer(roleAuthz{}))
	got := serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete?userId=user_typo", admin, map[string]string{"X-Confirm-Delete": "true"})
	if diff := cmp.Diff(response{404, map[string]string{}, obj{"error": "User not found"}}, got); diff != "" {
		t.Errorf("admin DELETE of an unknown user (-want +got):\n%s", diff)
	}
	if n := len(requests(t, w.reqs, privacy.RequestFilter{})); n != 0 {
		t.Errorf("%d requests recorded for a typo", n)
	}
}

// TestProviderRefusedIDTouchesNothing: "abc" is a valid Steward ID but
// not a Clerk one; the provider says so before any store is erased.
func TestProviderRefusedIDTouchesNothing(t *testing.T) {
	srv := clerktest.NewServer()
	t.Cleanup(srv.Close)
	app := newCountingStore(privacy.NewMemoryStore("app"))
	app.Add("abc", privacy.Record{Category: "orders", Data: map[string]any{"total": 1}})
	reqs := privacy.NewMemoryRequestStore()
	svc, err := privacy.NewService(clerkadapter.New(srv.ClientConfig()), privacy.WithStores(app), privacy.WithRequestStore(reqs),
		privacy.WithAuthorizer(roleAuthz{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Erase(context.Background(), "abc"); !errors.Is(err, steward.ErrInvalidUserID) {
		t.Errorf("Erase(abc) = %v, want ErrInvalidUserID", err)
	}
	got := serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete?userId=abc", admin, map[string]string{"X-Confirm-Delete": "true"})
	if got.Status != http.StatusBadRequest {
		t.Errorf("admin DELETE of abc: %d, want 400", got.Status)
	}
	if app.calls() != 0 || app.Len("abc") != 1 {
		t.Errorf("the store was erased %d times for an ID the provider refuses", app.calls())
	}
	if n := len(requests(t, reqs, privacy.RequestFilter{})); n != 0 {
		t.Errorf("%d requests recorded for an ID the provider refuses", n)
	}
}

// leakyStore fails with an error that names the user, their email and a
// payment ID, as real drivers and SaaS APIs do.
type leakyStore struct{ *privacy.MemoryStore }

const leakyEmail, leakyPayment = "ada@example.com", "pi_3MtwBwLkdIwHu7ix28a3tqPa"

func (leakyStore) Erase(context.Context, string) (privacy.Erased, error) {
	return privacy.Erased{}, errors.Join(errors.New("payments: customer "+testUser+" <"+leakyEmail+"> has open charge "+leakyPayment),
		&url{user: testUser})
}

type url struct{ user string }

func (u *url) Error() string { return "GET https://api.example.com/customers/" + u.user + ": 500" }

// TestNoPIIInBodiesLogsOrErrors: neither an HTTP body, nor a slog line of
// a request, nor any error in an erasure's chain holds the user ID, and
// bodies never hold what a store said.
func TestNoPIIInBodiesLogsOrErrors(t *testing.T) {
	w := newWorld(t)
	pay := leakyStore{privacy.NewMemoryStore("payments")}
	h := &holds{held: map[string]string{}}
	svc := w.service(privacy.WithStores(pay), privacy.WithRetry(privacy.Retry{MaxAttempts: 1}), privacy.WithHoldChecker(h), privacy.WithAuthorizer(roleAuthz{}))
	forbidden := []string{testUser, leakyEmail, leakyPayment, "litigation about Ada"}

	res, err := svc.Erase(context.Background(), testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase = %v, want partial", err)
	}
	var walk func(string, error)
	walk = func(path string, e error) {
		if e == nil {
			return
		}
		if strings.Contains(e.Error(), testUser) {
			t.Errorf("%s: error text holds the user ID: %q", path, e.Error())
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(path+"/unwrap", x)
			}
		case interface{ Unwrap() error }:
			walk(path+"/unwrap", u.Unwrap())
		}
	}
	walk("Erase error", err)
	for _, se := range res.Errors {
		walk("StepError "+se.Step, se)
	}
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Error("redaction lost errors.Is")
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	req, _ := svc.Request(context.Background(), res.RequestID)
	logger.Info("request", "request", req, "filter", privacy.RequestFilter{UserID: testUser}, "result", res)
	// Every type that holds a user ID logs itself without it.
	logger.Info("types",
		"principal", *self,
		"consent", consent.Record{UserID: testUser, Purpose: consent.Marketing, Actor: testUser, Time: t0},
		"pending", consent.Pending{UserID: testUser},
		"claim", consent.Claim{Pending: consent.Pending{UserID: testUser}, Owner: "host/1/abc"},
		"query", consent.ClaimQuery{UserID: testUser},
		"hold", retention.Hold{UserID: testUser, Reason: "litigation about Ada", PlacedBy: testUser, PlacedAt: t0},
		"notice", retention.Notice{UserID: testUser},
		"user", steward.User{ID: testUser, EmailAddresses: []steward.EmailAddress{{Address: leakyEmail}}},
		"ledger", privacy.LedgerEntry{Subject: "hmac-sha256:k1:00", KeyID: "k1", RequestID: "req_1"},
		"state", consent.State{consent.Marketing: {UserID: testUser, Purpose: consent.Marketing, Granted: true}},
		"meta", consent.Meta{Actor: testUser, Source: "banner"},
		"event", audit.Event{Type: audit.DataAccess, Subject: testUser, Actor: testUser},
		"identity", privacy.ExportedIdentity{ID: testUser, Email: leakyEmail, EmailAddresses: []privacy.ExportedEmail{{Address: leakyEmail}}},
		"document", privacy.ExportDocument{FormatVersion: 1, Identity: privacy.ExportedIdentity{ID: testUser, Email: leakyEmail},
			Data: map[string][]privacy.ExportGroup{"orders": {{Category: "orders", Records: []map[string]any{{"email": leakyEmail}}}}}},
		"row", retention.Row{Subject: testUser, Data: map[string]any{"email": leakyEmail}},
	)

	h.set(testUser, "litigation about Ada")
	bodies := []response{
		serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete", self, map[string]string{"X-Confirm-Delete": "true"}),
		serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete?userId="+testUser, admin, map[string]string{"X-Confirm-Delete": "true"}),
	}
	h.set(testUser, "")
	bodies = append(bodies, serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete", self, map[string]string{"X-Confirm-Delete": "true"}))
	for i, b := range bodies {
		raw, _ := json.Marshal(b.Body)
		for _, f := range forbidden {
			if bytes.Contains(raw, []byte(f)) {
				t.Errorf("body %d holds %q: %s", i, f, raw)
			}
		}
	}
	if bodies[0].Status != http.StatusConflict || bodies[2].Status != http.StatusInternalServerError {
		t.Errorf("statuses %d, %d; want 409 (held) and 500 (partial)", bodies[0].Status, bodies[2].Status)
	}
	for _, f := range []string{testUser, leakyEmail, "litigation about Ada"} {
		if bytes.Contains(logs.Bytes(), []byte(f)) {
			t.Errorf("a slog line holds %q: %s", f, logs.Bytes())
		}
	}
}

// TestQueuedExportBlobsExpireAndGoWithTheUser covers the life of a
// queued export's blob: downloadable, expired after its TTL (410), and
// deleted by an erasure before that.
func TestQueuedExportBlobsExpireAndGoWithTheUser(t *testing.T) {
	w := newWorld(t)
	blobs := privacy.NewMemoryBlobs()
	done := make(chan privacy.Request, 4)
	svc := w.service(privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done}), privacy.WithAuthorizer(roleAuthz{}),
		privacy.WithExportTTL(24*time.Hour))
	ctx := rbac.WithPrincipal(context.Background(), *self)

	id, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	note := <-done
	if note.Status != privacy.StatusCompleted || note.UserID != testUser || !note.ExpiresAt.Equal(w.clock.Now().Add(24*time.Hour)) {
		t.Errorf("notified %+v; want completed, for the user, expiring in 24h", note)
	}
	stored, _ := svc.Request(ctx, id)
	if !stored.Pseudonymous() {
		t.Errorf("the completed export names the user")
	}
	dl := svc.DownloadHandler()
	if got := serve(t, dl, "GET", "/download?requestId="+id, self, nil); got.Status != http.StatusOK {
		t.Errorf("download by its user: %d, want 200", got.Status)
	}
	if got := serve(t, dl, "GET", "/download?requestId="+id, other, nil); got.Status != http.StatusNotFound {
		t.Errorf("download by another user: %d, want 404", got.Status)
	}
	before := len(w.events())
	if got := serve(t, dl, "GET", "/download?requestId="+id, admin, nil); got.Status != http.StatusOK {
		t.Errorf("download by an administrator: %d, want 200", got.Status)
	}
	if evs := w.events(); len(evs) != before+1 || evs[len(evs)-1].Type != audit.DataAccess {
		t.Errorf("an administrator's download wrote %d events; want one data_access", len(evs)-before)
	}

	w.clock.Advance(25 * time.Hour)
	if n, err := svc.ExpireExports(ctx); n != 1 || err != nil {
		t.Fatalf("ExpireExports = %d, %v; want 1", n, err)
	}
	if names := blobs.Names(); len(names) != 0 {
		t.Errorf("blobs after expiry: %v", names)
	}
	got := serve(t, dl, "GET", "/download?requestId="+id, self, nil)
	if diff := cmp.Diff(response{410, map[string]string{}, obj{"error": "Export expired", "code": "expired", "requestId": id}}, got); diff != "" {
		t.Errorf("download after expiry (-want +got):\n%s", diff)
	}

	// A fresh export's blob goes with its user's erasure.
	id2, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if len(blobs.Names()) != 1 {
		t.Fatalf("blobs before the erasure: %v", blobs.Names())
	}
	if _, err := svc.Erase(context.Background(), testUser); err != nil {
		t.Fatal(err)
	}
	if names := blobs.Names(); len(names) != 0 {
		t.Errorf("blobs after the erasure: %v", names)
	}
	if r, _ := svc.Request(ctx, id2); r.Status != privacy.StatusExpired || r.Location != "" {
		t.Errorf("the erased user's export is %s at %q; want expired, no location", r.Status, r.Location)
	}
	if _, err := svc.StartExport(ctx, testUser); !errors.Is(err, steward.ErrUserNotFound) && !errors.Is(err, privacy.ErrFenced) {
		t.Errorf("StartExport of an erased user = %v; want refused", err)
	}
}

// TestOnePendingExportPerUser: asking again while an export is pending
// (or partial, awaiting a retry) answers the same request.
func TestOnePendingExportPerUser(t *testing.T) {
	w := newWorld(t)
	done := make(chan privacy.Request, 4)
	svc := w.service(privacy.WithBlobWriter(&memBlobs{failN: -1}), privacy.WithNotifier(notifier{done}), privacy.WithAuthorizer(roleAuthz{}))
	ctx := context.Background()
	id, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	<-done // partial: the bucket is down
	for range 3 {
		again, err := svc.StartExport(ctx, testUser)
		if err != nil || again != id {
			t.Errorf("StartExport with one partial = %q, %v; want %q", again, err, id)
		}
	}
	got := serve(t, svc.ExportHandler(), "GET", "/api/user/data?async=1", self, nil)
	if body, _ := got.Body.(obj); got.Status != http.StatusAccepted || body["requestId"] != id {
		t.Errorf("async GET with one partial: %d %v; want 202 naming %s", got.Status, got.Body, id)
	}
	if n := len(requests(t, w.reqs, privacy.RequestFilter{Kind: privacy.KindExport})); n != 1 {
		t.Errorf("%d export requests, want 1", n)
	}
}

// gatedExport is a DataStore whose Export waits at a gate once.
type gatedExport struct {
	*privacy.MemoryStore
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gatedExport) Export(ctx context.Context, id string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		g.once.Do(func() {
			close(g.entered)
			<-g.gate
		})
		for r, err := range g.MemoryStore.Export(ctx, id) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// TestExportOverlappingAnErasureFails: an export running when the
// erasure begins writes nothing that survives and is not completed.
func TestExportOverlappingAnErasureFails(t *testing.T) {
	w := newWorld(t)
	g := &gatedExport{MemoryStore: privacy.NewMemoryStore("files"), entered: make(chan struct{}), gate: make(chan struct{})}
	g.Add(testUser, privacy.Record{Category: "files", Data: map[string]any{"name": "cv.pdf"}})
	blobs := privacy.NewMemoryBlobs()
	done := make(chan privacy.Request, 2)
	svc := w.service(privacy.WithStores(g), privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done}))
	ctx := context.Background()
	id, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered
	erased := make(chan error, 1)
	go func() { _, err := svc.Erase(ctx, testUser); erased <- err }()
	// Let the erasure open, then let the export finish writing.
	deadline := time.Now().Add(5 * time.Second)
	for svc.CheckFence(ctx, testUser) == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(g.gate)
	if err := <-erased; err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := svc.Request(ctx, id)
	if r.Status == privacy.StatusCompleted || r.Location != "" {
		t.Errorf("the overlapping export is %s at %q; want it not completed", r.Status, r.Location)
	}
	if names := blobs.Names(); len(names) != 0 {
		t.Errorf("blobs after the erasure: %v", names)
	}
	select {
	case n := <-done:
		t.Errorf("notified %+v for an export the erasure cancelled", n.Status)
	default:
	}
}

// TestCancelAndGracePeriod: during the grace period nothing is erased,
// the user is not fenced, and the user or an administrator can cancel;
// afterwards only an administrator can.
func TestCancelAndGracePeriod(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithGracePeriod(4*time.Hour), privacy.WithAuthorizer(roleAuthz{}))
	userCtx := rbac.WithPrincipal(context.Background(), *self)
	res, err := svc.Erase(userCtx, testUser)
	if !errors.Is(err, privacy.ErrScheduled) || !res.NotBefore.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("Erase with a grace period = %+v, %v; want scheduled 4h on", res, err)
	}
	if w.orders.calls() != 0 || svc.CheckFence(userCtx, testUser) != nil {
		t.Errorf("erased or fenced during the grace period")
	}
	if n, err := svc.ResumePending(context.Background()); n != 0 || err != nil {
		t.Errorf("ResumePending during the grace period = %d, %v; want it left alone", n, err)
	}
	if _, err := svc.Cancel(rbac.WithPrincipal(context.Background(), *other), res.RequestID, "not theirs"); !errors.Is(err, privacy.ErrForbidden) {
		t.Errorf("Cancel by another user = %v, want ErrForbidden", err)
	}
	got, err := svc.Cancel(userCtx, res.RequestID, "changed my mind")
	if err != nil || got.Status != privacy.StatusCancelled || !got.Pseudonymous() {
		t.Fatalf("Cancel by the user in the grace period = %+v, %v", got, err)
	}
	if _, err := svc.Resume(context.Background(), res.RequestID); !errors.Is(err, privacy.ErrCancelled) {
		t.Errorf("Resume of a cancelled request = %v, want ErrCancelled", err)
	}
	if w.orders.Len(testUser) == 0 {
		t.Error("a cancelled request erased data")
	}

	// Past the grace period, the user may no longer cancel; an admin may.
	res, err = svc.Erase(userCtx, testUser)
	if !errors.Is(err, privacy.ErrScheduled) {
		t.Fatalf("second Erase = %v", err)
	}
	w.clock.Advance(5 * time.Hour)
	if _, err := svc.Cancel(userCtx, res.RequestID, "too late"); !errors.Is(err, privacy.ErrForbidden) {
		t.Errorf("Cancel by the user after the grace period = %v, want ErrForbidden", err)
	}
	if _, err := svc.Cancel(rbac.WithPrincipal(context.Background(), *admin), res.RequestID, "duplicate of a postal request"); err != nil {
		t.Errorf("Cancel by an administrator = %v", err)
	}
	var cancelled []any
	for _, e := range w.events() {
		if e.Details["status"] == "cancelled" {
			cancelled = append(cancelled, e.Details["reason"])
		}
	}
	if diff := cmp.Diff([]any{"changed my mind", "duplicate of a postal request"}, cancelled); diff != "" {
		t.Errorf("cancellations audited (-want +got):\n%s", diff)
	}
	if _, err := svc.Cancel(context.Background(), res.RequestID, "again"); !errors.Is(err, privacy.ErrInvalidRequest) {
		t.Errorf("Cancel of a cancelled request = %v, want ErrInvalidRequest", err)
	}
}

// TestCancelIsAuditedBeforeEffect: with the audit sink down, Cancel
// changes nothing.
func TestCancelIsAuditedBeforeEffect(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithGracePeriod(time.Hour))
	res, _ := svc.Erase(context.Background(), testUser)
	down := w.service(privacy.WithAudit(failingAudit{}))
	if _, err := down.Cancel(context.Background(), res.RequestID, "ops"); err == nil {
		t.Fatal("Cancel with the audit sink down succeeded")
	}
	if r, _ := svc.Request(context.Background(), res.RequestID); r.Status != privacy.StatusPending {
		t.Errorf("request is %s after a Cancel that could not be audited; want pending", r.Status)
	}
}

// TestDeleteHandlerDuringGrace answers 202 with the time erasure starts.
func TestDeleteHandlerDuringGrace(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithGracePeriod(4 * time.Hour))
	got := serve(t, svc.DeleteHandler(), "DELETE", "/api/user/delete", self, map[string]string{"X-Confirm-Delete": "true"})
	body, _ := got.Body.(obj)
	result, _ := body["result"].(obj)
	if got.Status != http.StatusAccepted || body["message"] != "Deletion scheduled" || result["notBefore"] != t0.Add(4*time.Hour).Format(time.RFC3339) {
		t.Errorf("DELETE during the grace period: %d %v", got.Status, body)
	}
	id, _ := result["requestId"].(string)
	c := serve(t, svc.CancelHandler(), "POST", "/cancel", self, nil)
	if c.Status != http.StatusBadRequest {
		t.Errorf("cancel without a body: %d, want 400", c.Status)
	}
	c = serveBody(t, svc.CancelHandler(), "/cancel", self, `{"requestId": "`+id+`", "reason": "changed my mind"}`)
	if c.Status != http.StatusOK {
		t.Errorf("cancel by the user: %d %v", c.Status, c.Body)
	}
}

// serveBody POSTs body to h as p.
func serveBody(t *testing.T, h http.Handler, target string, p *rbac.Principal, body string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if p != nil {
		req = req.WithContext(rbac.WithPrincipal(req.Context(), *p))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{Status: rec.Code, Headers: map[string]string{}}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.Body); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
	}
	return res
}

// TestInlineExportOfAFencedUserIsRefused: Export (the Go call, not only
// the HTTP handler) refuses a user whose erasure is open, writing
// nothing, and an inline export that an erasure overlaps fails instead
// of ending with "complete": true over data the erasure removed.
func TestInlineExportOfAFencedUserIsRefused(t *testing.T) {
	t.Run("open erasure", func(t *testing.T) {
		w := newWorld(t)
		w.prefs.faults.FailNextErase(1, errors.New("down"))
		svc := w.service(privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
		ctx := context.Background()
		if _, err := svc.Erase(ctx, testUser); !errors.Is(err, privacy.ErrPartialDeletion) {
			t.Fatalf("Erase = %v, want partial", err)
		}
		var buf bytes.Buffer
		err := svc.Export(ctx, testUser, &buf)
		if !errors.Is(err, privacy.ErrFenced) || buf.Len() != 0 {
			t.Errorf("Export during an open erasure = %v with %d bytes written; want ErrFenced and nothing", err, buf.Len())
		}
	})
	t.Run("after the erasure", func(t *testing.T) {
		// The identity is gone by then: the caller must still learn
		// that the user was erased, not that nobody of the ID exists.
		w := newWorld(t)
		svc := w.service(privacy.WithBlobWriter(privacy.NewMemoryBlobs()))
		ctx := context.Background()
		if _, err := svc.Erase(ctx, testUser); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := svc.Export(ctx, testUser, &buf); !errors.Is(err, privacy.ErrErased) || buf.Len() != 0 {
			t.Errorf("Export after the erasure = %v with %d bytes written; want ErrErased and nothing", err, buf.Len())
		}
		if _, err := svc.StartExport(ctx, testUser); !errors.Is(err, privacy.ErrErased) {
			t.Errorf("StartExport after the erasure = %v, want ErrErased", err)
		}
	})
	t.Run("overlapping erasure", func(t *testing.T) {
		w := newWorld(t)
		g := &gatedExport{MemoryStore: privacy.NewMemoryStore("files"), entered: make(chan struct{}), gate: make(chan struct{})}
		g.Add(testUser, privacy.Record{Category: "files", Data: map[string]any{"name": "cv.pdf"}})
		svc := w.service(privacy.WithStores(g))
		ctx := context.Background()
		var buf bytes.Buffer
		exported := make(chan error, 1)
		go func() { exported <- svc.Export(ctx, testUser, &buf) }()
		<-g.entered
		erased := make(chan error, 1)
		go func() { _, err := svc.Erase(ctx, testUser); erased <- err }()
		if err := <-erased; err != nil {
			t.Fatalf("Erase: %v", err)
		}
		close(g.gate)
		err := <-exported
		if !errors.Is(err, privacy.ErrFenced) {
			t.Errorf("Export overlapping an erasure = %v, want ErrFenced", err)
		}
		if bytes.Contains(buf.Bytes(), []byte(`"complete":true`)) {
			t.Errorf("the overlapping export claims to be complete: %s", buf.Bytes())
		}
	})
}
