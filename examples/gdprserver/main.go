// Command gdprserver is a small HTTP service exposing a user's GDPR rights
// and an admin view, behind Clerk session authentication and rbac:
//
//	go run ./examples/gdprserver            # fake Clerk, SQLite in a temp dir
//
//	GET    /api/user/data          export (Art. 15/20), as an attachment
//	DELETE /api/user/delete        erasure (Art. 17), needs X-Confirm-Delete: true
//	GET    /api/user/consent       current consent
//	PUT    /api/user/consent       change consent, e.g. {"marketing": true}
//	GET    /api/admin/requests     pending and overdue requests (admin:users)
//	PUT    /api/admin/users/{id}/role, POST /api/admin/users/{id}/ban ...  (admin:users)
//	POST   /webhooks/clerk         Clerk's webhooks (Svix-signed; no session)
//
// Every route sits behind Clerk session authentication (no valid session
// token: 401). The admin routes also need the admin:users permission
// (rbac.Require: 403 without it). A user's own export, erasure and consent
// need no particular role: data-protection rights belong to every account.
//
// The first line printed is "listening on http://ADDR". With no
// environment it starts an in-process fake Clerk with two demo users, Bob
// (role user) and Ada (role admin), seeds the example application's
// tables with their data, and prints their session tokens, one
// "token <user|admin> <jwt>" line each, and a ready-to-paste curl
// command. CLERK_SECRET_KEY switches to a real Clerk instance; it then
// needs CLERK_AUTHORIZED_PARTIES, the comma-separated origins of the
// frontends whose session tokens it accepts (such as
// "https://app.example.com"), so that tokens minted for another site of
// the same instance are refused, and CLERK_WEBHOOK_SECRET, the endpoint's
// signing secret, enables /webhooks/clerk (with the fake it is always on,
// and its secret printed as "webhooks URL SECRET"). STEWARD_POSTGRES_DSN
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
// The server bounds every connection: 10 s to read the headers, 30 s to
// read a request, 2 minutes to write an answer (an export streams) and 2
// minutes idle between keep-alive requests.
//
// Background duties (resuming erasures and queued exports, consent sync)
// run in one background.Runner. By default its embedded engine runs them
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
	"crypto/rand"
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

	db, dialect, closeDB, err := database()
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
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey("gdprserver-1", key))
	if err != nil {
		return err
	}
	authz := rbac.Default()
	consents, err := consent.NewManager(store.Consent(), idp, consent.WithAudit(log))
	if err != nil {
		return err
	}
	requests := store.Requests()
	if engine == "river" {
		// Every request is created with its River job, or not at all.
		if err := riverjobs.Migrate(ctx, db); err != nil {
			return err
		}
		requests = requests.OnCreate(riverjobs.EnqueueTx)
	}
	svc, err := privacy.NewService(idp,
		privacy.WithStores(appData, consents.DataStore()),
		privacy.WithAudit(log),
		privacy.WithRequestStore(requests),
		privacy.WithHoldChecker(retention.Checker{Holds: store.Holds()}))
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
	// Roles are read live and cached per process; a change made in any
	// replica (useradmin, or a webhook delivered to it) is recorded in
	// the database and dropped from every replica's cache within a
	// second (Run, below).
	live := clerkadapter.NewLiveRoles(idp, &clerkadapter.LiveRolesOptions{
		Invalidations: store.RoleInvalidations(),
		OnError:       func(err error) { fmt.Fprintln(os.Stderr, "gdprserver: role invalidations:", err) },
	})
	admin, err := useradmin.New(idp, authz, useradmin.WithAudit(log), useradmin.WithRoleCache(live), useradmin.WithLeases(store.Leases()))
	if err != nil {
		return err
	}
	auth := clerkadapter.NewSessionAuth(clk.cfg, &clerkadapter.SessionOptions{Roles: live, AuthorizedParties: clk.parties})

	mux := http.NewServeMux()
	mux.Handle("GET /api/user/data", svc.ExportHandler())
	mux.Handle("DELETE /api/user/delete", svc.DeleteHandler())
	mux.Handle("/api/user/consent", consents.Handler())
	mux.Handle("GET /api/admin/requests", rbac.Require(rbac.AdminUsers, rbac.WithAuthorizer(authz), rbac.WithAudit(log))(requestsView(svc)))
	mux.Handle("/api/admin/users/", http.StripPrefix("/api/admin", admin.Handler()))
	if clk.webhookSecret != "" {
		// Message IDs are kept in the database, so a delivery replayed to
		// another replica is refused there too.
		hooks, err := clerkadapter.NewWebhookHandler(clk.webhookSecret, &clerkadapter.WebhookOptions{
			Roles:  auth,
			Replay: store.WebhookMessages(),
		})
		if err != nil {
			return err
		}
		mux.Handle("/webhooks/clerk", hooks)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newHTTPServer(auth.Handler(mux))
	base := "http://" + ln.Addr().String()
	fmt.Fprintln(w, "listening on", base)
	for _, d := range demo {
		fmt.Fprintf(w, "token %s %s\n", d.name, d.token)
	}
	if len(demo) > 0 && clk.webhookSecret != "" {
		fmt.Fprintf(w, "webhooks %s/webhooks/clerk %s\n", base, clk.webhookSecret)
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
func database() (*sql.DB, sqlstore.Dialect, func(), error) {
	if dsn := os.Getenv("STEWARD_POSTGRES_DSN"); dsn != "" {
		db, err := postgres.Open(dsn)
		if err != nil {
			return nil, "", nil, err
		}
		return db, sqlstore.Postgres, func() { db.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "steward-gdprserver-")
	if err != nil {
		return nil, "", nil, err
	}
	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "steward.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return db, sqlstore.SQLite, func() { db.Close(); os.RemoveAll(dir) }, nil
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
