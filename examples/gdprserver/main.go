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
//	POST   /api/webhooks/clerk     Clerk's webhooks: user.deleted erases the app's data, user.created writes the default role
//
// Every route but the webhook sits behind Clerk session authentication
// (no valid session token: 401); a user whose erasure has begun is
// refused too. The admin routes also need the admin:users permission
// (rbac.Require: 403 without it); an administrator may export, erase or
// cancel for another user with ?userId=. A user's own export, erasure
// and consent need no particular role: data-protection rights belong to
// every account. An erasure waits four hours (STEWARD_GRACE_PERIOD, a Go
// duration; "0s" erases at once) before anything is erased, so that the
// user or an administrator can take it back; a background loop then
// carries it out, and expires queued exports after seven days.
//
// The first line printed is "listening on http://ADDR". With no
// environment it starts an in-process fake Clerk with two demo users, Bob
// (role user) and Ada (role admin), seeds the example application's
// tables with their data, and prints their session tokens, one
// "token <user|admin> <jwt>" line each, and a ready-to-paste curl
// command, and the fake's webhook signing secret ("webhook whsec_...").
// CLERK_SECRET_KEY switches to a real Clerk instance; it then needs
// CLERK_AUTHORIZED_PARTIES, the comma-separated origins of the frontends
// whose session tokens it accepts (such as "https://app.example.com"),
// so that tokens minted for another site of the same instance are
// refused, and CLERK_WEBHOOK_SECRET (the endpoint's "whsec_..." signing
// secret) to mount the webhook route. STEWARD_POSTGRES_DSN keeps the
// application tables, audit events, consent and requests in PostgreSQL
// instead of SQLite. SIGINT or SIGTERM shuts it down gracefully.
//
// The audit key, which makes every pseudonym and so the ledger of erased
// users, must outlive restarts: it comes from STEWARD_AUDIT_KEY
// ("<id>:<base64 secret>") or from the key file STEWARD_AUDIT_KEY_FILE,
// created once with a random key when missing (by default audit.key in
// the data directory: beside the SQLite file, or with PostgreSQL
// STEWARD_DATA_DIR, the working directory unless set, which also keeps
// queued exports). Back the key up apart from the database; see package
// audit on rotating it.
//
// The server bounds every connection: 10 s to read the headers, 30 s to
// read a request, 2 minutes to write an answer (an export streams) and 2
// minutes idle between keep-alive requests.
//
// It is the one example that links PostgreSQL's driver (it imports
// package sqldialect/postgres for STEWARD_POSTGRES_DSN); quickstart,
// retentionjob and customstore use SQLite alone and carry no pgx code.
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

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqldialect/postgres"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/useradmin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.BoolVar(&replay, "replay", false, "before serving, erase again every erased user a restored backup brought back (privacy.Service.Replay)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "gdprserver:", err)
		os.Exit(1)
	}
}

// replay is the -replay flag: run after restoring a backup.
var replay bool

