// Package sqlstore keeps Steward's records in PostgreSQL or SQLite through
// database/sql: one [Store] per database, embedded versioned migrations, and
// the SQL implementations of the audit, privacy-request, consent,
// retention-hold and lease stores built on it, and of clerkadapter's
// webhook replay store and role-invalidation log.
//
//	db, err := sqlstore.OpenSQLite("steward.db") // or postgres.Open(dsn), package sqldialect/postgres
//	store, err := sqlstore.New(db, sqlstore.SQLite) // or sqlstore.Postgres
//	err = store.Migrate(ctx)
//
// # Drivers
//
// sqlstore imports no PostgreSQL code: the dialect (placeholders,
// quoting, the drivers' constraint errors) lives in package sqldialect,
// and each driver comes with its own opening package,
// sqldialect/sqlite (modernc.org/sqlite, pure Go, driver name "sqlite")
// and sqldialect/postgres (github.com/jackc/pgx/v5/stdlib, driver name
// "pgx"). An application on SQLite alone therefore links no pgx.
// [OpenSQLite] is sqlite.Open; [OpenPostgres] opens by the driver name
// "pgx" and needs the program to import sqldialect/postgres (use its
// Open) or pgx's stdlib. Any *sql.DB opened with the matching driver
// works with [New]. For SQLite use WAL and a busy timeout, as sqlite.Open
// documents, or concurrent writers fail with "database is locked". Every
// read-write transaction here takes SQLite's write lock with its first
// statement, so a DSN without _txlock=immediate works too: writers wait
// for each other under the busy timeout.
//
// # Migrations
//
// The schema lives in embedded files migrations/<dialect>/NNNN_name.sql
// (dialect is "postgres" or "sqlite"). [Store.Migrate] applies those not yet
// recorded in the table steward_schema_migrations, in number order, each in
// its own transaction together with its record, under a lock so that
// several processes may migrate one database at once. Running it again does
// nothing. Every table Steward creates is named steward_*.
//
// # Several processes, one database
//
// Every store here keeps its state in the database and coordinates
// through it, never through process memory, so any number of processes
// (replicas, restarted at any moment) may share one PostgreSQL database
// or one SQLite file. Leases and claims expire by the database's clock
// (clock_timestamp() on PostgreSQL, unixepoch('subsec') on SQLite), so
// processes whose clocks disagree still agree on who holds what.
//
//   - [AuditSink] is an audit.Appender: one hash chain per database,
//     whatever the number of writing Loggers. Each Append takes the
//     chain's lock (a transaction-scoped advisory lock keyed on the schema
//     on PostgreSQL; the write lock on SQLite), reads the head, links and
//     inserts the batch and commits; an event whose ID its caller chose
//     is stored once (steward_audit_keys). [AuditCursors] keeps each
//     audit.Forwarder destination's position and claim.
//   - [Requests] is a privacy.RequestClaimer: each request is run by one
//     worker at a time, claimed in its row with an expiry, and fenced by
//     its version. [Requests.OnCreate] runs a hook in the transaction
//     that creates a request (riverjobs.EnqueueTx inserts its River job
//     there), so the request and what the hook writes commit together.
//     Partial unique indexes keep one open erasure and one pending export
//     per user, whichever process asks. The erasure fence
//     (privacy.Service.CheckFence) reads the open erasures and the ledger
//     from the database, so a user fenced by one process is fenced in all.
//   - [Ledger] (and [Requests], over its own database) is the
//     privacy.Ledger of erased users: keyed pseudonyms only
//     (steward_privacy_ledger, migration 0012). To survive restores of
//     the application's data, keep it in a database that is not restored
//     with it: [Store.Ledger] of a second database, given to
//     privacy.WithLedger.
//   - [WebhookMessages] is clerkadapter's webhook ReplayStore: each
//     accepted Svix message ID is recorded by one atomic upsert (an
//     expired row is taken over, an unexpired one makes it return
//     nothing), expiring by the database's clock, so a message given to
//     two processes at once is processed by one of them; an ID whose
//     handler finished is marked handled (migration 0014), so that a
//     redelivery is acknowledged unprocessed. Expired IDs are deleted in
//     batches of at most 100 as new ones arrive.
//   - [RoleInvalidations] is clerkadapter's InvalidationLog: a role
//     change or ban recorded by one process is read, in order, by the
//     LiveRoles of every other within its poll interval. Records become
//     visible in sequence order (an advisory lock held to commit on
//     PostgreSQL; the write lock on SQLite), so a reader's cursor never
//     passes over one committed later; they are kept for as long as any
//     cache may serve an account read before the change, then deleted in
//     batches of at most 100 as new ones arrive.
//   - [Consent], [Holds] and [Leases]: see below.
//
// # Consent
//
// [Consent] keeps consent records append-only and its outbox in
// steward_consent_outbox, one row per user waiting for a mirror. Any
// number of processes may run consent Managers on one database: a sync
// claims the user's row (owner, fencing token, expiry by the database's
// clock: clock_timestamp() on PostgreSQL, unixepoch('subsec') on
// SQLite), taken by one UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL,
// under the write lock on SQLite), so two runners never sync one user at
// once; Done, Retry, Renew and Release act only for the claim's owner and
// token, and a holder whose claim was taken over queues the row again for
// a rewrite. [Consent.Queued] lists the rows for inspection.
//
// # Placeholders
//
// Queries in this package are written with ? placeholders and passed
// through [Dialect.Rebind], which turns them into $1, $2, ... for
// PostgreSQL.
//
// # Retention and administrators with several processes
//
// [Holds] is shared by every process on the database: a hold placed by
// one is seen by all at once. As a retention.NoticeStore it records each
// inactivity notice before it is sent, claimed per user with one
// conditional upsert whose claim expires by the database's clock, so
// however many retention Engines scan the same users each user is told
// once; the record is fenced by a token that grows with every claim.
// [Leases] (migration 0006) is the steward.Leaser the retention Engine
// (retention.WithLease) and the last-admin guard (useradmin.WithLeases)
// take their leases from: expiry by the database's clock, so processes
// with skewed clocks agree on who holds one. Both hold on PostgreSQL and
// on one SQLite file opened by several processes (WAL and a busy
// timeout, as [OpenSQLite] sets them).
//
// # Errors
//
// [New] returns [ErrNilDB] for a nil *sql.DB and an error wrapping
// [ErrUnknownDialect] for a dialect other than [Postgres] and [SQLite].
// [OpenPostgres] fails, naming the package to import, when no "pgx"
// driver is linked.
// [Store.Migrate] returns a *[MigrationError] (use errors.As) naming the
// migration file that failed; it wraps the driver's error, and a cancelled
// or expired context is reported as context.Canceled or
// context.DeadlineExceeded (use errors.Is). A failed migration leaves
// nothing of itself behind. [WebhookMessages] and [RoleInvalidations]
// refuse an empty ID and a ttl or keep that is not positive, and
// otherwise wrap the driver's error, naming what failed but never the
// user ID.
package sqlstore
