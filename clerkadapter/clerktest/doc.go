// Package clerktest is a fake Clerk for tests and examples: an
// httptest-based Backend API holding users in memory, a JWKS endpoint, a
// minter of session tokens signed with the server's key, a signer of
// Svix webhook deliveries, and fault injection.
//
// Its responses have the JSON shapes of the real Backend API, so the
// official SDK (github.com/clerk/clerk-sdk-go/v2) and package
// clerkadapter work against it unchanged:
//
//	srv := clerktest.NewServer()
//	defer srv.Close()
//	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}})
//	prov := clerkadapter.New(srv.ClientConfig())
//	got, err := prov.GetUser(ctx, u.ID)
//	tok := srv.SessionToken(u.ID) // verifies against srv's JWKS
//
// Faults make the failure paths testable: FailNext answers the next
// requests with an error status (429 with Retry-After, 5xx), DelayNext and
// SetLatency slow requests down, WithRateLimit enforces a Clerk-like
// limit, and Requests logs what was asked and answered.
//
// The fake covers the endpoints Steward uses, not the whole API. Where
// Clerk's behaviour is not documented it picks the plausible one and says
// so: list results tie-break on the user ID, and a user who was never
// active matches neither last_active_at filter.
//
// # Errors
//
// The server answers errors the way Clerk does, as JSON bodies with a
// code: 401 authentication_invalid without the right secret key, 404
// resource_not_found for unknown users and paths, 422
// form_param_format_invalid for malformed parameters, 422
// form_identifier_exists for a taken email address, and whatever
// FailNext injects. The Go methods (AddUser, SessionToken, ...) panic on
// misuse, such as metadata that cannot be encoded as JSON, since they only
// run in tests.
package clerktest
