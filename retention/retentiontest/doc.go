// Package retentiontest holds the conformance suites every
// retention.Target and retention.HoldStore must pass. A store runs them in
// three lines:
//
//	func TestHolds(t *testing.T) {
//		retentiontest.RunHoldStoreConformance(t, func(t *testing.T) retention.HoldStore { return newHolds(t) })
//	}
//
// Each case is named by the rule it checks. NoticeStore cases run within
// the hold store's when it also implements retention.NoticeStore (or on
// their own with RunNoticeStoreConformance); anonymisation cases when the
// target implements retention.Anonymiser. The suites' own tests run them
// on deliberately broken targets and hold stores, each of which they must
// report by the rule it breaks.
//
// # Errors
//
// The suites report failures through the *testing.T they are given; an
// error from a target, a hold store or a harness where none is expected
// fails the case that met it.
package retentiontest
