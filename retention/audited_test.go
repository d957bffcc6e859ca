package retention_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
)

type downLog struct{}

func (downLog) Log(context.Context, audit.Event) error { return audit.ErrNotRecorded }

// TestHoldsArePlacedAndReleasedAudited: each placement and release
// writes a legal_hold event first; with the sink down nothing changes.
func TestHoldsArePlacedAndReleasedAudited(t *testing.T) {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	log, err := audit.NewLogger(sink, audit.WithKey("k1", []byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	store := &retention.MemoryHolds{}
	holds := retention.AuditedHolds{Holds: store, Audit: log}
	h := retention.Hold{UserID: "user_held", Reason: "litigation L-17", PlacedBy: "user_counsel", PlacedAt: now}
	if err := holds.Place(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := holds.Release(rbac.WithPrincipal(ctx, rbac.Principal{UserID: "user_counsel"}), "user_held"); err != nil {
		t.Fatal(err)
	}
	if err := holds.Release(ctx, "user_held"); err != nil { // none left: no event
		t.Fatal(err)
	}
	var got []any
	for _, e := range sink.Snapshot() {
		if e.Type != retention.LegalHoldEvent || e.Subject == "user_held" || e.Actor == "user_counsel" {
			t.Errorf("event %+v; want a pseudonymous legal_hold", e)
		}
		got = append(got, e.Details["action"])
	}
	if diff := cmp.Diff([]any{"place", "release"}, got); diff != "" {
		t.Errorf("legal_hold actions (-want +got):\n%s", diff)
	}

	down := retention.AuditedHolds{Holds: store, Audit: downLog{}}
	if err := down.Place(ctx, h); err == nil {
		t.Error("Place with the audit sink down succeeded")
	}
	if _, ok, _ := store.Get(ctx, "user_held"); ok {
		t.Error("a hold was placed without its audit record")
	}
	if err := holds.Place(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := down.Release(ctx, "user_held"); err == nil {
		t.Error("Release with the audit sink down succeeded")
	}
	if _, ok, _ := store.Get(ctx, "user_held"); !ok {
		t.Error("a hold was released without its audit record")
	}
}

// TestRequestsPolicyPurgesFinishedRequests: the retention engine removes
// privacy requests past their proof period, keeping the ledger.
func TestRequestsPolicyPurgesFinishedRequests(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: now}
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_gone"})
	reqs := privacy.NewMemoryRequestStore()
	svc, err := privacy.NewService(idp, privacy.WithRequestStore(reqs), privacy.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Erase(ctx, "user_gone")
	if err != nil {
		t.Fatal(err)
	}
	target, err := svc.FinishedRequests()
	if err != nil {
		t.Fatal(err)
	}
	policy := retention.RequestsPolicy(target, 0)
	if policy.MaxAge != privacy.DefaultProofPeriod {
		t.Errorf("default proof period %v, want %v", policy.MaxAge, privacy.DefaultProofPeriod)
	}
	engine, err := retention.NewEngine([]retention.Policy{policy}, retention.WithNow(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Run(ctx, retention.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Request(ctx, res.RequestID); err != nil {
		t.Errorf("a request inside its proof period was purged: %v", err)
	}
	clk.Add(privacy.DefaultProofPeriod + day)
	if _, err := engine.Run(ctx, retention.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Request(ctx, res.RequestID); !errors.Is(err, privacy.ErrRequestNotFound) {
		t.Errorf("a request past its proof period: %v; want purged", err)
	}
	if err := svc.CheckFence(ctx, "user_gone"); !errors.Is(err, privacy.ErrErased) {
		t.Errorf("the ledger went with the requests: %v", err)
	}
}
