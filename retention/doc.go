// Package retention keeps data only as long as it should be kept.
//
// A Policy names a target, a maximum age and an action: Delete or
// Anonymise expired records of a Target (activity logs, sessions, any
// time-partitioned data; see MemoryTarget and package
// retention/sqltarget), or NotifyThenErase users inactive for the
// maximum age. DefaultPolicies are the data-handling guide's: activity
// logs 90 days, sessions 30 days, users inactive 365 days, who are
// notified once (the notice is kept in private metadata under
// NotifiedKey, so nobody is told twice) and erased through privacy after
// InactiveGracePeriod unless they came back. A user active again after
// the notice is not erased; if they go quiet for another year they get a
// new notice. An app without a sessions (or activity) table passes nil
// for it and DefaultPolicies leaves that policy out.
//
// Legal holds (HoldStore: MemoryHolds here, sqlstore's Holds for
// PostgreSQL and SQLite) keep a user's data out of every sweep, and
// Checker makes privacy's erasure refuse them too.
//
// Engine.Run applies the policies in bounded batches (each purge
// statement its own short transaction), reports per policy what it did,
// and writes retention_purge audit events: one summary per bulk purge
// (counts, no user IDs) and one per notified or erased user (the audit
// logger pseudonymises the subject). With RunOptions.DryRun it only
// counts what would happen and changes nothing. RunOptions.Progress is
// called after every batch.
//
// Inactive users are found by a paged scan of the identity provider
// (UserQuery.LastActiveBefore), never all in memory. Erasures happen
// after the scan, so no provider's paging shifts under it, and each user
// is read again first: one who signed in meanwhile is not erased and their
// notice is cleared. A notice is sent before it is recorded, so a failure
// in between means the user is told again on the next run, never not at
// all.
//
// A Lease (MemoryHolds, or sqlstore's Holds shared by every process on
// the database) lets one Run at a time do the work: a second concurrent
// run returns ErrLeaseHeld and does nothing, and a long run renews its
// lease as it goes. Schedule runs on an interval with jitter until its
// context ends; WithNow and WithAfter put Run and Schedule on a fake clock.
//
// # Errors
//
// NewEngine and Policy.Validate wrap ErrInvalidPolicy and name the field;
// HoldStore.Place wraps ErrInvalidHold. Run returns ErrLeaseHeld when
// another runner holds the lease, wraps ErrLeaseLost when it lost the
// lease midway, and otherwise joins the errors of failed policies, each
// naming its policy. A user whose notice or erasure failed is counted in
// PolicyReport.Failed, reported in the policy's error without their ID,
// and retried on the next run. What a run did before an error stays done.
package retention
