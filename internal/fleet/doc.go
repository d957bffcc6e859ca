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
// # Errors
//
// [Start] returns the error of exec.Cmd.Start. [Journal.Append] returns
// the encoding or write error and writes nothing on an encoding error.
// [ReadJournal] names the file and line of a record it cannot decode; a
// last line without its newline, what a killed writer leaves, is not an
// error and is skipped. [RunRole] exits with status 2 and a message on
// standard error for a role it does not know.
package fleet
