package useradmin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/useradmin"
)

// downAudit is an audit logger whose sink is down, failing closed.
type downAudit struct{}

func (downAudit) Log(context.Context, audit.Event) error {
	return audit.ErrNotRecorded
}

// TestAuditSinkDownRefusesChanges: role changes, bans and locks do not
// take effect when their audit record cannot be written.
func TestAuditSinkDownRefusesChanges(t *testing.T) {
	ctx := context.Background()
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := mk(t)
			m, err := useradmin.New(b.idp, rbac.Default(), useradmin.WithAudit(downAudit{}))
			if err != nil {
				t.Fatal(err)
			}
			actor := principalOf(t, m, b.idp, b.admin)
			changes := map[string]func() error{
				"assign role": func() error { _, err := m.AssignRole(ctx, actor, b.plain, "admin"); return err },
				"ban":         func() error { return m.SetBanned(ctx, actor, b.plain, true) },
				"lock":        func() error { return m.SetLocked(ctx, actor, b.plain, true) },
			}
			for what, change := range changes {
				if err := change(); !errors.Is(err, useradmin.ErrNotAudited) {
					t.Errorf("%s with the audit sink down = %v, want ErrNotAudited", what, err)
				}
			}
			u, err := b.idp.GetUser(ctx, b.plain)
			if err != nil {
				t.Fatal(err)
			}
			if u.PublicMetadata["role"] == "admin" || u.Banned || u.Locked {
				t.Errorf("a change took effect without its audit record: role %v, banned %v, locked %v", u.PublicMetadata["role"], u.Banned, u.Locked)
			}
		})
	}
}

// TestReadingARoleIsAudited: an administrator reading a user's data
// writes data_access.
func TestReadingARoleIsAudited(t *testing.T) {
	b := backends(t)["memory"](t)
	m, sink := newManager(t, b)
	actor := principalOf(t, m, b.idp, b.admin)
	req := httptest.NewRequest(http.MethodGet, "/users/"+b.plain+"/role", nil)
	req = req.WithContext(rbac.WithPrincipal(req.Context(), actor))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET role: %d", rec.Code)
	}
	evs := sink.Snapshot()
	if len(evs) != 1 || evs[0].Type != audit.DataAccess || evs[0].Subject == b.plain {
		t.Errorf("events %+v; want one pseudonymous data_access", evs)
	}
}
