package consent

import (
	"context"
	"iter"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// DataStore returns the user's consent history as a privacy.DataStore
// named "consent", so it appears in data exports (one category per
// purpose, "consent.<purpose>", each record a decision in the order made)
// and is erased with the user.
//
// Erasure deletes every record. A controller that must keep proof of
// consent after erasure (for instance to defend a marketing complaint
// within a limitation period) can rely on the consent_change audit
// events instead: they are keyed pseudonyms, carry what changed and when,
// and are no longer linkable to the person once the pseudonymisation key
// is retired.
func (m *Manager) DataStore() privacy.DataStore { return historyStore{m} }

type historyStore struct{ m *Manager }

var _ privacy.DataStore = historyStore{}

func (historyStore) Name() string { return "consent" }

func (h historyStore) Export(ctx context.Context, userID string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		if err := steward.ValidateUserID(userID); err != nil {
			yield(privacy.Record{}, err)
			return
		}
		for r, err := range h.m.store.History(ctx, userID) {
			if err != nil {
				yield(privacy.Record{}, err)
				return
			}
			recordedBy := "you"
			if r.Actor != "" && r.Actor != userID {
				recordedBy = "operator" // never another person's ID in an export
			}
			if !yield(privacy.Record{Category: "consent." + string(r.Purpose), Data: map[string]any{
				"purpose":       string(r.Purpose),
				"granted":       r.Granted,
				"policyVersion": r.PolicyVersion,
				"source":        r.Source,
				"recordedBy":    recordedBy,
				"time":          r.Time.UTC().Format(time.RFC3339Nano),
			}}, nil) {
				return
			}
		}
	}
}

func (h historyStore) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return privacy.Erased{}, err
	}
	n, err := h.m.store.Erase(ctx, userID)
	return privacy.Erased{Count: n}, err
}
