// Package privacytest holds conformance suites for the ports of package
// privacy, in the style of go-cloud's drivertest: an ordinary importable
// package that any implementation runs from its own tests in a few lines.
//
// RunDataStoreConformance checks a privacy.DataStore:
//
//	func TestDataStoreConformance(t *testing.T) {
//		privacytest.RunDataStoreConformance(t, func(ctx context.Context, t *testing.T) (privacytest.DataStoreHarness, error) {
//			return &myHarness{db: openTestDB(t)}, nil
//		})
//	}
//
// The harness hands the suite the store under test and seeds data for
// the users the suite invents; DataStoreCapabilities declares guarantees
// beyond the port (record order, exact erase counts) so that the suite
// checks them too.
//
// Every case is a subtest named by the rule it checks, such as "Erase is
// idempotent: a second Erase reports zero and no error", so a failure
// reads as the rule the implementation broke. The suites' own tests run
// them on deliberately broken stores, each of which they must report.
//
// FaultyStore wraps any DataStore to inject faults into code that uses
// it: fail the next n calls (FailNext, FailNextExport, FailNextErase),
// fail every Export after n records (FailAfter), or slow every call down
// (Delay), honouring the caller's context. Without faults it forwards
// every call unchanged.
//
// # Errors
//
// The suites report failures through the *testing.T they are given; an
// error from a harness or maker fails the case that needed it.
// FaultyStore injects the error it is given, or ErrInjected, and the
// context's error when a delay outlasts the context.
package privacytest