func run(ctx context.Context, w io.Writer, addr string) error {
	idp, cfg, parties, demo, closeIdP, err := identity()
	if err != nil {
		return err
	}
	defer closeIdP()
	webhookSecret := os.Getenv("CLERK_WEBHOOK_SECRET")
	if len(demo) > 0 {
		webhookSecret = demoWebhookSecret
	}

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
	live := clerkadapter.NewLiveRoles(idp, nil)
	svc, err := privacy.NewService(idp,
		privacy.WithStores(appData, consent.NewDataStore(store.Consent())),
		privacy.WithAudit(log),
		privacy.WithPseudonymizer(pseudo),
		privacy.WithRequestStore(store.Requests()),
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
	admin, err := useradmin.New(idp, authz, useradmin.WithAudit(log), useradmin.WithRoleCache(live))
	if err != nil {
		return err
	}
	auth := clerkadapter.NewSessionAuth(cfg, &clerkadapter.SessionOptions{Roles: live, AuthorizedParties: parties, Fence: svc})

	mux := http.NewServeMux()
	mux.Handle("GET /api/user/data", svc.ExportHandler())
	mux.Handle("GET /api/user/data/download", svc.DownloadHandler())
	mux.Handle("DELETE /api/user/delete", svc.DeleteHandler())
	mux.Handle("POST /api/user/delete/cancel", svc.CancelHandler())
	mux.Handle("/api/user/consent", consents.Handler())
	mux.Handle("GET /api/admin/requests", rbac.Require(rbac.AdminUsers, rbac.WithAuthorizer(authz), rbac.WithAudit(log))(requestsView(svc)))
	mux.Handle("/api/admin/users/", http.StripPrefix("/api/admin", admin.Handler()))
	if webhookSecret != "" {
		wh, err := clerkadapter.NewWebhookHandler(webhookSecret, &clerkadapter.WebhookOptions{
			OnUserDeleted: clerkadapter.EraseDeletedUsers(svc),
			OnUserCreated: clerkadapter.AssignDefaultRole(idp, "", log),
			Roles:         auth,
		})
		if err != nil {
			return err
		}
		mux.Handle("POST /api/webhooks/clerk", wh)
	} else {
		fmt.Fprintln(os.Stderr, "gdprserver: CLERK_WEBHOOK_SECRET is not set: no webhook route, so accounts deleted in Clerk's own pages keep their data here")
	}

	if replay {
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
	srv := newHTTPServer(auth.Handler(mux))
	base := "http://" + ln.Addr().String()
	fmt.Fprintln(w, "listening on", base)
	for _, d := range demo {
		fmt.Fprintf(w, "token %s %s\n", d.name, d.token)
	}
	if len(demo) > 0 {
		fmt.Fprintf(w, "webhook %s\n", webhookSecret)
		fmt.Fprintf(w, "try: curl -H 'Authorization: Bearer %s' %s/api/user/data\n", demo[0].token, base)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go background(ctx, svc) // erasures after their grace period, partial ones, export expiry
	go func() { _ = consents.Run(ctx, 30*time.Second, nil) }()

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
	if err := svc.Close(shutdown); err != nil {
		return err
	}
	return log.Close(shutdown)
}

// background drives requests forward every minute, from every replica
// at once if need be (the request claims keep each to one worker):
// erasures whose grace period ended, those a crash left partial, queued
// exports, and the expiry of exports past their time.
func background(ctx context.Context, svc *privacy.Service) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := svc.ResumePending(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "gdprserver: resuming pending requests:", err)
		}
		if _, err := svc.ExpireExports(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "gdprserver: expiring exports:", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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

// identity returns the identity provider, the Clerk config the session
// middleware verifies against and the authorized parties it accepts: a
// real instance with CLERK_SECRET_KEY (and CLERK_AUTHORIZED_PARTIES), or
// an in-process fake with two demo users whose tokens it returns.
func identity() (steward.IdentityProvider, *clerk.ClientConfig, []string, []demoUser, func(), error) {
	if key := os.Getenv("CLERK_SECRET_KEY"); key != "" {
		var parties []string
		for _, p := range strings.Split(os.Getenv("CLERK_AUTHORIZED_PARTIES"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				parties = append(parties, p)
			}
		}
		if len(parties) == 0 {
			return nil, nil, nil, nil, nil, errors.New("CLERK_AUTHORIZED_PARTIES must list the origins whose session tokens to accept, such as https://app.example.com")
		}
		cfg := &clerk.ClientConfig{}
		cfg.Key = clerk.String(key)
		return clerkadapter.New(cfg), cfg, parties, nil, func() {}, nil
	}
	srv := clerktest.NewServer(clerktest.WithWebhookSecret(demoWebhookSecret))
	verified := func(a string) []steward.EmailAddress { return []steward.EmailAddress{{Address: a, Verified: true}} }
	user := srv.AddUser(steward.User{FirstName: "Bob", EmailAddresses: verified("bob@example.com"), PublicMetadata: map[string]any{"role": "user"}})
	admin := srv.AddUser(steward.User{FirstName: "Ada", EmailAddresses: verified("ada@example.com"), PublicMetadata: map[string]any{"role": "admin"}})
	demo := []demoUser{
		{"user", user.ID, srv.SessionToken(user.ID, clerktest.TokenExpiresAt(time.Now().Add(24*time.Hour)))},
		{"admin", admin.ID, srv.SessionToken(admin.ID, clerktest.TokenExpiresAt(time.Now().Add(24*time.Hour)))},
	}
	return clerkadapter.New(srv.ClientConfig()), srv.ClientConfig(), []string{clerktest.DefaultAuthorizedParty}, demo, srv.Close, nil
}

// demoWebhookSecret signs the fake Clerk's webhooks in the demo; it is
// printed at start, so a test or a curl can sign deliveries.
const demoWebhookSecret = "whsec_Z2RwcnNlcnZlciBkZW1vIHdlYmhvb2sgc2VjcmV0IQ=="

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
