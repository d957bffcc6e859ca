package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/retentiontest"
)

type memHarness struct{ t *retention.MemoryTarget }

func (h memHarness) Target() retention.Target { return h.t }
func (h memHarness) Add(_ context.Context, subject string, at time.Time) error {
	h.t.Add(retention.Row{Subject: subject, Time: at, Data: map[string]any{"event": "login"}})
	return nil
}

func TestMemoryTargetConformance(t *testing.T) {
	retentiontest.RunTargetConformance(t, func(t *testing.T) retentiontest.TargetHarness {
		return memHarness{&retention.MemoryTarget{}}
	})
}

func TestMemoryHoldsConformance(t *testing.T) {
	retentiontest.RunHoldStoreConformance(t, func(t *testing.T) retention.HoldStore { return retention.NewMemoryHolds() })
}

func TestCheckerReportsHoldsToPrivacy(t *testing.T) {
	ctx := context.Background()
	holds := &retention.MemoryHolds{}
	if err := holds.Place(ctx, retention.Hold{UserID: "user_a", Reason: "litigation 2026-17", PlacedBy: "user_counsel", PlacedAt: t0()}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Held   bool
		Reason string
		Err    bool
	}
	for _, tt := range []struct {
		name    string
		checker retention.Checker
		user    string
		want    result
	}{
		{"a held user is held, with the hold's reason", retention.Checker{Holds: holds}, "user_a", result{true, "litigation 2026-17", false}},
		{"a user without a hold is not held", retention.Checker{Holds: holds}, "user_b", result{}},
		{"a checker without a store fails rather than let erasure through", retention.Checker{}, "user_a", result{Err: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held, reason, err := tt.checker.Held(ctx, tt.user)
			if diff := cmp.Diff(tt.want, result{held, reason, err != nil}); diff != "" {
				t.Errorf("Held (-want +got):\n%s", diff)
			}
		})
	}
}

func t0() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

func TestNewMemoryTargetHoldsItsRows(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := []retention.Row{{Subject: "user_a", Time: at}, {Time: at.Add(time.Hour)}}
	if diff := cmp.Diff(rows, retention.NewMemoryTarget(rows...).Rows()); diff != "" {
		t.Errorf("NewMemoryTarget(rows...).Rows() (-want +got):\n%s", diff)
	}
}
