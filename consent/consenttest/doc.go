// Package consenttest is the conformance suite every consent.Store (and
// consent.Outbox) must pass. Run it on your own store in three lines:
//
//	func TestConformance(t *testing.T) {
//		consenttest.RunConformance(t, func(t *testing.T) consent.Store { return newStore(t) })
//	}
//
// Each case is named by the rule it checks, so a failure reads as the
// rule the store broke. Outbox cases run when the store also implements
// consent.Outbox. The suite's own tests run it on deliberately broken
// stores, each of which it must report by the rule it breaks.
//
// # Errors
//
// The suite reports failures through the *testing.T it is given; a
// store's error where none is expected fails the case that met it.
package consenttest
