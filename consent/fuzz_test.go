package consent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/rbac"
)

// FuzzHandlerPUT feeds arbitrary bodies to PUT: the answer is always 200
// or 400 with a JSON body, and a 200 only follows a JSON object whose keys
// are all known and whose purpose values are booleans.
func FuzzHandlerPUT(f *testing.F) {
	for _, seed := range []string{
		`{"marketing":true}`, `{"thirdParty":false,"third_party":true}`, `{"analytics":null}`,
		`{"marketing":true,"policyVersion":2,"source":"banner"}`, `{"policyVersion":-1,"marketing":true}`,
		`{"newsletter":true}`, `[]`, `{`, ``, `{"marketing":"true"}`, `{"updatedAt":"x","analytics":true}`,
	} {
		f.Add(seed)
	}
	w := newWorld(f)
	h := w.m.Handler()
	known := map[string]bool{"marketing": true, "analytics": true, "thirdParty": true, "third_party": true}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPut, "/consent", strings.NewReader(body))
		req = req.WithContext(rbac.WithPrincipal(req.Context(), rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("status %d with a body that is not a JSON object: %q", rec.Code, rec.Body)
		}
		switch rec.Code {
		case http.StatusBadRequest:
			if _, ok := answer["error"]; !ok {
				t.Fatalf("400 without an error: %v", answer)
			}
		case http.StatusOK:
			var sent map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &sent); err != nil {
				t.Fatalf("200 for a body that is not a JSON object: %q", body)
			}
			for k, v := range sent {
				if !known[k] {
					continue // policyVersion, source, updatedAt: checked by the handler's own rules
				}
				var b bool
				if string(v) == "null" || json.Unmarshal(v, &b) != nil {
					t.Fatalf("200 although %q is %s, not a boolean", k, v)
				}
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
