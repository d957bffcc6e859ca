package privacy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

func TestRequestsFindsAUsersFinishedRequestsByPseudonym(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithBlobWriter(privacy.NewMemoryBlobs()))
	ctx := context.Background()
	// A completed export (pseudonymous), an open erasure, and another
	// user's export.
	exp, err := svc.StartExport(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(ctx); err != nil { // waits for the export
		t.Fatal(err)
	}
	svc = w.service()
	w.clock.Advance(time.Minute)
	other, err := svc.QueueErasure(ctx, "user_other")
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Minute)
	erasure, err := svc.QueueErasure(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := svc.Request(ctx, exp); !r.Pseudonymous() || r.Status != privacy.StatusCompleted {
		t.Fatalf("the export is %s, pseudonymous %v; want completed and pseudonymous", r.Status, r.Pseudonymous())
	}
	list := func(f privacy.RequestFilter) []string {
		var ids []string
		for r, err := range svc.Requests(ctx, f) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		return ids
	}
	tests := []struct {
		name string
		f    privacy.RequestFilter
		want []string
	}{
		{"a user's requests, finished and open, in order", privacy.RequestFilter{UserID: testUser}, []string{exp, erasure}},
		{"Limit applies to the merge", privacy.RequestFilter{UserID: testUser, Limit: 1}, []string{exp}},
		{"After applies to the merge", privacy.RequestFilter{UserID: testUser, After: privacy.Cursor{ReceivedAt: t0, ID: exp}}, []string{erasure}},
		{"other filters apply", privacy.RequestFilter{UserID: testUser, Kind: privacy.KindExport}, []string{exp}},
		{"without a user, the store's List", privacy.RequestFilter{}, []string{exp, other, erasure}},
		{"another user's", privacy.RequestFilter{UserID: "user_other"}, []string{other}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.f)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCategories(t *testing.T) {
	w := newWorld(t)
	svc := w.service(privacy.WithAuthorizer(rbac.Default()))
	ctx := context.Background()
	got, err := svc.Categories(rbac.WithPrincipal(ctx, rbac.Principal{UserID: testUser, Role: rbac.RoleUser}), testUser)
	if err != nil {
		t.Fatal(err)
	}
	want := []privacy.Category{
		{Store: "identity", Name: "account", Records: 1},
		{Store: "orders", Name: "orders", Records: 2},
		{Store: "orders", Name: "activityLog", Records: 1},
		{Store: "preferences", Name: "preferences", Records: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Categories (-want +got):\n%s", diff)
	}
	if n := len(w.events()); n != 0 {
		t.Errorf("a user reading their own categories wrote %d audit events, want 0", n)
	}

	admin := rbac.WithPrincipal(ctx, rbac.Principal{UserID: "user_admin", Role: rbac.RoleAdmin, EmailVerified: true})
	if _, err := svc.Categories(admin, testUser); err != nil {
		t.Fatal(err)
	}
	evs := w.events()
	if len(evs) != 1 || evs[0].Type != audit.DataAccess || evs[0].Details["what"] != "categories" {
		t.Errorf("an administrator's look wrote %+v, want one data_access event for categories", evs)
	}

	if got, err := svc.Categories(ctx, "user_nobody"); err != nil || len(got) != 0 {
		t.Errorf("Categories of an unknown user = %v, %v; want nothing", got, err)
	}
	if _, err := svc.Erase(ctx, testUser); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Categories(ctx, testUser); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("Categories of an erased user: %v, want ErrErased", err)
	}
}
