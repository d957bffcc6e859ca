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
// Manager.Update validates a change, writes a consent_change audit event
// first (the audit Logger pseudonymises subject and actor; the details
// name only the purposes changed, the policy version and the source;
// when the event cannot be written nothing is recorded), queues the user
// for a sync, appends the records, then mirrors the user's
// state into the identity provider's public metadata, where clients
// reading the session find it:
//
//	"consent": {"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}
//
// The mirror goes through an Outbox, and the user is queued before the
// change is appended, so neither a failed sync nor a crash loses it: the
// entry stays until a sync succeeds, and Manager.SyncPending (or the Run
// loop) retries it with exponential backoff, in the round and across
// rounds. Update's own sync makes one attempt and waits out no rate
// limit (it runs under privacy.DeferRateLimits): a 429 from Clerk, whose
// limit is ten metadata updates per user in ten seconds, leaves the
// change to the outbox instead of holding the caller for its
// Retry-After. A later change supersedes a pending one, since a sync always
// sends the latest stored state. During an outage a round backs off
// once, then tries each remaining user once; an error whose Temporary
// method answers false is not retried within a round.
// Application-defined purposes are not mirrored: the store is the record,
// the mirror serves clients that read the session.
//
// # Several instances
//
// Any number of Managers, in any number of processes, may share one
// store, and each may call Update, SyncPending and Run at any frequency;
// nothing is coordinated in process memory. A sync first claims the
// user's outbox entry: one claim per user at a time, with an owner
// unique to the Manager (WithOwner; steward.NewOwner by default) and a
// lease judged by the store's clock (WithClaimTTL, DefaultClaimTTL),
// renewed every third of its length while the provider is called. Under
// the claim the sync reads the Version of the entry, then the latest
// state, writes it, and ends with Outbox.Done, fenced by the claim's
// owner and token:
//   - a change recorded meanwhile re-enqueued the entry (Update enqueues
//     again after appending), so Done fails with ErrSuperseded and the
//     sync goes round again under the same claim, leaving out a write
//     identical to the one it just sent;
//   - Update leaves a user claimed by another sync to that sync's
//     re-check rather than writing beside it, so a withdrawal recorded on
//     one instance while another is writing the older grant is written
//     after the grant;
//   - a sync whose claim expired and was taken over while it wrote (its
//     process paused, or its database was out of reach for a whole TTL)
//     may have written an older state over a newer one: Done or Retry
//     then queues the entry again marked Rewrite, and whoever holds it
//     writes the latest state again, even a value it has just sent.
//
// So across processes, restarts and outages the mirror ends equal to the
// store's latest state, and in the normal case each change is written
// once, by one instance. A change recorded just as its user's sync
// re-checks may cost one extra write of the same value; never an older
// one. What each store gives:
//   - MemoryStore: claims hold between the Managers of one process
//     sharing it; nothing is shared with other processes.
//   - sqlstore's Consent (PostgreSQL, SQLite): claims live in the outbox
//     rows, taken by one atomic statement (FOR UPDATE SKIP LOCKED on
//     PostgreSQL, the write lock on SQLite) and expiring by the
//     database's clock, so every process on the database shares them.
//
// Due times (when a retry comes due) are read from each Manager's own
// clock (WithNow); a skewed clock only makes a retry early or late.
// Record times come from it too, but a change is never stamped at or before
// the user's latest record: the latest record by time decides, so a
// withdrawal recorded after a grant stays the later one even when the
// instance that recorded it has a clock seconds behind the other's.
//
// # Erased users
//
// WithFence (a privacy.Service) refuses changes for a user whose erasure
// has begun: Update fails with privacy.ErrFenced, then privacy.ErrErased
// once the user is in the erasure ledger, and the HTTP handler answers
// 409 and 410. The fence is checked before recording and again after:
// a change recorded while the erasure opened is removed (as the
// erasure's DataStore would remove it) and refused, so an erased
// person's consent never comes back. Build the Service over
// NewDataStore(store) first, then the Manager with WithFence(svc).
//
// Manager.Allowed answers from the store, never from the mirror, and says
// no when there is no record. Manager.Handler serves GET and PUT of the
// signed-in user's consent.
//
// # Global Privacy Control
//
// Manager.HonourGPC is middleware that treats the Global Privacy Control
// signal (the request header Sec-GPC: 1, which California requires
// businesses to honour as an opt-out of sale and sharing) as a
// withdrawal of ThirdParty: the first request carrying it from a
// signed-in user whose ThirdParty consent is not already withdrawn
// records the withdrawal with Source "gpc" (SourceGPC) through Update,
// audited, mirrored and fenced like any other change. Manager.Handler
// does the same for its own requests, and a PUT under the signal cannot
// grant ThirdParty. GPC reports whether a request carries the signal.
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
// # Metrics and traces
//
// WithMeterProvider and WithTracerProvider record OpenTelemetry metrics
// and spans; WithLogger logs a line per SyncPending pass that synced or
// failed something (counts only). Without them nothing is recorded. No
// attribute or line names a user or a consent state.
//
//	steward.consent.syncs         counter  {user}  steward.consent.outcome (synced, failed)
//	steward.consent.outbox.depth  gauge    {user}  users waiting in the outbox; only when the
//	                                               Outbox is an OutboxDepth (MemoryStore and
//	                                               sqlstore's Consent are), one count per collection
//
// Spans: steward.consent.sync, one per SyncPending pass
// (steward.consent.synced, steward.consent.failed; an error status when
// a sync failed).
//
// # Errors
//
// Bad input wraps ErrUnknownPurpose (a well-formed purpose the Manager was
// not told about), ErrInvalidPurpose (a malformed name),
// ErrInvalidRecord (a missing or bad field, or no purposes to change) or
// steward.ErrInvalidUserID, and names the field or purpose; it never
// holds a user ID. WithOwner and WithClaimTTL wrap steward.ErrInvalidLease.
// Update returns an error only when the change was not recorded (nothing
// is kept: the audit event could not be written, the store failed, or
// the fence refused it, matching privacy.ErrFenced), or was recorded but
// not queued again after recording (its mirror may then lag until the
// user's next change); a failed mirror is retried, not returned.
// SyncPending returns how many users it synced and an error joining the
// failures, which stay queued; a sync whose claim was lost while writing
// is among them, matching steward.ErrLeaseLost, and its user is queued
// again for whoever holds the claim.
//
// An Outbox's Claim and Renew wrap steward.ErrInvalidLease for an unusable
// owner or TTL; Renew, Done and Retry return an error matching
// steward.ErrLeaseLost when the claim is no longer the caller's, and Done
// returns ErrSuperseded when a newer change was queued under the claim.
// The HTTP handler answers 400 naming an unknown purpose or a bad value
// and 401 {"error":"Unauthorized"} without a principal.
package consent
