// Command gdprserver is a small HTTP service exposing a user's GDPR rights
// and an admin view, behind Clerk session authentication and rbac:
//
//	go run ./examples/gdprserver            # fake Clerk, SQLite in a temp dir
//
//	GET    /api/user/data          export (Art. 15/20), as an attachment (?async=1 queues it)
//	GET    /api/user/data/download download a queued export (?requestId=...)
//	DELETE /api/user/delete        erasure (Art. 17), needs X-Confirm-Delete: true
//	POST   /api/user/delete/cancel take an erasure back in its grace period, {"requestId", "reason"}
//	GET    /api/user/consent       current consent
//	PUT    /api/user/consent       change consent, e.g. {"marketing": true}
//	GET    /api/admin/requests     pending and overdue requests (admin:users)
//	PUT    /api/admin/users/{id}/role, POST /api/admin/users/{id}/ban ...  (admin:users)
//	GET    /privacy/               the privacy center: what we hold, download, delete, choices, requests
//	GET    /privacy/admin          its admin pages: the request queue, each request, lookup, audit chain (admin:users)
//	GET    /demo/sign-in?as=user   with the fake Clerk: sets the demo user's (or admin's) session cookie
//	POST   /api/webhooks/clerk     Clerk's webhooks (Svix-signed, no session): user.deleted erases the app's data, user.created writes the default role
//
// Every route but the webhook sits behind Clerk session authentication
// (no valid session token: 401); a user whose erasure has begun is
// refused too. The admin routes also need the admin:users permission
// (rbac.Require: 403 without it); an administrator may export, erase or
// cancel for another user with ?userId=. A user's own export, erasure
// and consent need no particular role: data-protection rights belong to
// every account. An erasure waits four hours (STEWARD_GRACE_PERIOD, a Go
// duration; "0s" erases at once) before anything is erased, so that the
// user or an administrator can take it back; the background runner then
// carries it out, and expires queued exports after seven days.
//
// The first line printed is "listening on http://ADDR". With no
// environment it starts an in-process fake Clerk with two demo users, Bob
// (role user) and Ada (role admin), seeds the example application's
// tables with their data, and prints their session tokens, one
// "token <user|admin> <jwt>" line each, the privacy center's URL, one
// "page <user|admin> URL" line each that signs a browser in as that
// demo user and opens the center, and a ready-to-paste curl command. CLERK_SECRET_KEY switches to a real Clerk instance; it then
// needs CLERK_AUTHORIZED_PARTIES, the comma-separated origins of the
// frontends whose session tokens it accepts (such as
// "https://app.example.com"), so that tokens minted for another site of
// the same instance are refused, and CLERK_WEBHOOK_SECRET, the endpoint's
// signing secret, enables /api/webhooks/clerk (with the fake it is always
// on, and its secret printed as "webhooks URL SECRET"). STEWARD_POSTGRES_DSN
// keeps the application tables, audit events, consent, requests, webhook
// message IDs and role invalidations in PostgreSQL instead of SQLite.
// SIGINT or SIGTERM shuts it down gracefully.
//
// Several replicas may run on one PostgreSQL database: audit, requests,
// consent and leases are shared through it; a webhook delivery replayed
// to another replica is refused there (message IDs in the database); and
// a role change or ban made through one replica's admin routes, or
// delivered by webhook to one, reaches every replica's role cache within
// a second (sqlstore's RoleInvalidations, polled by LiveRoles.Run).
//
// The audit key, which makes every pseudonym and so the ledger of erased
// users, must outlive restarts: it comes from STEWARD_AUDIT_KEY
// ("<id>:<base64 secret>") or from the key file STEWARD_AUDIT_KEY_FILE,
// created once with a random key when missing (by default audit.key in
// the data directory: beside the SQLite file, or with PostgreSQL
// STEWARD_DATA_DIR, the working directory unless set, which also keeps
// queued exports). Every replica must use the same key. Back the key up
// apart from the database; see package audit on rotating it. -replay,
// run after restoring a backup, erases again every erased user the
// backup brought back before serving. It finds them by the ledger of
// erased users, which must not be restored with the backup: set
// STEWARD_LEDGER_DSN to a PostgreSQL database of its own to keep it
// there (without it the ledger lives in the main database, shared by
// every replica, and a restore rolls it back too).
//
// The server bounds every connection: 10 s to read the headers, 30 s to
// read a request, 2 minutes to write an answer (an export streams) and 2
// minutes idle between keep-alive requests.
//
// Background duties (erasures after their grace period and those a crash
// left partial, queued exports and their expiry, consent sync) run in one
// background.Runner. By default its embedded engine runs them
// in this process. -jobs river (with STEWARD_POSTGRES_DSN) runs them as
// River jobs instead (package riverjobs): every erasure and queued export
// is created with its job in one transaction, and any number of
// gdprserver processes on the database share the work. CLERK_API_URL
// points the Clerk client at another Backend API (a shared fake Clerk in
// tests); it defaults to Clerk's.
//
// It is the one example that links PostgreSQL's driver (it imports
// package sqldialect/postgres for STEWARD_POSTGRES_DSN) and River;
// quickstart, retentionjob and customstore use SQLite alone and carry
// neither.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clerk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/riverjobs"
	"github.com/stewardlabs/steward/sqldialect/postgres"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/useradmin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	engine := flag.String("jobs", "inprocess", "where background duties run: inprocess, or river (needs STEWARD_POSTGRES_DSN)")
	flag.BoolVar(&replay, "replay", false, "before serving, erase again every erased user a restored backup brought back (privacy.Service.Replay)")
	flag.DurationVar(&jobTimeout, "job-timeout", 0,
		"with -jobs river: how long an erasure or export job may run (default: riverjobs' defaults); a job whose process died is rescued after twice that")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *engine); err != nil {
		fmt.Fprintln(os.Stderr, "gdprserver:", err)
		os.Exit(1)
	}
}

