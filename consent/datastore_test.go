package consent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
)

func TestKeepProofLeavesPseudonymisedMinimalRecords(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{PolicyVersion: 3, Source: "banner"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Hour)
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Marketing: false}, consent.Meta{PolicyVersion: 3, Source: "support", Actor: "user_operator"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Hour)
	if _, err := w.m.Update(ctx, "user_alice", map[consent.Purpose]bool{consent.Analytics: true}, consent.Meta{PolicyVersion: 3, Actor: "system:import"}); err != nil {
		t.Fatal(err)
	}
	p := w.log.Pseudonymizer()
	ds := w.m.DataStore(consent.KeepProof(p))
	erased, err := ds.Erase(ctx, "user_alice")
	if err != nil || erased.Count != 3 {
		t.Fatalf("Erase = %+v, %v; want 3", erased, err)
	}
	for r, err := range ds.Export(ctx, "user_alice") {
		t.Errorf("Export after erasure yielded %+v, %v", r, err)
	}
	subject := p.Pseudonym("user_alice")
	want := []consent.Record{
		{UserID: subject, Purpose: consent.Marketing, Granted: true, PolicyVersion: 3, Source: "banner", Actor: subject, Time: t0},
		{UserID: subject, Purpose: consent.Marketing, Granted: false, PolicyVersion: 3, Source: "support", Actor: p.Pseudonym("user_operator"), Time: t0.Add(time.Hour)},
		{UserID: subject, Purpose: consent.Analytics, Granted: true, PolicyVersion: 3, Source: "api", Actor: "system:import", Time: t0.Add(2 * time.Hour)},
	}
	var got []consent.Record
	for r, err := range w.store.History(ctx, subject) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(consent.Record{}, "Seq")); diff != "" {
		t.Errorf("proof kept under the pseudonym (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if strings.Contains(r.UserID+r.Actor, "user_alice") || strings.Contains(r.Actor, "user_operator") {
			t.Errorf("proof holds a raw ID: %+v", r)
		}
	}
	// The proof still demonstrates the state at a past time.
	st, err := w.store.At(ctx, subject, t0.Add(30*time.Minute))
	if err != nil || !st[consent.Marketing].Granted {
		t.Errorf("At(proof, +30m) marketing = %+v, %v; want granted", st[consent.Marketing], err)
	}
	if again, err := ds.Erase(ctx, "user_alice"); err != nil || again.Count != 0 {
		t.Errorf("a second Erase = %+v, %v; want 0", again, err)
	}
}

func TestConsentDataStoreConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(w *world) []consent.DataStoreOption
	}{
		{"delete", func(*world) []consent.DataStoreOption { return nil }},
		{"keep proof", func(w *world) []consent.DataStoreOption {
			return []consent.DataStoreOption{consent.KeepProof(w.log.Pseudonymizer())}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privacytest.RunDataStoreConformance(t, func(_ context.Context, t *testing.T) (privacytest.DataStoreHarness, error) {
				w := newWorld(t)
				return &dsHarness{w: w, ds: w.m.DataStore(tc.opts(w)...)}, nil
			})
		})
	}
}

type dsHarness struct {
	w  *world
	ds privacy.DataStore
}

func (h *dsHarness) Store() privacy.DataStore { return h.ds }
func (h *dsHarness) Capabilities() privacytest.DataStoreCapabilities {
	return privacytest.DataStoreCapabilities{Ordered: true, ExactCount: true}
}
func (h *dsHarness) Close() {}
func (h *dsHarness) Seed(ctx context.Context, userID string) ([]privacy.Record, error) {
	if _, err := h.w.m.Update(ctx, userID, map[consent.Purpose]bool{consent.Marketing: true, consent.Analytics: false}, consent.Meta{PolicyVersion: 2, Source: "banner"}); err != nil {
		return nil, err
	}
	at := h.w.clock.Now().UTC().Format(time.RFC3339Nano)
	rec := func(p consent.Purpose, granted bool) privacy.Record {
		return privacy.Record{Category: "consent." + string(p), Data: map[string]any{
			"purpose": string(p), "granted": granted, "policyVersion": 2, "source": "banner", "recordedBy": "you", "time": at}}
	}
	return []privacy.Record{rec(consent.Analytics, false), rec(consent.Marketing, true)}, nil
}
