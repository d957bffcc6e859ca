package consent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

func TestGPC(t *testing.T) {
	tests := []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{"1"}, true},
		{[]string{" 1 "}, true},
		{[]string{"0"}, false},
		{[]string{"true"}, false},
		{[]string{""}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, v := range tt.header {
			r.Header.Add(consent.GPCHeader, v)
		}
		if got := consent.GPC(r); got != tt.want {
			t.Errorf("GPC with Sec-GPC %q = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// thirdParty returns the user's ThirdParty records as "granted/source/version".
func thirdParty(t *testing.T, m *consent.Manager, userID string) []string {
	t.Helper()
	var out []string
	for r, err := range m.History(context.Background(), userID) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Purpose == consent.ThirdParty {
			out = append(out, fmt.Sprintf("%v/%s/v%d", r.Granted, r.Source, r.PolicyVersion))
		}
	}
	return out
}

func TestHonourGPCRecordsOneOptOutOfThirdParty(t *testing.T) {
	w := newWorld(t)
	var served int
	h := w.m.HonourGPC(func(r *http.Request, err error) { t.Errorf("onError: %v", err) })(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	alice := rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser, EmailVerified: true}
	send := func(gpc string, p *rbac.Principal) {
		r := httptest.NewRequest(http.MethodGet, "/privacy", nil)
		if gpc != "" {
			r.Header.Set(consent.GPCHeader, gpc)
		}
		if p != nil {
			r = r.WithContext(rbac.WithPrincipal(r.Context(), *p))
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	ctx := context.Background()
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"a request without the signal records nothing", func() { send("", &alice) }, nil},
		{"Sec-GPC: 0 is no signal", func() { send("0", &alice) }, nil},
		{"the signal without a principal records nothing", func() { send("1", nil) }, nil},
		{"the signal from an undecided user records a withdrawal, source gpc", func() { send("1", &alice) }, []string{"false/gpc/v0"}},
		{"the signal again records nothing more", func() { send("1", &alice); send("1", &alice) }, []string{"false/gpc/v0"}},
		{"a grant under policy 2 stands until the next signal", func() {
			if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.ThirdParty: true}, consent.Meta{PolicyVersion: 2, Source: "settings"}); err != nil {
				t.Fatal(err)
			}
		}, []string{"false/gpc/v0", "true/settings/v2"}},
		{"the next signal withdraws it under the grant's policy version", func() { send("1", &alice) }, []string{"false/gpc/v0", "true/settings/v2", "false/gpc/v2"}},
	}
	for _, st := range steps {
		st.do()
		if diff := cmp.Diff(st.want, thirdParty(t, w.m, "user_alice")); diff != "" {
			t.Errorf("%s: third_party records (-want +got):\n%s", st.name, diff)
		}
	}
	if served != 7 {
		t.Errorf("next served %d requests, want all 7", served)
	}
	if ok, err := w.m.Allowed(ctx, "user_alice", consent.ThirdParty); ok || err != nil {
		t.Errorf("Allowed(third_party) = %v, %v after the signal; want false", ok, err)
	}
	var gpcEvents int
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.ConsentChange && e.Details["source"] == consent.SourceGPC {
			gpcEvents++
		}
	}
	if gpcEvents != 2 {
		t.Errorf("%d consent_change events with source gpc, want 2 (one per recorded withdrawal)", gpcEvents)
	}
}

// refusingFence refuses every user with err.
type refusingFence struct{ err error }

func (f refusingFence) CheckFence(context.Context, string) error { return f.err }

func TestHonourGPCFailures(t *testing.T) {
	tests := []struct {
		name      string
		fence     error
		auditDown bool
		wantErr   bool
	}{
		{name: "a fenced user is served and nothing is reported", fence: fmt.Errorf("request req_1: %w", privacy.ErrFenced)},
		{name: "an audit sink that is down is reported and the request served", auditDown: true, wantErr: true},
		{name: "a fence that cannot answer is reported", fence: errors.New("store down"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []consent.Option
			if tt.fence != nil {
				opts = append(opts, consent.WithFence(refusingFence{tt.fence}))
			}
			if tt.auditDown {
				opts = append(opts, consent.WithAudit(failingAudit{}))
			}
			w := newWorld(t, opts...)
			var reported []error
			served := false
			h := w.m.HonourGPC(func(r *http.Request, err error) { reported = append(reported, err) })(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set(consent.GPCHeader, "1")
			r = r.WithContext(rbac.WithPrincipal(r.Context(), rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser}))
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !served {
				t.Error("the request was not served")
			}
			if got := len(reported) > 0; got != tt.wantErr {
				t.Errorf("reported %v; want an error: %v", reported, tt.wantErr)
			}
			if got := thirdParty(t, w.m, "user_alice"); len(got) != 0 {
				t.Errorf("records %v after a failure, want none", got)
			}
		})
	}
}

