package privacy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/rbac"
)

// roleAuthz allows admin:users to role "admin".
type roleAuthz struct{}

func (roleAuthz) Allowed(p rbac.Principal, perm rbac.Permission) bool {
	return p.Role == "admin" && perm == privacy.AdminPermission
}

var (
	self  = &rbac.Principal{UserID: testUser, Role: "user", EmailVerified: true}
	other = &rbac.Principal{UserID: "user_someoneelse", Role: "user", EmailVerified: true}
	admin = &rbac.Principal{UserID: "user_admin1", Role: "admin", EmailVerified: true}
)

// response is what a test compares: status, chosen headers, JSON body.
type response struct {
	Status  int
	Headers map[string]string
	Body    any
}

// serve runs h on one request and returns the response with the named
// headers and the body decoded as generic JSON.
func serve(t *testing.T, h http.Handler, method, target string, p *rbac.Principal, header map[string]string, keep ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if p != nil {
		req = req.WithContext(rbac.WithPrincipal(req.Context(), *p))
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{Status: rec.Code, Headers: map[string]string{}}
	for _, k := range keep {
		res.Headers[k] = rec.Header().Get(k)
	}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.Body); err != nil {
			t.Fatalf("body is not JSON: %v\n%s", err, rec.Body.Bytes())
		}
	}
	return res
}

// obj is a JSON object in a want.
type obj = map[string]any

// deleted builds the JSON of a DeletionResult.
func deleted(success bool, id string, from []any, errs []any, erased obj) obj {
	return obj{"success": success, "deletedFrom": from, "errors": errs, "requestId": id, "erased": erased}
}

// erasedAll is "erased" of a complete erasure of the test user.
var erasedAll = obj{"orders": 3.0, "preferences": 1.0, "identity": 1.0, "email": 0.0}

