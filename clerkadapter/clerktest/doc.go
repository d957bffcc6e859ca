// Package clerktest is a fake Clerk for tests and examples: an
// httptest-based Backend API holding users in memory, a JWKS endpoint, a
// minter of session tokens signed with the server's key, a signer of
// Svix webhook deliveries, and fault injection.
//
// It follows Clerk's documented Backend API so that what passes against
// it passes against Clerk: the OpenAPI specification of API version
// 2025-04-10 (clerk/openapi-specs, bapi/2025-04-10.yml, the version
// clerk-sdk-go v2.4.2 asks for), the published error catalogue, system
// limits and session-token reference (clerk/clerk-docs). The official SDK
// (github.com/clerk/clerk-sdk-go/v2) and package clerkadapter work
// against it unchanged:
//
//	srv := clerktest.NewServer()
//	defer srv.Close()
//	u := srv.AddUser(steward.User{EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}})
//	prov := clerkadapter.New(srv.ClientConfig())
//	got, err := prov.GetUser(ctx, u.ID)
//	tok := srv.SessionToken(u.ID) // verifies against srv's JWKS
//
// # What the fake does as Clerk documents it
//
//   - Every endpoint the SDK's user package calls is served (see Server).
//   - GET /v1/users and /v1/users/count take every documented filter:
//     email_address, phone_number, username, web3_wallet, external_id,
//     user_id, organization_id (the last three with "+"/"-" prefixes to
//     include or exclude), provider with provider_user_id (required
//     together), query, email_address_query, phone_number_query,
//     username_query, name_query (case-insensitive partial matches),
//     banned, and the created_at, last_active_at and last_sign_in_at
//     before/after bounds (strict, in Unix milliseconds). Arrays take up
//     to 100 values. The list orders by any of the ten documented
//     order_by fields (default -created_at; the first order_by counts),
//     pages with limit (1 to 500, default 10) and offset, or with the
//     starting_after cursor, which requires created_at ordering and no
//     offset (else 422).
//   - Request bodies are checked against their schemas: a parameter the
//     schema does not list answers 422 form_param_unknown, a parameter of
//     the wrong JSON type 422 form_param_value_invalid, malformed JSON 400
//     request_body_invalid.
//   - Email addresses, phone numbers, web3 wallets, usernames and external
//     IDs are unique across the instance (422 form_identifier_exists).
//   - POST /v1/users honours banned, locked and the
//     email_address_identification_status and
//     phone_number_identification_status arrays: reserved identifications
//     are served unverified, with "reserved": true and no verification.
//   - A metadata object larger than 8 KB (MaxMetadataBytes) as stored after
//     the change answers 422 form_param_exceeds_allowed_size.
//   - PATCH /v1/users/{id} replaces the metadata objects it is given; PATCH
//     /v1/users/{id}/metadata deep-merges (null removes a key); PUT
//     /v1/users/{id}/metadata replaces the objects it is given.
//   - Updates of one user (PATCH /v1/users/{id}, PATCH and PUT
//     /v1/users/{id}/metadata) are limited to 10 per 10 s per user
//     (WithUserUpdateLimit); WithRateLimit adds an instance limit, from
//     which GET /v1/jwks is exempt. Every 429 carries Retry-After.
//   - last_active_at is served at day precision: AddUser keeps the start
//     of the given day (UTC).
//   - User objects carry every property the User schema lists as
//     required, also those the SDK's clerk.User has no field for
//     (passkeys, enterprise_accounts, mfa_enabled_at, ...).
//   - SessionToken mints version 2 tokens by default, with jti, v, fva and
//     sts; TokenVersion(1) mints the deprecated version 1.
//
// # What Clerk does not document, and the fake decides
//
//   - List ties, and users without a value for the ordering field (who
//     sort last in either direction), are ordered by creation time, then
//     ID. A user who was never active, or never signed in, matches neither
//     bound of the respective time filter.
//   - A starting_after cursor naming a user that no longer exists answers
//     422 form_param_value_invalid.
//   - A request without an Authorization header answers 401
//     authentication_invalid.
//   - The messages of form_param_exceeds_allowed_size and, for a taken
//     external_id, form_identifier_exists ("That external id is taken.
//     Please try another.") are the fake's; the catalogue gives none.
//   - The fake holds no instance settings: no identifier is required to
//     create a user, usernames have no length rule, and password digests
//     are accepted but cannot be checked by verify_password. It holds no
//     passkeys or organization invitations, and makes up an OAuth access
//     token for each external account. It never changes last_active_at or
//     last_sign_in_at by itself.
//   - The count endpoint ignores limit, offset, order_by and
//     starting_after, which the SDK's List also sends to it, and takes
//     the "+"/"-" prefixes on user_id and external_id as the list does
//     (the spec documents them for the list only).
//   - Email addresses, usernames and web3 wallets compare without regard
//     to case, in filters and for uniqueness; a "+" prefix sent unencoded
//     (read as a space) counts as "+".
//   - The per-user limit counts every update request of the user,
//     rejected ones included, and the Retry-After of a limit is the time
//     until its oldest counted request leaves the window, in whole
//     seconds, at least 1.
//
// # Faults
//
// FailNext answers the next requests with an error status (429 with
// Retry-After, 5xx), DelayNext and SetLatency slow requests down, and
// Requests logs what was asked and answered.
//
// # Errors
//
// The server answers errors the way Clerk does, as JSON bodies of
// Clerk's error shape with codes and messages from Clerk's error
// catalogue: 401 authorization_header_format_invalid for a header that is
// not "Bearer <key>", 401 clerk_key_invalid for a wrong secret key, 404
// resource_not_found ("No user was found with id <id>") for unknown
// users and ("Resource not found") for unknown paths, 400
// request_body_invalid, 422 with the form_* codes above, 429
// too_many_requests, and whatever FailNext injects. The Go methods
// (AddUser, SessionToken, ...) panic on misuse, such as metadata that
// cannot be encoded as JSON, since they only run in tests.
package clerktest
