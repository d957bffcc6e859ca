package identitytest

import (
	"context"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/internal/conformance"
)

// Harness connects the suite to one instance of the provider under test.
type Harness interface {
	// Provider returns the IdentityProvider under test. The suite calls it
	// once per case, after the harness is made.
	Provider() steward.IdentityProvider

	// CreateUser adds u to the provider's backend and returns the user as
	// the provider now reports it (what GetUser would return).
	//
	// The suite fills ID (a valid, unique ID), EmailAddresses (with IDs;
	// the first is primary), FirstName, LastName, ImageURL, CreatedAt,
	// LastActiveAt and both metadata maps. A backend may assign its own
	// user ID, email address IDs and timestamps: the suite uses the
	// returned user. Capabilities says which of the given timestamps the
	// backend keeps.
	CreateUser(ctx context.Context, u steward.User) (steward.User, error)

	// Capabilities reports what the backend supports.
	Capabilities() Capabilities

	// Close releases the harness's resources. The suite calls it when the
	// case ends.
	Close()
}

// HarnessMaker makes a new Harness for one case. It is called once per
// case with that case's t.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Capabilities declares what a backend supports. The suite runs every
// case on every backend; where a backend keeps the times the suite gives,
// it also checks that ordering and filters split the users non-trivially.
type Capabilities struct {
	// KeepsCreatedAt reports that CreateUser stores the CreatedAt it is
	// given (Clerk does, through the created_at parameter). Without it,
	// the suite orders and filters by the times the backend assigned.
	KeepsCreatedAt bool

	// KeepsLastActiveAt reports that CreateUser stores the LastActiveAt it
	// is given. Without it, the suite filters by whatever the backend
	// reports, usually no activity (so creation time counts).
	KeepsLastActiveAt bool
}

// config holds the suite's internal knobs; the self-test shortens them.
type config struct {
	// blockTimeout is how long a call may take before the suite decides
	// the provider is deadlocked.
	blockTimeout time.Duration
}

var defaultConfig = config{blockTimeout: 30 * time.Second}

// tb is the part of *testing.T the suite uses, so that the suite's own
// tests can run it with a conformance.Recorder instead of a *testing.T.
type tb = conformance.T

// RunConformance runs every case of the suite as a subtest of t, each
// with a fresh Harness from newHarness.
func RunConformance(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	run(conformance.Wrap(t), func(ctx context.Context, t tb) (Harness, error) {
		return newHarness(ctx, conformance.Testing(t))
	}, defaultConfig)
}
