// Package audittest is the conformance suite for audit.Sink and
// audit.Reader implementations. Run it from a test of your sink:
//
//	func TestConformance(t *testing.T) {
//		audittest.RunConformance(t, func(t *testing.T) audit.Sink { return newEmptySink(t) })
//	}
//
// Every case is a subtest named by the rule it checks, so a failure reads
// as the rule broken. Sinks that are also an audit.Reader (they keep their
// events) are checked for ordering, atomicity, duplicates and round trips;
// write-only sinks (log lines, HTTP) only for what the Sink contract asks
// of them all. Sinks that are also an audit.Appender are checked for
// linking: several Loggers appending at once form one chain, and an event
// whose ID the caller chose is stored once. The suite's own tests run it
// on deliberately broken sinks, each of which it must report by the rule
// it breaks.
//
// RunCursorConformance checks an audit.CursorStore, the Forwarder's
// position and claim per destination.
//
// # Errors
//
// The suite expects a keeping sink to reject duplicate sequence numbers
// with an error matching audit.ErrDuplicateSequence, and a write with a
// canceled context with an error (any).
package audittest
