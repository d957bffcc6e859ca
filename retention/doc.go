// Package retention keeps data only as long as it should be kept.
//
// A Policy names a target, a maximum age and an action: Delete or
// Anonymise expired records of a Target (activity logs, sessions, any
// time-partitioned data; see MemoryTarget and package
// retention/sqltarget), or NotifyThenErase users inactive for the
// maximum age. DefaultPolicies keep activity logs 90 days, sessions 30 days, users inactive 365 days, who are
// notified once (the notice is recorded in a NoticeStore before it is
// sent, and in private metadata under NotifiedKey after, so nobody is
// told twice) and erased through privacy after InactiveGracePeriod
// unless they came back. A user active again after the notice is not
// erased; if they go quiet for another year they get a new notice.
// An app without a sessions (or activity) table passes nil for it and
// DefaultPolicies leaves that policy out.
//
// Legal holds (HoldStore: MemoryHolds here, sqlstore's Holds for
// PostgreSQL and SQLite) keep a user's data out of every sweep, and
// Checker makes privacy's erasure refuse them too. AuditedHolds writes a
// legal_hold audit event before each hold is placed or released, and
// changes nothing when it cannot. RequestsPolicy deletes privacy
// requests finished longer ago than their proof period (three years by
// default), never the ledger of erased users.
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
// notice is cleared. Last activity may come at day precision (Clerk
// serves last_active_at as the start of its day), so activity on the day
// of a notice counts as after it: that user is told again a year later
// rather than erased on the old notice.
//
// # Several instances
//
// Applications run several replicas on one database, and each may run the
// Engine (Schedule spreads them with jitter). What holds then:
//
//   - One real run at a time: WithLease takes the lease LeaseName from a
//     steward.Leaser (sqlstore's Leases), whose expiry is judged by the
//     database's clock, so engines whose clocks disagree still agree on
//     who holds it. Each Engine owns it under a name of its own
//     (steward.NewOwner, or WithOwner), and a held lease is refused even
//     to the same name, so two runs never both hold it. It is renewed in
//     the background every third of its ttl (a slow batch or notifier
//     does not let it lapse) and confirmed with the Leaser before every
//     destructive step: a purge batch, a notice, an erasure, the clearing
//     of a notice. A run that lost it stops before the next such step
//     with ErrLeaseLost. Without WithLease, runs are not kept apart, and
//     only the notice records below keep them from telling a user twice.
//   - Each user is told once per spell of inactivity: a notice is
//     claimed in a NoticeStore (by the store's clock) before it is sent,
//     and its outcome recorded there and in private metadata after. A
//     runner finding the notice claimed leaves the user to its holder; one
//     finding it sent copies it into the metadata and tells nobody. A
//     failed send is recorded as failed and sent again by a later run.
//     Only a runner that dies, or loses both its database and its identity
//     provider, between sending and recording can leave a notice to be
//     sent again, once its claim (NoticeClaimTTL) has run out: an unsent
//     notice must not lead to an erasure. The store is sqlstore's Holds,
//     shared by every process on the database, when it is the HoldStore
//     (WithHolds) or given with WithNotices; otherwise each Engine keeps
//     its records in memory, which guards only against itself. The record
//     of a user is removed before they are erased.
//   - Dry runs take no lease and write nothing (no claim, no metadata),
//     so one can run beside another instance's real run.
//   - Cutoffs and grace periods are reckoned by each Engine's clock
//     (WithNow): clocks that disagree by a minute shift a 365-day cutoff by
//     a minute, nothing more.
//
// Schedule runs on an interval with jitter until its context ends; WithNow
// and WithAfter put Run and Schedule on a fake clock.
//
// # Metrics and traces
//
// WithMeterProvider and WithTracerProvider record OpenTelemetry metrics
// and spans of every Run but dry runs' metrics; WithLogger logs a line
// per policy (name, action, counts). Without them nothing is recorded.
// No attribute or line names a user.
//
//	steward.retention.records  counter  {record}  steward.retention.policy, steward.retention.action
//	    records deleted or anonymised
//	steward.retention.users    counter  {user}    steward.retention.policy, steward.retention.outcome
//	    notify_then_erase: notified, erased, reactivated, held, failed
//
// Spans: steward.retention.run (steward.retention.dry_run) with a child
// steward.retention.policy per policy (steward.retention.policy,
// .action, .purged, .batches; an error status when the policy failed).
//
// # Errors
//
// NewEngine and Policy.Validate wrap ErrInvalidPolicy and name the field;
// HoldStore.Place wraps ErrInvalidHold; NoticeStore methods wrap
// ErrInvalidNotice for unusable arguments, and FinishNotice returns
// ErrNoticeLost when its claim was taken. Run returns an error wrapping
// ErrLeaseHeld (and steward.ErrLeaseHeld) when another run holds the
// lease, wraps ErrLeaseLost when it lost the lease midway, and otherwise
// joins the errors of failed policies, each naming its policy. A user
// whose notice or erasure failed, or whose notice could not be recorded,
// is counted in PolicyReport.Failed, reported in the policy's error
// without their ID, and retried on the next run. What a run did before an
// error stays done. AuditedHolds returns the audit logger's error,
// wrapped and naming that the hold was not changed, when its event could
// not be written.
package retention