// replay is the -replay flag: run after restoring a backup.
var replay bool

func run(ctx context.Context, w io.Writer, addr, engine string) error {
	if engine != "inprocess" && engine != "river" {
		return fmt.Errorf("-jobs %q: want inprocess or river", engine)
	}
	if engine == "river" && os.Getenv("STEWARD_POSTGRES_DSN") == "" {
		return errors.New("-jobs river needs STEWARD_POSTGRES_DSN: River runs on PostgreSQL")
	}
	clk, err := identity()
	if err != nil {
		return err
	}
	defer clk.close()
	idp, demo := clk.idp, clk.demo

	db, dialect, dataDir, closeDB, err := database()
	if err != nil {
		return err
	}
	defer closeDB()
	store, err := sqlstore.New(db, dialect)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	// The application's own tables, declared for export and erasure.
	if err := exampleschema.Create(ctx, db, dialect); err != nil {
		return err
	}
	for _, d := range demo {
		if _, err := exampleschema.Seed(ctx, db, dialect, d.id, 20, time.Now()); err != nil {
			return err
		}
	}
	appData, err := sqldata.New(ctx, db, dialect, exampleschema.Tables())
	if err != nil {
		return err
	}
	keys, err := auditKeys(dataDir)
	if err != nil {
		return err
	}
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey(keys.active.ID, keys.active.Secret))
	if err != nil {
		return err
	}
	pseudo, err := audit.NewPseudonymizer(keys.active, keys.retired...)
	if err != nil {
		return err
	}
	grace, err := gracePeriod()
	if err != nil {
		return err
	}
	blobs, err := privacy.NewDirBlobs(filepath.Join(dataDir, "exports"))
	if err != nil {
		return err
	}
	authz := rbac.Default()
	// Roles are read live and cached per process; a change made in any
	// replica (useradmin, an erasure, or a webhook delivered to it) is
	// recorded in the database and dropped from every replica's cache
	// within a second (Run, below).
	live := clerkadapter.NewLiveRoles(idp, &clerkadapter.LiveRolesOptions{
		Invalidations: store.RoleInvalidations(),
		OnError:       func(err error) { fmt.Fprintln(os.Stderr, "gdprserver: role invalidations:", err) },
	})
	requests := store.Requests()
	if engine == "river" {
		// Every request is created with its River job, or not at all.
		if err := riverjobs.Migrate(ctx, db); err != nil {
			return err
		}
		requests = requests.OnCreate(riverjobs.EnqueueTx)
	}
	ledger, closeLedger, err := ledgerStore(ctx, store)
	if err != nil {
		return err
	}
	defer closeLedger()
	svc, err := privacy.NewService(idp,
		privacy.WithLedger(ledger),
		privacy.WithStores(appData, consent.NewDataStore(store.Consent())),
		privacy.WithAudit(log),
		privacy.WithPseudonymizer(pseudo),
		privacy.WithRequestStore(requests),
		privacy.WithHoldChecker(retention.Checker{Holds: store.Holds()}),
		privacy.WithAuthorizer(authz), // admins act on other users with ?userId=
		privacy.WithRoleCache(live),
		privacy.WithBlobWriter(blobs),
		privacy.WithGracePeriod(grace))
	if err != nil {
		return err
	}
	consents, err := consent.NewManager(store.Consent(), idp, consent.WithAudit(log), consent.WithFence(svc))
	if err != nil {
		return err
	}
	runner, err := background.New(background.WithPrivacy(svc), background.WithConsent(consents),
		background.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		return err
	}
	startJobs, stopJobs, err := jobEngine(engine, runner, db)
	if err != nil {
		return err
	}
	admin, err := useradmin.New(idp, authz, useradmin.WithAudit(log), useradmin.WithRoleCache(live), useradmin.WithLeases(store.Leases()))
	if err != nil {
		return err
	}
	auth := clerkadapter.NewSessionAuth(clk.cfg, &clerkadapter.SessionOptions{Roles: live, AuthorizedParties: clk.parties, Fence: svc})
	// The privacy center's pages, for users and for the privacy team.
	centerOpts := []privacycenter.Option{
		privacycenter.WithAudit(log),
		privacycenter.WithAuditReader(store.AuditSink()),
		privacycenter.WithHolds(retention.AuditedHolds{Holds: store.Holds(), Audit: log}),
		privacycenter.WithPseudonymizer(pseudo),
		privacycenter.WithAuthorizer(authz),
	}
	if len(demo) > 0 {
		centerOpts = append(centerOpts, privacycenter.WithSignInURL(demoSignInPath+"?as=user"))
	}
	center, err := privacycenter.New(svc, consents, centerOpts...)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /api/user/data", svc.ExportHandler())
	mux.Handle("GET /api/user/data/download", svc.DownloadHandler())
	mux.Handle("DELETE /api/user/delete", svc.DeleteHandler())
	mux.Handle("POST /api/user/delete/cancel", svc.CancelHandler())
	mux.Handle("/api/user/consent", consents.Handler())
	mux.Handle("GET /api/admin/requests", rbac.Require(rbac.AdminUsers, rbac.WithAuthorizer(authz), rbac.WithAudit(log))(requestsView(svc)))
	mux.Handle("/api/admin/users/", http.StripPrefix("/api/admin", admin.Handler()))
	mux.Handle("/privacy", center.Handler())
	mux.Handle("/privacy/", center.Handler())
	if len(demo) > 0 {
		mux.Handle("GET "+demoSignInPath, demoSignIn(demo))
	}
	if clk.webhookSecret != "" {
		// Message IDs are kept in the database, so a delivery replayed to
		// another replica is refused there too.
		hooks, err := clerkadapter.NewWebhookHandler(clk.webhookSecret, &clerkadapter.WebhookOptions{
			OnUserDeleted: clerkadapter.EraseDeletedUsers(svc),
			OnUserCreated: clerkadapter.AssignDefaultRole(idp, "", log),
			Roles:         auth,
			Replay:        store.WebhookMessages(),
		})
		if err != nil {
			return err
		}
		mux.Handle("POST "+webhookPath, hooks)
	} else {
		fmt.Fprintln(os.Stderr, "gdprserver: CLERK_WEBHOOK_SECRET is not set: no webhook route, so accounts deleted in Clerk's own pages keep their data here")
	}

	if replay {
		if os.Getenv(ledgerDSNEnv) == "" {
			fmt.Fprintln(os.Stderr, "gdprserver: -replay: the ledger of erased users is in the database that was restored, so it lost the erasures made after the backup; set "+ledgerDSNEnv+" to keep it in a database of its own")
		}
		n, err := svc.Replay(ctx)
		if err != nil {
			return fmt.Errorf("replaying erasures: %w", err)
		}
		fmt.Fprintf(os.Stderr, "gdprserver: replayed %d erasures\n", n)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Global Privacy Control (Sec-GPC: 1) opts signed-in users out of
	// third-party sharing on every route.
	gpc := consents.HonourGPC(func(r *http.Request, err error) {
		fmt.Fprintln(os.Stderr, "gdprserver: recording a Global Privacy Control opt-out:", err)
	})
	srv := newHTTPServer(auth.Handler(gpc(mux)))
	base := "http://" + ln.Addr().String()
	fmt.Fprintln(w, "listening on", base)
	for _, d := range demo {
		fmt.Fprintf(w, "token %s %s\n", d.name, d.token)
	}
	if len(demo) > 0 && clk.webhookSecret != "" {
		fmt.Fprintf(w, "webhooks %s%s %s\n", base, webhookPath, clk.webhookSecret)
	}
	fmt.Fprintf(w, "privacy center %s/privacy/ (admin pages %s/privacy/admin)\n", base, base)
	for _, d := range demo {
		// Opening this link signs the browser in as the demo user.
		fmt.Fprintf(w, "page %s %s%s?as=%s\n", d.name, base, demoSignInPath, d.name)
	}
	if len(demo) > 0 {
		fmt.Fprintf(w, "try: curl -H 'Authorization: Bearer %s' %s/api/user/data\n", demo[0].token, base)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	jobsCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	if err := startJobs(jobsCtx); err != nil {
		return err
	}
	go func() { _ = live.Run(ctx) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(w, "shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := stopJobs(shutdown); err != nil {
		return err
	}
	cancelJobs()
	if err := svc.Close(shutdown); err != nil {
		return err
	}
	return log.Close(shutdown)
}

// jobEngine returns how to start and stop the engine that runs runner's
// duties: the embedded one (runner.Run in this process), or River jobs on
// PostgreSQL worked by a River client of this process.
// jobTimeout is the -job-timeout flag; 0 keeps riverjobs' defaults.
var jobTimeout time.Duration

func jobEngine(engine string, runner *background.Runner, db *sql.DB) (start, stop func(context.Context) error, err error) {
	if engine == "inprocess" {
		start = func(ctx context.Context) error {
			go func() { _ = runner.Run(ctx) }()
			return nil
		}
		stop = func(context.Context) error { return nil } // cancelling its context stops it
		return start, stop, nil
	}
	var opts []riverjobs.Option
	rescue, other := riverjobs.DefaultExportTimeout+time.Minute, time.Duration(0) // above both default timeouts
	if jobTimeout > 0 {
		opts = append(opts, riverjobs.WithErasureTimeout(jobTimeout), riverjobs.WithExportTimeout(jobTimeout))
		rescue, other = 2*jobTimeout, jobTimeout
	}
	jobs, err := riverjobs.New(runner, db, opts...)
	if err != nil {
		return nil, nil, err
	}
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.New(context.Background(), os.Getenv("STEWARD_POSTGRES_DSN"))
	if err != nil {
		return nil, nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers:      workers,
		Queues:       jobs.Queues(),
		PeriodicJobs: jobs.PeriodicJobs(),
		// A job still running when its process died is picked up again
		// once it has been running this long (River's default is an hour).
		RescueStuckJobsAfter: rescue,
		JobTimeout:           other, // the periodic sweeps'; 0 is River's default
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	start = client.Start
	stop = func(ctx context.Context) error {
		defer pool.Close()
		return client.Stop(ctx)
	}
	return start, stop, nil
}

// keys are the audit keys: the active one, and retired ones still
// needed to find what was made under them.
type keys struct {
	active  audit.Key
	retired []audit.Key
}

// auditKeys reads the audit key from STEWARD_AUDIT_KEY, or from the key
// file STEWARD_AUDIT_KEY_FILE (default: audit.key in dataDir), created
// once when missing. A key made afresh at every start would give every
// person a new pseudonym, and lose the ledger of erased users.
func auditKeys(dataDir string) (keys, error) {
	if v := os.Getenv("STEWARD_AUDIT_KEY"); v != "" {
		k, err := audit.ParseKey(v)
		if err != nil {
			return keys{}, fmt.Errorf("STEWARD_AUDIT_KEY: %w", err)
		}
		return keys{active: k}, nil
	}
	path := os.Getenv("STEWARD_AUDIT_KEY_FILE")
	if path == "" {
		path = filepath.Join(dataDir, "audit.key")
	}
	active, retired, err := audit.LoadKeyFile(path, "gdprserver-1")
	if err != nil {
		return keys{}, fmt.Errorf("STEWARD_AUDIT_KEY_FILE: %w", err)
	}
	return keys{active: active, retired: retired}, nil
}

// defaultGracePeriod is how long an erasure waits before anything is
// erased, so that it can be taken back.
const defaultGracePeriod = 4 * time.Hour

// gracePeriod reads STEWARD_GRACE_PERIOD (default defaultGracePeriod).
func gracePeriod() (time.Duration, error) {
	v := os.Getenv("STEWARD_GRACE_PERIOD")
	if v == "" {
		return defaultGracePeriod, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("STEWARD_GRACE_PERIOD %q is not a duration such as 4h or 0s", v)
	}
	return d, nil
}

// demoSignInPath signs a browser in as a demo user of the fake Clerk.
const demoSignInPath = "/demo/sign-in"

// demoSignIn serves GET ?as=user|admin with the fake Clerk only: it sets
// Clerk's __session cookie to that demo user's token, as Clerk's
// frontend would after a sign-in, and sends the browser to the privacy
// center (the admin pages for admin). It names users by role, never by
// ID, in the URL.
func demoSignIn(demo []demoUser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as := r.URL.Query().Get("as")
		for _, d := range demo {
			if d.name != as {
				continue
			}
			http.SetCookie(w, &http.Cookie{Name: clerkadapter.SessionCookie, Value: d.token, Path: "/",
				HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: 24 * 60 * 60})
			to := "/privacy/"
			if as == "admin" {
				to = "/privacy/admin"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		http.Error(w, "as must be user or admin", http.StatusBadRequest)
	})
}

// webhookPath is where Clerk delivers its webhooks.
const webhookPath = "/api/webhooks/clerk"

// newHTTPServer returns the server for h, with every connection bounded:
// a client that trickles its headers or body, never reads the answer or
// keeps an idle connection open cannot hold a goroutine for ever.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute, // an export streams
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(os.Stderr, nil), slog.LevelError),
	}
}