func TestDeleteHandler(t *testing.T) {
	confirm := map[string]string{"X-Confirm-Delete": "true"}
	tests := []struct {
		name   string
		setup  func(w *world) []privacy.Option
		method string
		target string
		p      *rbac.Principal
		header map[string]string
		want   func(reqID string) response
	}{
		{
			name: "no principal: 401", method: "DELETE", target: "/api/user/delete", header: confirm,
			want: func(string) response { return response{401, nil, obj{"error": "Unauthorized"}} },
		},
		{
			name: "no confirmation header: 400", method: "DELETE", target: "/api/user/delete", p: self,
			want: func(string) response {
				return response{400, nil, obj{"error": "Confirmation required", "requiresHeader": "X-Confirm-Delete: true"}}
			},
		},
		{
			name: "confirmation header not true: 400", method: "DELETE", target: "/api/user/delete", p: self,
			header: map[string]string{"X-Confirm-Delete": "yes"},
			want: func(string) response {
				return response{400, nil, obj{"error": "Confirmation required", "requiresHeader": "X-Confirm-Delete: true"}}
			},
		},
		{
			name: "another user without admin:users: 403", method: "DELETE", target: "/api/user/delete?userId=" + testUser,
			p: other, header: confirm,
			want: func(string) response { return response{403, nil, obj{"error": "Forbidden"}} },
		},
		{
			name: "malformed userId as admin: 400", method: "DELETE", target: "/api/user/delete?userId=a%2Fb",
			p: admin, header: confirm,
			want: func(string) response {
				return response{400, nil, obj{"error": "Invalid user ID", "code": "invalid_user_id"}}
			},
		},
		{
			name: "wrong method: 405", method: "POST", target: "/api/user/delete", p: self, header: confirm,
			want: func(string) response {
				return response{405, map[string]string{"Allow": "DELETE"}, obj{"error": "Method not allowed"}}
			},
		},
		{
			name: "success: 200", method: "DELETE", target: "/api/user/delete", p: self, header: confirm,
			want: func(id string) response {
				return response{200, nil, obj{"message": "Account deleted successfully",
					"result": deleted(true, id, []any{"orders", "preferences", "identity", "email"}, []any{}, erasedAll)}}
			},
		},
		{
			name: "admin erases another user: 200", method: "DELETE", target: "/api/user/delete?userId=" + testUser,
			p: admin, header: confirm,
			want: func(id string) response {
				return response{200, nil, obj{"message": "Account deleted successfully",
					"result": deleted(true, id, []any{"orders", "preferences", "identity", "email"}, []any{}, erasedAll)}}
			},
		},
		{
			name: "partial deletion: 500", method: "DELETE", target: "/api/user/delete", p: self, header: confirm,
			setup: func(w *world) []privacy.Option {
				w.idp.failN, w.idp.err = -1, errors.New("clerk: 503 Service Unavailable")
				return nil
			},
			want: func(id string) response {
				// Stable codes with their sentences: never the provider's words.
				notAttempted := "not attempted: an earlier step failed"
				return response{500, nil, obj{"error": "Partial deletion", "details": deleted(false, id,
					[]any{"orders", "preferences"},
					[]any{
						obj{"step": "identity", "code": "identity_failed", "error": "deleting the account at the identity provider failed; the request is kept for a retry", "attempts": 3.0},
						obj{"step": "email", "code": "not_attempted", "error": notAttempted, "attempts": 0.0},
						obj{"step": "final_pass", "code": "not_attempted", "error": notAttempted, "attempts": 0.0},
						obj{"step": "ledger", "code": "not_attempted", "error": notAttempted, "attempts": 0.0},
					}, obj{"orders": 3.0, "preferences": 1.0})}}
			},
		},
		{
			name: "legal hold: 409", method: "DELETE", target: "/api/user/delete", p: self, header: confirm,
			setup: func(w *world) []privacy.Option {
				return []privacy.Option{privacy.WithHoldChecker(&holds{held: map[string]string{testUser: "tax audit"}})}
			},
			want: func(id string) response {
				// The hold's reason is never shown to the data subject.
				return response{409, nil, obj{"error": "Legal hold", "details": deleted(false, id, []any{},
					[]any{obj{"step": "legal_hold", "code": "legal_hold", "error": "the data is under a legal hold and was not erased", "attempts": 0.0}}, obj{})}}
			},
		},
		{
			name: "request store down: 500", method: "DELETE", target: "/api/user/delete", p: self, header: confirm,
			setup: func(w *world) []privacy.Option {
				return []privacy.Option{privacy.WithRequestStore(downRequests{})}
			},
			want: func(string) response {
				return response{500, nil, obj{"error": "Deletion failed", "code": "deletion_failed"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			var opts []privacy.Option
			if tt.setup != nil {
				opts = tt.setup(w)
			}
			svc := w.service(append([]privacy.Option{privacy.WithAuthorizer(roleAuthz{})}, opts...)...)
			want := tt.want("")
			keep := make([]string, 0, len(want.Headers))
			for k := range want.Headers {
				keep = append(keep, k)
			}
			got := serve(t, svc.DeleteHandler(), tt.method, tt.target, tt.p, tt.header, keep...)
			// The request ID is random: take it from the response.
			id := ""
			if b, ok := got.Body.(obj); ok {
				for _, k := range []string{"result", "details"} {
					if r, ok := b[k].(obj); ok {
						id, _ = r["requestId"].(string)
					}
				}
			}
			want = tt.want(id)
			if want.Headers == nil {
				want.Headers = map[string]string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// downRequests is a RequestStore whose database is unreachable.
type downRequests struct{}

var errDown = errors.New("dial tcp 10.0.0.5:5432: connection refused")

func (downRequests) Create(context.Context, privacy.Request) error { return errDown }
func (downRequests) Get(context.Context, string) (privacy.Request, error) {
	return privacy.Request{}, errDown
}
func (downRequests) Update(context.Context, privacy.Request) error { return errDown }
func (downRequests) List(context.Context, privacy.RequestFilter) iter.Seq2[privacy.Request, error] {
	return func(yield func(privacy.Request, error) bool) { yield(privacy.Request{}, errDown) }
}

func TestExportHandler(t *testing.T) {
	attachment := func(id string) map[string]string {
		return map[string]string{
			"Content-Type":        "application/json",
			"Content-Disposition": `attachment; filename="user-data-` + id + `.json"`,
			"Cache-Control":       "no-store",
		}
	}
	keep := []string{"Content-Type", "Content-Disposition", "Cache-Control"}
	noAttachment := map[string]string{"Content-Type": "application/json", "Content-Disposition": "", "Cache-Control": "no-store"}
	tests := []struct {
		name   string
		opts   []privacy.Option
		method string
		target string
		p      *rbac.Principal
		want   response
		// wantID is the identity.id of a 200 document.
		wantID string
	}{
		{name: "no principal: 401", target: "/api/user/data",
			want: response{401, noAttachment, obj{"error": "Unauthorized"}}},
		{name: "own data, streamed: 200 attachment", target: "/api/user/data", p: self,
			want: response{Status: 200, Headers: attachment(testUser)}, wantID: testUser},
		{name: "own data, buffered under the inline limits: 200 attachment", target: "/api/user/data", p: self,
			opts: []privacy.Option{privacy.WithBlobWriter(&memBlobs{})},
			want: response{Status: 200, Headers: attachment(testUser)}, wantID: testUser},
		{name: "HEAD: 200 attachment", method: "HEAD", target: "/api/user/data", p: self,
			want: response{Status: 200, Headers: attachment(testUser)}},
		{name: "another user without admin:users: 403", target: "/api/user/data?userId=" + testUser, p: other,
			want: response{403, noAttachment, obj{"error": "Forbidden"}}},
		{name: "another user as admin: 200 attachment named after that user", target: "/api/user/data?userId=" + testUser, p: admin,
			want: response{Status: 200, Headers: attachment(testUser)}, wantID: testUser},
		{name: "malformed userId as admin: 400", target: "/api/user/data?userId=%22%3E", p: admin,
			want: response{400, noAttachment, obj{"error": "Invalid user ID", "code": "invalid_user_id"}}},
		{name: "unknown user: 404", target: "/api/user/data?userId=user_nobody", p: admin,
			want: response{404, noAttachment, obj{"error": "User not found"}}},
		{name: "async without a BlobWriter: 501", target: "/api/user/data?async=1", p: self,
			want: response{501, noAttachment, obj{"error": "Queued exports are not configured"}}},
		{name: "wrong method: 405", method: "DELETE", target: "/api/user/data", p: self,
			want: response{405, noAttachment, obj{"error": "Method not allowed"}}},
		{name: "poll of an unknown request: 404", target: "/api/user/data?requestId=req_nope", p: self,
			want: response{404, noAttachment, obj{"error": "Request not found"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			svc := w.service(append([]privacy.Option{privacy.WithAuthorizer(roleAuthz{})}, tt.opts...)...)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, tt.target, nil)
			if tt.p != nil {
				req = req.WithContext(rbac.WithPrincipal(req.Context(), *tt.p))
			}
			rec := httptest.NewRecorder()
			svc.ExportHandler().ServeHTTP(rec, req)
			got := response{Status: rec.Code, Headers: map[string]string{}}
			for _, k := range keep {
				got.Headers[k] = rec.Header().Get(k)
			}
			if tt.wantID != "" {
				doc := decodeDoc(t, rec.Body.Bytes())
				if doc.Identity.ID != tt.wantID || !doc.Complete {
					t.Errorf("document for %q (complete %v); want %q", doc.Identity.ID, doc.Complete, tt.wantID)
				}
			} else if rec.Body.Len() > 0 {
				if err := json.Unmarshal(rec.Body.Bytes(), &got.Body); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExportHandlerQueues(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   []privacy.Option
		target string
	}{
		{"asked for with async=1", nil, "/api/user/data?async=1"},
		{"larger than the inline limit", []privacy.Option{privacy.WithInlineExportLimits(64, time.Minute)}, "/api/user/data"},
		{"slower than the inline limit", []privacy.Option{privacy.WithInlineExportLimits(1<<20, time.Millisecond), privacy.WithStores(slowStore())}, "/api/user/data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			blobs := &memBlobs{}
			done := make(chan privacy.Request, 1)
			opts := append([]privacy.Option{privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done}), privacy.WithAuthorizer(roleAuthz{})}, tt.opts...)
			svc := w.service(opts...)
			h := svc.ExportHandler()
			got := serve(t, h, "GET", tt.target, self, nil, "Content-Disposition")
			body, _ := got.Body.(obj)
			id, _ := body["requestId"].(string)
			want := response{202, map[string]string{"Content-Disposition": ""}, obj{"requestId": id, "status": "pending"}}
			if diff := cmp.Diff(want, got); diff != "" || !strings.HasPrefix(id, "req_") {
				t.Fatalf("response (-want +got):\n%s", diff)
			}
			<-done
			poll := serve(t, h, "GET", "/api/user/data?requestId="+id, self, nil)
			wantPoll := response{200, map[string]string{}, obj{"requestId": id, "status": "completed", "location": id + ".json",
				"expiresAt": t0.Add(privacy.DefaultExportTTL).Format(time.RFC3339)}}
			if diff := cmp.Diff(wantPoll, poll); diff != "" {
				t.Errorf("poll (-want +got):\n%s", diff)
			}
			if got := serve(t, h, "GET", "/api/user/data?requestId="+id, other, nil); got.Status != 404 {
				t.Errorf("another user polling: %d; want 404", got.Status)
			}
			if got := serve(t, h, "GET", "/api/user/data?requestId="+id, admin, nil); got.Status != 200 {
				t.Errorf("admin polling: %d; want 200", got.Status)
			}
			if b, ok := blobs.get(id + ".json"); !ok || decodeDoc(t, b).Identity.ID != testUser {
				t.Errorf("blob missing or wrong")
			}
		})
	}
}

// slowStore yields three records 5 ms apart, honouring ctx.
func slowStore() privacy.DataStore {
	m := privacy.NewMemoryStore("slow")
	for range 3 {
		m.Add(testUser, privacy.Record{Category: "slow", Data: map[string]any{}})
	}
	f := privacytest.NewFaultyStore(m)
	f.Delay(5 * time.Millisecond)
	return f
}

func TestExportHandlerStoreFailure(t *testing.T) {
	get := func(t *testing.T, after int) (*http.Response, []byte, error) {
		w := newWorld(t)
		svc := w.service(privacy.WithStores(brokenStore(after)))
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			svc.ExportHandler().ServeHTTP(rw, r.WithContext(rbac.WithPrincipal(r.Context(), *self)))
		}))
		t.Cleanup(srv.Close)
		res, err := http.Get(srv.URL)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	t.Run("before the first byte: 500", func(t *testing.T) {
		res, b, err := get(t, 10)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 500 || strings.TrimSpace(string(b)) != `{"error":"Export failed","code":"export_failed"}` || res.Header.Get("Content-Disposition") != "" {
			t.Errorf("got %d %q %s; want 500 Export failed without attachment", res.StatusCode, res.Header.Get("Content-Disposition"), b)
		}
	})
	t.Run("mid-stream: the response is cut", func(t *testing.T) {
		res, b, err := get(t, 50_000)
		if err == nil && json.Valid(b) {
			t.Errorf("a failed export reached the client as a valid document (status %d)", res.StatusCode)
		}
	})
}

var _ steward.IdentityProvider = (*countingIDP)(nil)
