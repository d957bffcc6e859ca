package consent_test

import (
	"testing"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/consent/consenttest"
)

func TestMemoryStoreConformance(t *testing.T) {
	consenttest.RunConformance(t, func(t *testing.T) consent.Store { return consent.NewMemoryStore() })
}

// Two Managers in one process may share a MemoryStore: its claims hold
// between them.
func TestMemoryStoreInstances(t *testing.T) {
	consenttest.RunInstances(t, func(t *testing.T) (consent.Store, consent.Store) {
		s := consent.NewMemoryStore()
		return s, s
	})
}