type demoUser struct{ name, id, token string }

// clerkSetup is the identity side of the server.
type clerkSetup struct {
	idp steward.IdentityProvider
	// cfg is the Clerk config the session middleware verifies against,
	// and parties the authorized parties it accepts.
	cfg     *clerk.ClientConfig
	parties []string
	// demo lists the fake's demo users; empty with a real instance.
	demo []demoUser
	// webhookSecret signs Clerk's webhook deliveries; "" means no
	// webhook endpoint.
	webhookSecret string
	close         func()
}

// identity returns a real instance with CLERK_SECRET_KEY (and
// CLERK_AUTHORIZED_PARTIES, and CLERK_WEBHOOK_SECRET for the webhook
// endpoint), or an in-process fake with two demo users whose tokens it
// returns.
func identity() (clerkSetup, error) {
	if key := os.Getenv("CLERK_SECRET_KEY"); key != "" {
		var parties []string
		for _, p := range strings.Split(os.Getenv("CLERK_AUTHORIZED_PARTIES"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				parties = append(parties, p)
			}
		}
		if len(parties) == 0 {
			return clerkSetup{}, errors.New("CLERK_AUTHORIZED_PARTIES must list the origins whose session tokens to accept, such as https://app.example.com")
		}
		cfg := &clerk.ClientConfig{}
		cfg.Key = clerk.String(key)
		if u := os.Getenv("CLERK_API_URL"); u != "" {
			cfg.URL = clerk.String(u)
		}
		return clerkSetup{idp: clerkadapter.New(cfg), cfg: cfg, parties: parties,
			webhookSecret: os.Getenv("CLERK_WEBHOOK_SECRET"), close: func() {}}, nil
	}
	srv := clerktest.NewServer()
	verified := func(a string) []steward.EmailAddress { return []steward.EmailAddress{{Address: a, Verified: true}} }
	user := srv.AddUser(steward.User{FirstName: "Bob", EmailAddresses: verified("bob@example.com"), PublicMetadata: map[string]any{"role": "user"}})
	admin := srv.AddUser(steward.User{FirstName: "Ada", EmailAddresses: verified("ada@example.com"), PublicMetadata: map[string]any{"role": "admin"}})
	demo := []demoUser{
		{"user", user.ID, srv.SessionToken(user.ID, clerktest.TokenExpiresAt(time.Now().Add(24*time.Hour)))},
		{"admin", admin.ID, srv.SessionToken(admin.ID, clerktest.TokenExpiresAt(time.Now().Add(24*time.Hour)))},
	}
	return clerkSetup{idp: clerkadapter.New(srv.ClientConfig()), cfg: srv.ClientConfig(), parties: []string{clerktest.DefaultAuthorizedParty},
		demo: demo, webhookSecret: srv.WebhookSecret(), close: srv.Close}, nil
}

