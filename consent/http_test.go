package consent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/rbac"
)

func TestHandler(t *testing.T) {
	w := newWorld(t)
	h := w.m.Handler()
	alice := &rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser, EmailVerified: true}
	tests := []struct {
		name       string
		method     string
		body       string
		principal  *rbac.Principal
		wantStatus int
		wantBody   map[string]any
	}{
		{"GET without a principal is 401", http.MethodGet, "", nil,
			http.StatusUnauthorized, map[string]any{"error": "Unauthorized"}},
		{"PUT without a principal is 401", http.MethodPut, `{"marketing":true}`, nil,
			http.StatusUnauthorized, map[string]any{"error": "Unauthorized"}},
		{"GET before any decision shows nothing granted", http.MethodGet, "", alice,
			http.StatusOK, map[string]any{"marketing": false, "analytics": false, "thirdParty": false, "updatedAt": nil}},
		{"PUT changes the named purposes", http.MethodPut, `{"marketing":true,"thirdParty":true,"source":"banner","policyVersion":1}`, alice,
			http.StatusOK, map[string]any{"marketing": true, "analytics": false, "thirdParty": true, "updatedAt": "2026-03-01T12:00:00Z"}},
		{"PUT accepts the purpose name too", http.MethodPut, `{"third_party":false}`, alice,
			http.StatusOK, map[string]any{"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}},
		{"GET shows the current state", http.MethodGet, "", alice,
			http.StatusOK, map[string]any{"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}},
		{"PUT of an unknown purpose is 400 naming it", http.MethodPut, `{"marketing":true,"newsletter":true}`, alice,
			http.StatusBadRequest, map[string]any{"error": `unknown purpose "newsletter"`}},
		{"PUT of a non-boolean is 400 naming the purpose", http.MethodPut, `{"analytics":"yes"}`, alice,
			http.StatusBadRequest, map[string]any{"error": `purpose "analytics" must be true or false, not "yes"`}},
		{"PUT of null for a purpose is 400, not a withdrawal", http.MethodPut, `{"marketing":null}`, alice,
			http.StatusBadRequest, map[string]any{"error": `purpose "marketing" must be true or false, not null`}},
		{"PUT of a fractional policy version is 400", http.MethodPut, `{"marketing":true,"policyVersion":1.5}`, alice,
			http.StatusBadRequest, map[string]any{"error": "policyVersion must be a non-negative integer"}},
		{"PUT of a non-string source is 400", http.MethodPut, `{"marketing":true,"source":null}`, alice,
			http.StatusBadRequest, map[string]any{"error": "source must be a string"}},
		{"PUT of an overlong source is 400 naming it", http.MethodPut, `{"marketing":true,"source":"` + strings.Repeat("x", 65) + `"}`, alice,
			http.StatusBadRequest, map[string]any{"error": "invalid record: Source is 65 bytes long (max 64)"}},
		{"PUT of a non-object is 400", http.MethodPut, `[true]`, alice,
			http.StatusBadRequest, nil},
		{"PUT with no purpose is 400", http.MethodPut, `{"source":"banner"}`, alice,
			http.StatusBadRequest, map[string]any{"error": "no purposes to change"}},
		{"DELETE is 405", http.MethodDelete, "", alice,
			http.StatusMethodNotAllowed, map[string]any{"error": "Method not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/api/user/consent", strings.NewReader(tt.body))
			if tt.principal != nil {
				req = req.WithContext(rbac.WithPrincipal(req.Context(), *tt.principal))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tt.wantBody == nil {
				if _, ok := got["error"]; !ok {
					t.Errorf("body %v has no error", got)
				}
				return
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if ok, _ := w.m.Allowed(context.Background(), "user_alice", "marketing"); !ok {
		t.Error("the PUT did not reach the store")
	}
}
