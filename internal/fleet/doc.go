// Package fleet gives tests what they need to run Steward the way a
// deployment does, as several OS processes on one database that are
// killed at any moment and started again:
//
//   - [RunRole], called from TestMain, turns a re-executed test binary
//     into the role its environment names ([RoleEnv]).
//   - [Command] and [Start] re-execute the running test binary in a role;
//     a [Process] can be killed (SIGKILL), asked to stop (SIGTERM) and
//     waited for.
//   - A [Journal] is an append-only file of JSON records, one write per
//     record, so a process killed at any instant leaves only complete
//     records; [ReadJournal] reads them back.
//
// # The fleet test
//
// TestFleet, in this package's tests, uses them on the real library
// stack. It re-executes the test binary as three worker processes on one
// SQLite file, then three on one PostgreSQL schema (when
// STEWARD_TEST_POSTGRES_DSN is set). Each builds what an application
// would (sqlstore, an audit Logger on the SQL chain, privacy.Service over
// sqldata tables and an external erasure service, consent.Manager,
// useradmin with database leases, the Clerk adapter talking to
// clerktest) and runs random exports, consent changes, role changes,
// bans and raw audit events on a shared pool of users, erases scheduled
// users (every third from two processes at once), and runs
// ResumePending and SyncPending, journalling each operation before and
// after. Meanwhile the test SIGKILLs a random worker every one to three
// seconds and starts it again, and injects Clerk and external-service
// faults. Then it stops killing, asks the workers to drain (SIGTERM:
// finish the operations in flight, resume every open request, sync every
// queued user) and checks:
//
//   - every worker was killed or drained and exited 0, with no data race
//     or panic;
//
//   - no operation failed with an error a fleet should not cause, and no
//     error named a user ID;
//
//   - audit.Verify passes over the whole table, every acknowledged
//     operation's event is stored exactly once, and every event belongs
//     to an operation that was attempted;
//
//   - every erasure request completed: the user is gone from Clerk and
//     from the application's tables, the external service and Clerk were
//     called for the request, and a completion event was written;
//
//   - every consent mirror in Clerk equals the store's latest state, and
//     no sync is left queued;
//
//   - at least one active (verified, not banned or locked) admin remains;
//
//   - each erasure step was done once (no overlapping calls for one
//     subject, a repeated call only after a kill of the process that made
//     the earlier one) and each request has one completion event.
//
//     go test ./internal/fleet/                        # short: 10 s of kills per dialect
//     STEWARD_FLEET_FULL=1 go test ./internal/fleet/   # full: 60 s per dialect (.ci/run)
//
// # Errors
//
// [Start] returns the error of exec.Cmd.Start. [Journal.Append] returns
// the encoding or write error and writes nothing on an encoding error.
// [ReadJournal] names the file and line of a record it cannot decode; a
// last line without its newline, what a killed writer leaves, is not an
// error and is skipped. [RunRole] exits with status 2 and a message on
// standard error for a role it does not know.
package fleet
