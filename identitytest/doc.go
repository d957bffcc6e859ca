// Package identitytest is the conformance suite every
// steward.IdentityProvider must pass.
//
// A provider's test file runs it in a few lines:
//
//	func TestConformance(t *testing.T) {
//		identitytest.RunConformance(t, func(ctx context.Context, t *testing.T) (identitytest.Harness, error) {
//			return newHarness(t), nil // a Harness around the provider under test
//		})
//	}
//
// The suite needs a way to put users into the backend, which the
// IdentityProvider port does not offer, so each backend supplies a Harness:
// it creates users (the backend may assign its own IDs and times; the suite
// reads them back from the returned user) and declares what the backend
// keeps in Capabilities. Every case creates a fresh Harness and is named
// by the rule it checks, for example
// "UpdateMetadata deep-merges nested objects key by key", so a failing
// provider reads which rule it broke.
//
// The rules are those of the port's documentation and of MemoryIdentity,
// which is the reference: users come back as deep copies; metadata reads
// back as JSON would store it; patches deep-merge and a nil value removes a
// key; deleting a missing user is not an error; ListUsers yields every
// matching user exactly once, oldest first with ties broken by ID, lazily,
// honouring Limit and PageSize, even while the caller updates or deletes
// the users it is given; malformed IDs, empty patches, bad queries and
// cancelled contexts give errors that wrap steward.ErrInvalidUserID,
// steward.ErrInvalidPatch, steward.ErrInvalidQuery and the context's error;
// and no error text contains a user ID.
//
// # Errors
//
// The suite reports through the *testing.T it is given. An error returned
// by a HarnessMaker or by Harness.CreateUser stops the case with t.Fatal.
package identitytest
