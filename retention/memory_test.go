package retention_test

import (
	"context"
	"testing"
	"time"

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
	retentiontest.RunHoldStoreConformance(t, func(t *testing.T) retention.HoldStore { return &retention.MemoryHolds{} })
}
