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
// new notice.
//
// Legal holds (HoldStore: MemoryHolds here, sqlstore's Holds for
// PostgreSQL and SQLite) keep a user's data out of every sweep, and
// Checker makes privacy's erasure refuse them too.
//
// Engine.Run applies the policies in bounded batches (each purge
// statement its own short transaction), reports per policy what it did,
// and writes retention_purge audit events: one summary per bulk purge
// (counts, no user IDs) and one per erased user (pseudonymised by the
// audit logger). With RunOptions.DryRun it only counts what would happen
// and changes nothing. A Lease (MemoryHolds, or sqlstore's Holds shared by
// every process on the database) lets one Run at a time do the work;
// Schedule runs on an interval with jitter until its context ends.
//
// # Errors
//
// NewEngine and Policy.Validate wrap ErrInvalidPolicy and name the field;
// HoldStore.Place wraps ErrInvalidHold. Run returns ErrLeaseHeld when
// another runner holds the lease, and otherwise joins the errors of
// failed policies; a user whose notice or erasure failed is counted in
// PolicyReport.Failed and retried on the next run.
package retention
