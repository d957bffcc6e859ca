// Package consenttest is the conformance suite every consent.Store (and
// consent.Outbox) must pass. Run it on your own store in three lines:
//
//	func TestConformance(t *testing.T) {
//		consenttest.RunConformance(t, func(t *testing.T) consent.Store { return newStore(t) })
//	}
//
// Each case is named by the rule it checks, so a failure reads as the
// rule the store broke. Outbox cases, the claim rules among them, run
// when the store also implements consent.Outbox; they wait for claims to
// expire on the store's clock by sleeping, a few tenths of a second each.
// The suite's own tests run it on deliberately broken stores, each of
// which it must report by the rule it breaks.
//
// A store meant for several processes also runs RunInstances, which
// drives two Managers, each over its own handle on one store, as two
// processes sharing a database would:
//
//	consenttest.RunInstances(t, func(t *testing.T) (consent.Store, consent.Store) {
//		db := newDatabase(t)
//		return openStore(t, db), openStore(t, db)
//	})
//
// # Errors
//
// The suite reports failures through the *testing.T it is given; a
// store's error where none is expected fails the case that met it.
package consenttest