// database opens PostgreSQL when STEWARD_POSTGRES_DSN is set (its
// run-time parameters, such as search_path, apply to every connection),
// and otherwise an SQLite file in a temporary directory removed on close.
// It also returns the directory that keeps the server's files (the
// audit key file and queued exports by default): the temporary one, or
// with PostgreSQL STEWARD_DATA_DIR (default: the working directory).
func database() (*sql.DB, sqlstore.Dialect, string, func(), error) {
	if dsn := os.Getenv("STEWARD_POSTGRES_DSN"); dsn != "" {
		db, err := postgres.Open(dsn)
		if err != nil {
			return nil, "", "", nil, err
		}
		dir := os.Getenv("STEWARD_DATA_DIR")
		if dir == "" {
			dir = "."
		}
		return db, sqlstore.Postgres, dir, func() { db.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "steward-gdprserver-")
	if err != nil {
		return nil, "", "", nil, err
	}
	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "steward.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", "", nil, err
	}
	return db, sqlstore.SQLite, dir, func() { db.Close(); os.RemoveAll(dir) }, nil
}

// ledgerDSNEnv names a PostgreSQL database that keeps the ledger of
// erased users apart from the application's database, so that a restore
// of the latter does not roll the ledger back with it.
const ledgerDSNEnv = "STEWARD_LEDGER_DSN"

