package consent_test

import (
	"testing"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/consent/consenttest"
)

func TestMemoryStoreConformance(t *testing.T) {
	consenttest.RunConformance(t, func(t *testing.T) consent.Store { return consent.NewMemoryStore() })
}
