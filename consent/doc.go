// Package consent records what each user agreed to, answers whether a
// purpose is allowed, and mirrors the current state to the identity
// provider.
//
// Purposes are Marketing, Analytics and ThirdParty, plus any the
// application registers with WithPurpose (names of a-z, 0-9 and '_'),
// each with a minimum policy version: consent given under an older
// version of the privacy policy counts as not given.
//
// Every change is an appended Record (purpose, granted, policy version,
// source, actor, time); nothing is overwritten, so Manager.At can show the
// state at any past moment, as GDPR Art. 7(1) asks a controller to be
// able to demonstrate, and withdrawal (Manager.WithdrawAll, Art. 7(3)) is
// one call.
//
// Manager.Update validates a change, queues the user for a sync, appends
// the records, writes a consent_change audit event (the audit Logger
// pseudonymises subject and actor; the details name only the purposes
// changed, the policy version and the source), then mirrors the user's
// state into public metadata as the data-handling guide does:
//
//	"consent": {"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}
//
// The mirror goes through an Outbox, and the user is queued before the
// change is appended, so neither a failed sync nor a crash loses it: the
// entry stays until a sync succeeds, and Manager.SyncPending (or the Run
// loop) retries it with exponential backoff, in the round and across
// rounds. A later change supersedes a pending one, since a sync always
// sends the current state, and one sync per user runs at a time in a
// Manager, so an older state never overwrites a newer one. With several
// processes, run SyncPending in one of them. During an outage a round
// backs off once, then tries each remaining user once; an error whose
// Temporary method answers false is not retried within a round.
// Application-defined purposes are not mirrored: the store is the record,
// the mirror serves clients that read the session.
//
// Manager.Allowed answers from the store, never from the mirror, and says
// no when there is no record. Manager.Handler serves GET and PUT of the
// signed-in user's consent.
//
// Manager.DataStore exposes a user's history to package privacy, so it is
// exported and erased with the user. Erasure deletes the records by
// default. A legal basis may require keeping proof that consent was given
// after the person is erased — for instance to answer a complaint about
// marketing, within the limitation period (GDPR Art. 17(3)(e)); for that,
// KeepProof replaces each record by a minimal copy under a keyed
// pseudonym in the same transaction as the delete. Such proof is still
// personal data: keep it only as long as that basis lasts.
//
// Stores: MemoryStore here, and sqlstore's Consent for PostgreSQL and
// SQLite. Both pass the suite in package consenttest, which a custom
// store runs in three lines.
//
// # Errors
//
// Bad input wraps ErrUnknownPurpose (a well-formed purpose the Manager was
// not told about), ErrInvalidPurpose (a malformed name),
// ErrInvalidRecord (a missing or bad field, or no purposes to change) or
// steward.ErrInvalidUserID, and names the field or purpose; it never
// holds a user ID. Update returns an error only when the change was not
// recorded (nothing is kept) or was recorded but not audited (the sync
// still happens); a failed mirror is retried, not returned. SyncPending
// returns how many users it synced and an error joining the failures,
// which stay queued. The HTTP handler answers 400 naming an unknown
// purpose or a bad value and 401 {"error":"Unauthorized"} without a
// principal.
package consent
