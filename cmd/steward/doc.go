// Command steward operates the records a Steward application keeps in its
// database: data-subject requests (exports, erasures and their
// deadlines), legal holds, retention sweeps and the audit chain. It
// builds the library's objects as the application does (sqlstore,
// privacy.Service over sqlstore's requests, audit.Logger over the
// database's chain, retention.Engine with the database's leases,
// clerkadapter for Clerk), so what it does is what the application
// would do, and it runs safely beside the application's replicas.
//
//	go install github.com/stewardlabs/steward/cmd/steward@latest
//
// # Commands
//
//	steward migrate
//	    Create or update Steward's tables (an SQLite file is created
//	    when missing). Running it again does nothing.
//	steward export USER [-o FILE] [--force]
//	    Write USER's export document (GDPR Art. 15/20), streamed: memory
//	    stays flat however much the user has. Without -o it goes to
//	    standard output; with -o to a new file of mode 0600, renamed into
//	    place only once complete (--force replaces an existing FILE).
//	    Writes a data_export audit event.
//	steward erase USER [--yes] [--regime gdpr|ccpa] [--received DATE]
//	    Record and run an erasure request: every declared store, then
//	    Clerk, then the data_deletion audit event, checkpointed and
//	    retried. Resumes the user's open request if there is one.
//	    --received dates a request that arrived earlier (by email, say);
//	    the deadline runs from it.
//	steward requests [--overdue | --attention | --status S,...] [--user USER]
//	    Table of requests: ID, kind, status, received, due and days left
//	    (calendar days, negative when overdue). By default the open ones
//	    (pending, partial, held); --overdue those past due, --attention
//	    the partial ones. Requests are named by ID, never by user.
//	steward show ID
//	    One request: dates, extension, hold reason, claim, and its steps
//	    with status, attempts, rows erased and the last error. The user
//	    appears as their audit pseudonym when the audit key is set.
//	steward resume ID | --pending
//	    Carry a request on from its last checkpoint; --pending does so
//	    for every partial request and every pending one left untouched
//	    for a minute, skipping those another worker holds.
//	steward extend ID --reason TEXT
//	    Record the one extension the regime allows (GDPR two months,
//	    CCPA 45 days).
//	steward cancel ID --reason TEXT [--yes]
//	    Close an open request for good, recording why and who (--actor):
//	    an erasure is never carried out, a queued export never written.
//	    Audited before it takes effect; a worker running the request
//	    stops before its next step. An account the erasure locked at
//	    Clerk is unlocked when CLERK_SECRET_KEY is set.
//	steward hold place USER --reason TEXT
//	steward hold release USER|PSEUDONYM [--yes]
//	steward hold list
//	    Legal holds: erasure refuses held users and retention skips their
//	    data. list names users by audit pseudonym, which release accepts.
//	steward retention plan
//	steward retention apply [--yes]
//	    Report what the declared policies would delete or anonymise now,
//	    or do it in bounded batches under the database's retention lease,
//	    with a progress bar per policy on a terminal and a line per batch
//	    otherwise, then a table per policy. Writes retention_purge events.
//	steward audit verify
//	    Walk the chain with a progress bar (a line per 10,000 events
//	    without a terminal), then report the first broken event or how
//	    many verified and the last hash.
//	steward audit forward --to URL [--name NAME] [--batch N]
//	    Catch an HTTP collector up with the chain (audit.Forwarder), its
//	    cursor kept in the database (sqlstore's AuditCursors) under NAME
//	    (default "collector"), shared with the application's Forwarders.
//	steward replay [--yes]
//	    After restoring a backup: erase again every user of the ledger of
//	    erased users (pseudonyms only) that a declared store or Clerk
//	    knows, each as a new erasure request, and say how many. Exit code
//	    3 when some could not be erased again.
//	steward worker [--engine inprocess|river] [--interval D] [--job-timeout D]
//	    Run the background duties until SIGINT or SIGTERM, then exit 0:
//	    pending and partial requests, consent sync, the declared
//	    retention policies, audit forwarding (when
//	    STEWARD_AUDIT_FORWARD_URL is set) and export expiry. inprocess
//	    (the default) is background.Runner.Run; river runs them as River
//	    jobs (package riverjobs) on PostgreSQL only, migrating River's
//	    tables first, with RescueStuckJobsAfter above the job timeouts
//	    (twice --job-timeout when given). --interval sets the time
//	    between passes of every duty (at least 1s for River). It logs to
//	    standard error with log/slog, never a user ID; --json prints the
//	    engine and duties when it stops.
//
// Progress goes to standard error, results to standard output. Every
// command takes --json and then writes its result as JSON on standard
// output (export without -o writes the export document itself); errors
// stay plain text on standard error. erase, cancel, replay, retention
// apply and hold release ask "[y/N]" on standard error and read the
// answer from standard input unless --yes; no answer (end of input) is
// a no.
//
// Each command is one file beside these, listed in commands() in
// root.go.
//
// # Global flags and environment
//
// A flag wins over its variable; the variable over the default.
//
//	--db DSN            STEWARD_DB       SQLite file (default steward.db) or postgres:// URL
//	--ledger-db DSN     STEWARD_LEDGER_DB  the ledger of erased users, when the application keeps
//	                                     it apart (privacy.WithLedger): SQLite file or postgres://
//	                                     URL; default the request store's, in --db
//	--config FILE       STEWARD_CONFIG   the application's declarations (below)
//	--actor WHO         STEWARD_ACTOR    a user ID or system:NAME (default system:cli), recorded
//	                                     as the actor of audit events, requests and holds
//	--audit-key-file F  STEWARD_AUDIT_KEY_FILE  the application's key file (audit.LoadKeyFile's),
//	                                     or a file holding a hex or base64 secret;
//	                                     refused when group or others can read it
//	                    STEWARD_AUDIT_KEY        the audit key itself, "<id>:<base64 secret>"
//	                                     (audit.ParseKey) or hex or base64 (never a flag)
//	--audit-key-id ID   STEWARD_AUDIT_KEY_ID     the key's ID, as the application's audit.WithKey;
//	                                     needed for a bare secret only
//	                    CLERK_SECRET_KEY         Clerk's secret key (never a flag)
//	--clerk-api-url URL STEWARD_CLERK_API_URL    Clerk Backend API base (default Clerk's), such as a
//	                                     clerktest server's URL; https, or http to localhost
//	                    STEWARD_AUDIT_FORWARD_URL    audit forward's --to
//	                    STEWARD_AUDIT_FORWARD_TOKEN  sent to the collector as a bearer token
//	                    STEWARD_NOW      an RFC 3339 time taken as now, for tests and
//	                                     reproducible reports; leave it unset in operation
//	--json                               results as JSON
//
// The audit key pseudonymises user IDs exactly as the application's
// Logger does; it must be the application's active key and ID. A key
// file as audit.LoadKeyFile writes it (a key a line, the active one first,
// then those a rotation retired) names its keys itself: the command
// pseudonymises with the first and still finds holds, finished requests
// and ledger entries made under the others. It is
// needed by the commands that write audit events (export, erase, resume,
// cancel, replay, worker, retention apply, hold place and hold release,
// whose changes are audited before they are made) and by those that name users
// by pseudonym (hold list, show). Neither secret is ever printed. Clerk's
// key is needed by export, erase, resume, replay and worker, and used by
// cancel when set.
//
// # Declarations
//
// The --config file declares, in JSON, what the application registers
// with its privacy.Service and retention.Engine, so that the command's
// requests have the same steps as the application's. Without it the
// command registers no DataStore (an erasure is the identity alone) and
// no retention policy. The names must match the application's: a request
// whose steps name a store the command lacks fails that step with "not
// registered" until the configuration has it.
//
//	{
//	  "storeName": "application_database",        // sqldata.WithName (this is the default)
//	  "tables": [                                 // sqldata.Table, field names as in Go
//	    {"name": "orders", "userColumn": "user_id", "category": "orders",
//	     "columns": [{"name": "id"}, {"name": "total_cents", "as": "totalCents"}],
//	     "anonymise": [{"column": "user_id", "null": true},
//	                   {"column": "status", "fixed": "erased"},
//	                   {"column": "anonymised_at", "erasedAt": true}]},
//	    {"name": "order_items", "via": {"parent": "orders", "column": "order_id"}}
//	  ],
//	  "undeclared": ["order_status_changes"],     // sqldata.WithUndeclared
//	  "consent": true,                            // register consent.Manager.DataStore() after the tables
//	  "identityName": "identity",                 // privacy.WithIdentityName
//	  "regime": "gdpr",                           // privacy.WithRegime
//	  "retention": [                              // retention.Policy over a retention/sqltarget table
//	    {"name": "activity_logs", "table": "activity_log", "timeColumn": "created_at",
//	     "subjectColumn": "user_id", "maxAge": "90d", "action": "delete", "batchSize": 1000},
//	    {"name": "old_ips", "table": "logins", "timeColumn": "at", "epoch": "seconds",
//	     "anonymise": ["ip"], "maxAge": "720h", "action": "anonymise"}
//	  ]
//	}
//
// (Comments are not JSON; leave them out.) Unknown fields are refused.
// maxAge is days ("90d") or a Go duration ("36h"). sqldata.Derived
// anonymisation and the notify_then_erase policy need the application's
// Go code (a function, a Notifier), so the file cannot declare them: run
// those in the application.
//
// # Exit codes
//
//	0  done
//	1  failed: nothing or not everything was done, and the message says
//	   why (a database or Clerk error, a broken audit chain, a held user,
//	   a question answered no, an interrupted run)
//	2  usage: a bad command line, flag, environment variable or
//	   declaration; nothing was done
//	3  partial: some of the work was done and the rest is left for a
//	   later run (an erasure that ended partial, resume --pending with
//	   requests still failing, a retention apply or audit forward that
//	   stopped part-way, a replay that erased some users again but not
//	   all)
//
// # Personal data in output
//
// Output about the user named on the command line may show that user's
// ID (export, erase, hold place). Listings and request details never
// show other users' IDs: requests are named by request ID, holds and
// show name users by audit pseudonym, and step errors are stored
// redacted by package privacy. Error messages name what was wrong, not
// whom.
package main
