package privacytest

import (
	"context"
	"testing"
	"time"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

// DataStoreHarness connects the DataStore suite to one instance of the
// store under test.
type DataStoreHarness interface {
	// Store returns the DataStore under test. The suite calls it once per
	// case, after the harness is made.
	Store() privacy.DataStore

	// Seed gives userID data in the store's backend and returns the
	// records Export should then yield for that user. The suite calls it
	// at most once per user, with fresh valid user IDs; it needs at least
	// two records. A store with one category passes too, though the rule
	// that a category's records come together is then only checked with
	// two or more. Records compare after a
	// JSON round trip, so 42 and 42.0 are the same value.
	Seed(ctx context.Context, userID string) ([]privacy.Record, error)

	// Capabilities reports what the store guarantees beyond the port.
	Capabilities() DataStoreCapabilities

	// Close releases the harness's resources. The suite calls it when the
	// case ends.
	Close()
}

// DataStoreHarnessMaker makes a new DataStoreHarness for one case. It is
// called once per case with that case's t.
type DataStoreHarnessMaker func(ctx context.Context, t *testing.T) (DataStoreHarness, error)

// DataStoreCapabilities declares guarantees a store may give beyond the
// DataStore port. The zero value claims none; the suite then checks the
// weaker form of the rule.
type DataStoreCapabilities struct {
	// Ordered reports that Export yields records in the order Seed
	// returned them. Without it, the suite compares records as a
	// multiset.
	Ordered bool

	// ExactCount reports that Erase's Count equals the number of records
	// Export yielded before. Without it, the suite only checks that a
	// user with data gets a positive Count.
	ExactCount bool
}

// config holds the suites' internal knobs; the self-tests shorten them.
type config struct {
	// blockTimeout is how long a call may take before the suite decides
	// the store is deadlocked.
	blockTimeout time.Duration
}

var defaultConfig = config{blockTimeout: 30 * time.Second}

// tb is the part of *testing.T the suites use, so that the suites' own
// tests can run them with a conformance.Recorder instead of a *testing.T.
type tb = conformance.T

// RunDataStoreConformance runs every case of the DataStore suite as a
// subtest of t, each with a fresh harness from newHarness:
//
//	func TestConformance(t *testing.T) {
//		privacytest.RunDataStoreConformance(t, func(ctx context.Context, t *testing.T) (privacytest.DataStoreHarness, error) {
//			return newMyHarness(t), nil
//		})
//	}
func RunDataStoreConformance(t *testing.T, newHarness DataStoreHarnessMaker) {
	t.Helper()
	runDataStore(conformance.Wrap(t), func(ctx context.Context, t tb) (DataStoreHarness, error) {
		return newHarness(ctx, conformance.Testing(t))
	}, defaultConfig)
}
