// Package leasetest is the conformance suite every steward.Leaser must
// pass. A Leaser of one's own runs it in a few lines:
//
//	func TestLeases(t *testing.T) {
//		leasetest.Run(t, func(t *testing.T) leasetest.Harness {
//			return leasetest.Harness{Leaser: newMyLeaser(t), TTL: 300 * time.Millisecond, Wait: time.Sleep}
//		})
//	}
//
// Each case states the rule it checks, so a failure reads as the rule the
// Leaser broke. The suite needs no clock of its own: it waits for leases
// to expire with Harness.Wait, which a Leaser on a fake clock implements
// by advancing it and one on a database's clock by sleeping.
package leasetest
