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
// source, actor, time); nothing is overwritten, so Store.At can show the
// state at any past moment, as GDPR Art. 7(1) asks a controller to be
// able to demonstrate, and withdrawal (Manager.WithdrawAll, Art. 7(3)) is
// one call.
//
// Manager.Update validates a change, appends it, writes a consent_change
// audit event, then mirrors the user's state into public metadata as the
// data-handling guide does:
//
//	"consent": {"marketing": true, "analytics": false, "thirdParty": false, "updatedAt": "2026-03-01T12:00:00Z"}
//
// The mirror goes through an Outbox: a failed sync is never lost; it stays
// queued and Manager.SyncPending (or the Run loop) retries it with
// exponential backoff. A later change supersedes a pending one, since a
// sync always sends the current state, and one sync per user runs at a
// time in a Manager, so an older state never overwrites a newer one. With
// several processes, run SyncPending in one of them.
//
// Manager.Allowed answers from the store, never from the mirror, and says
// no when there is no record. Manager.DataStore exposes a user's history
// to package privacy so it is exported and erased with the user;
// Manager.Handler serves GET and PUT of the signed-in user's consent.
//
// Stores: MemoryStore here, and sqlstore's Consent for PostgreSQL and
// SQLite. Both pass the suite in package consenttest.
//
// # Errors
//
// Bad input wraps ErrUnknownPurpose, ErrInvalidPurpose, ErrInvalidRecord or
// steward.ErrInvalidUserID and names the field or purpose. Update returns
// an error only when the change was not recorded or not audited; a failed
// mirror is retried, not returned.
package consent
