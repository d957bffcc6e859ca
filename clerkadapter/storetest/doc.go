// Package storetest holds the conformance suites every
// clerkadapter.ReplayStore and clerkadapter.InvalidationLog must pass:
// the two ports through which several processes share the webhook
// handler's replay protection and the live-role cache's invalidations.
// A store runs them in a few lines:
//
//	func TestReplayStore(t *testing.T) {
//		storetest.RunReplayConformance(t, func(t *testing.T) storetest.ReplayHarness {
//			return storetest.ReplayHarness{Store: newStore(t), TTL: 300 * time.Millisecond, Wait: time.Sleep}
//		})
//	}
//
// A harness may give a Peer: a second handle on the same storage, as
// another process opens it (a second connection pool to one database);
// the cases about several processes then record through one handle and
// read or race through the other. Each case is named by the rule it
// checks. The suites' own tests run them on deliberately broken stores,
// each of which they must report by the rule it breaks.
//
// # Errors
//
// The suites report failures through the *testing.T they are given; an
// error from a store where none is expected fails the case that met it.
// They expect an error, of any kind, for the arguments the ports refuse
// (an empty ID, a ttl or keep that is not positive).
package storetest