// ledgerStore returns where erased users are recorded: the database of
// STEWARD_LEDGER_DSN (migrated here) when set, else the request store of
// the main database, which every replica shares but a restore of that
// database rolls back.
func ledgerStore(ctx context.Context, main *sqlstore.Store) (privacy.Ledger, func(), error) {
	dsn := os.Getenv(ledgerDSNEnv)
	if dsn == "" {
		return main.Requests(), func() {}, nil
	}
	db, err := postgres.Open(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ledgerDSNEnv, err)
	}
	st, err := sqlstore.New(db, sqlstore.Postgres)
	if err == nil {
		err = st.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("%s: %w", ledgerDSNEnv, err)
	}
	return st.Ledger(), func() { db.Close() }, nil
}

// requestsView lists erasure and export requests needing attention and
// those past their legal deadline.
func requestsView(svc *privacy.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type item struct {
			ID     string         `json:"id"`
			Kind   privacy.Kind   `json:"kind"`
			Status privacy.Status `json:"status"`
			DueAt  time.Time      `json:"dueAt"`
		}
		collect := func(seq func(func(privacy.Request, error) bool)) ([]item, error) {
			out := []item{}
			for req, err := range seq {
				if err != nil {
					return nil, err
				}
				out = append(out, item{req.ID, req.Kind, req.Status, req.DueAt})
			}
			return out, nil
		}
		attention, err1 := collect(svc.NeedsAttention(r.Context()))
		overdue, err2 := collect(svc.Overdue(r.Context()))
		w.Header().Set("Content-Type", "application/json")
		if err := errors.Join(err1, err2); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "could not list requests"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"needsAttention": attention, "overdue": overdue})
	})
}