func TestHandlerHonoursGPC(t *testing.T) {
	w := newWorld(t)
	h := w.m.Handler()
	alice := rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser, EmailVerified: true}
	send := func(method, body string, gpc bool) (int, map[string]any) {
		r := httptest.NewRequest(method, "/api/user/consent", strings.NewReader(body))
		if gpc {
			r.Header.Set(consent.GPCHeader, "1")
		}
		r = r.WithContext(rbac.WithPrincipal(r.Context(), alice))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v in %s", method, err, rec.Body)
		}
		return rec.Code, got
	}
	steps := []struct {
		name       string
		method     string
		body       string
		gpc        bool
		wantStatus int
		wantThird  any
		wantRecs   []string
	}{
		{"a grant without the signal is recorded", http.MethodPut, `{"thirdParty":true}`, false, http.StatusOK, true,
			[]string{"true/api/v0"}},
		{"a GET with the signal withdraws third_party with source gpc", http.MethodGet, "", true, http.StatusOK, false,
			[]string{"true/api/v0", "false/gpc/v0"}},
		{"the signal again records nothing more", http.MethodGet, "", true, http.StatusOK, false,
			[]string{"true/api/v0", "false/gpc/v0"}},
		{"a PUT granting third_party under the signal keeps it withdrawn and records the rest", http.MethodPut,
			`{"thirdParty":true,"marketing":true}`, true, http.StatusOK, false, []string{"true/api/v0", "false/gpc/v0"}},
		{"a PUT granting only third_party under the signal changes nothing", http.MethodPut,
			`{"thirdParty":true}`, true, http.StatusOK, false, []string{"true/api/v0", "false/gpc/v0"}},
	}
	for _, st := range steps {
		code, got := send(st.method, st.body, st.gpc)
		if code != st.wantStatus || got["thirdParty"] != st.wantThird {
			t.Errorf("%s: status %d, thirdParty %v; want %d, %v (body %v)", st.name, code, got["thirdParty"], st.wantStatus, st.wantThird, got)
		}
		if diff := cmp.Diff(st.wantRecs, thirdParty(t, w.m, "user_alice")); diff != "" {
			t.Errorf("%s: third_party records (-want +got):\n%s", st.name, diff)
		}
	}
	if ok, err := w.m.Allowed(context.Background(), "user_alice", consent.Marketing); !ok || err != nil {
		t.Errorf("Allowed(marketing) = %v, %v; want the PUT under the signal to have granted it", ok, err)
	}
	var gpcEvents int
	for _, e := range w.sink.Snapshot() {
		if e.Type == audit.ConsentChange && e.Details["source"] == consent.SourceGPC {
			gpcEvents++
		}
	}
	if gpcEvents != 1 {
		t.Errorf("%d consent_change events with source gpc, want 1", gpcEvents)
	}
}

func TestHandlerGPCAuditDown(t *testing.T) {
	w := newWorld(t, consent.WithAudit(failingAudit{}))
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		r := httptest.NewRequest(method, "/api/user/consent", strings.NewReader(`{"marketing":true}`))
		r.Header.Set(consent.GPCHeader, "1")
		r = r.WithContext(rbac.WithPrincipal(r.Context(), rbac.Principal{UserID: "user_alice", Role: rbac.RoleUser}))
		rec := httptest.NewRecorder()
		w.m.Handler().ServeHTTP(rec, r)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%s with the signal and the audit sink down: status %d, want 500 (body %s)", method, rec.Code, rec.Body)
		}
	}
	if ok, _ := w.m.Allowed(context.Background(), "user_alice", consent.Marketing); ok {
		t.Error("a PUT whose opt-out could not be recorded granted marketing")
	}
}
