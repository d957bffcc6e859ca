// Command quickstart walks through Steward's whole job with no account,
// no network and no setup:
//
//	go run ./examples/quickstart
//
// It starts an in-process fake Clerk (clerktest) seeded with a few users,
// opens an SQLite database in a temporary directory holding the example
// application's tables, and then shows, step by step: role checks, a
// consent change, a data export written to a file, an erasure with its
// DeletionResult, a retention dry run, and the audit chain verified.
//
// With CLERK_SECRET_KEY set it talks to your real Clerk instance instead,
// read-only: it checks roles and exports the user named by -user. Consent
// changes and erasure need -allow-delete, and then act on that user.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

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
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqlstore"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.user, "user", "", "with CLERK_SECRET_KEY: the user to export (and, with -allow-delete, to erase)")
	flag.BoolVar(&cfg.allowDelete, "allow-delete", false, "with CLERK_SECRET_KEY: allow consent changes and erasure of -user")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the database and the export (default: a new temporary directory)")
	flag.Parse()
	cfg.secretKey = os.Getenv("CLERK_SECRET_KEY")
	if err := run(context.Background(), os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

type config struct {
	secretKey   string
	user        string
	allowDelete bool
	dir         string
}

// world is everything the walk-through uses, wired together.
type world struct {
	idp      steward.IdentityProvider
	store    *sqlstore.Store
	log      *audit.Logger
	authz    *rbac.Authorizer
	consent  *consent.Manager
	privacy  *privacy.Service
	engine   *retention.Engine
	subject  string // the user whose data is exported and erased
	who      string // how the output names the subject
	users    []steward.User
	readOnly bool
}

func run(ctx context.Context, w io.Writer, cfg config) error {
	dir := cfg.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "steward-quickstart-"); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "Steward quickstart")
	fmt.Fprintln(w, "   working directory:", dir)

	wd, cleanup, err := setup(ctx, w, cfg, dir)
	if err != nil {
		return err
	}
	defer cleanup()

	if err := roleChecks(w, wd); err != nil {
		return err
	}
	if err := consentChange(ctx, w, wd); err != nil {
		return err
	}
	if err := export(ctx, w, wd, dir); err != nil {
		return err
	}
	if err := erase(ctx, w, wd); err != nil {
		return err
	}
	if err := retentionDryRun(ctx, w, wd); err != nil {
		return err
	}
	return verifyAudit(ctx, w, wd)
}

func step(w io.Writer, n int, title string) { fmt.Fprintf(w, "\n%d. %s\n", n, title) }

// setup builds the identity provider (fake or real Clerk), the SQLite
// database with the example schema, and the Steward services over them.
func setup(ctx context.Context, w io.Writer, cfg config, dir string) (*world, func(), error) {
	wd := &world{}
	cleanup := func() {}
	now := time.Now().UTC()

	step(w, 0, "Set up: identity provider, SQLite database, audit log")
	if cfg.secretKey != "" {
		wd.idp = clerkadapter.NewFromSecretKey(cfg.secretKey, clerkadapter.WithRateLimit(90, 10*time.Second))
		wd.readOnly = !cfg.allowDelete
		wd.subject = cfg.user
		wd.who = "the user"
		fmt.Fprintln(w, "   identity: your Clerk instance (CLERK_SECRET_KEY)", map[bool]string{true: "read-only", false: "with -allow-delete"}[wd.readOnly])
		for u, err := range wd.idp.ListUsers(ctx, steward.UserQuery{Limit: 3}) {
			if err != nil {
				return nil, cleanup, fmt.Errorf("listing Clerk users: %w", err)
			}
			wd.users = append(wd.users, u)
		}
	} else {
		srv := clerktest.NewServer()
		cleanup = srv.Close
		wd.idp = clerkadapter.New(srv.ClientConfig())
		verified := func(addr string) []steward.EmailAddress {
			return []steward.EmailAddress{{Address: addr, Verified: true}}
		}
		wd.users = []steward.User{
			srv.AddUser(steward.User{FirstName: "Ada", LastName: "Lovelace", EmailAddresses: verified("ada@example.com"),
				PublicMetadata: map[string]any{"role": "admin"}, LastActiveAt: now}),
			srv.AddUser(steward.User{FirstName: "Bob", LastName: "Builder", EmailAddresses: verified("bob@example.com"),
				PublicMetadata: map[string]any{"role": "user"}, LastActiveAt: now}),
			srv.AddUser(steward.User{FirstName: "Carol", EmailAddresses: []steward.EmailAddress{{Address: "carol@example.com"}},
				CreatedAt: now.AddDate(-2, 0, 0), LastActiveAt: now.AddDate(-1, -1, 0)}),
		}
		wd.subject = wd.users[1].ID
		wd.who = "Bob"
		fmt.Fprintln(w, "   identity: in-process fake Clerk at", srv.URL, "with 3 users (Ada admin, Bob user, Carol unverified and inactive)")
	}

	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "steward.db"))
	if err != nil {
		return nil, cleanup, err
	}
	prev := cleanup
	cleanup = func() { db.Close(); prev() }
	if wd.store, err = sqlstore.New(db, sqlstore.SQLite); err != nil {
		return nil, cleanup, err
	}
	if err := wd.store.Migrate(ctx); err != nil {
		return nil, cleanup, err
	}
	if err := exampleschema.Create(ctx, db, sqlstore.SQLite); err != nil {
		return nil, cleanup, err
	}
	if wd.subject != "" && cfg.secretKey == "" {
		total := 0
		for _, u := range wd.users[:2] { // Ada and Bob have orders, preferences and activity
			counts, err := exampleschema.Seed(ctx, db, sqlstore.SQLite, u.ID, 40, now)
			if err != nil {
				return nil, cleanup, err
			}
			total += counts.Total()
		}
		fmt.Fprintf(w, "   database: %s, example app tables with %d rows for Ada and Bob\n", filepath.Join(dir, "steward.db"), total)
	}

	// The audit key makes every pseudonym, so it must outlive restarts:
	// from STEWARD_AUDIT_KEY, or a key file created once beside the
	// database and read ever after.
	var key audit.Key
	if v := os.Getenv("STEWARD_AUDIT_KEY"); v != "" {
		if key, err = audit.ParseKey(v); err != nil {
			return nil, cleanup, fmt.Errorf("STEWARD_AUDIT_KEY: %w", err)
		}
	} else if key, _, err = audit.LoadKeyFile(filepath.Join(dir, "audit.key"), "quickstart-1"); err != nil {
		return nil, cleanup, err
	}
	if wd.log, err = audit.NewLogger(wd.store.AuditSink(), audit.WithKey(key.ID, key.Secret)); err != nil {
		return nil, cleanup, err
	}
	fmt.Fprintln(w, "   audit: hash-chained events in SQLite, user IDs as keyed HMAC pseudonyms")

	if wd.authz, err = rbac.Compile(rbac.DefaultPolicy()); err != nil {
		return nil, cleanup, err
	}
	if wd.consent, err = consent.NewManager(wd.store.Consent(), wd.idp, consent.WithAudit(wd.log)); err != nil {
		return nil, cleanup, err
	}
	appData, err := sqldata.New(ctx, db, sqlstore.SQLite, exampleschema.Tables())
	if err != nil {
		return nil, cleanup, err
	}
	holds := wd.store.Holds()
	if wd.privacy, err = privacy.NewService(wd.idp,
		privacy.WithStores(appData, wd.consent.DataStore()),
		privacy.WithAudit(wd.log),
		privacy.WithRequestStore(wd.store.Requests()),
		privacy.WithHoldChecker(retention.Checker{Holds: holds}),
		privacy.WithAuthorizer(wd.authz),
	); err != nil {
		return nil, cleanup, err
	}
	wd.engine, err = retentionEngine(ctx, db, wd, holds)
	return wd, cleanup, err
}

func retentionEngine(ctx context.Context, db *sql.DB, wd *world, holds *sqlstore.Holds) (*retention.Engine, error) {
	activity, err := sqltarget.New(ctx, db, sqlstore.SQLite, sqltarget.Table{
		Name: exampleschema.ActivityLog, TimeColumn: "created_at", SubjectColumn: "user_id"})
	if err != nil {
		return nil, err
	}
	// The example app keeps no sessions of its own: nil leaves that policy out.
	return retention.NewEngine(retention.DefaultPolicies(activity, nil),
		retention.WithIdentity(wd.idp), retention.WithHolds(holds), retention.WithEraser(wd.privacy),
		retention.WithNotifier(printNotifier{}), retention.WithAudit(wd.log))
}

type printNotifier struct{}

func (printNotifier) NotifyInactive(context.Context, steward.User, time.Time) error { return nil }

func roleChecks(w io.Writer, wd *world) error {
	step(w, 1, "Role checks (rbac, the data model's policy)")
	perms := []rbac.Permission{rbac.ChatSend, rbac.ProfileEdit, rbac.AdminUsers}
	for _, u := range wd.users {
		p := rbac.Principal{UserID: u.ID, Role: wd.authz.ParseRole(u.PublicMetadata["role"]),
			EmailVerified: u.EmailVerified(), Banned: u.Banned, Locked: u.Locked}
		fmt.Fprintf(w, "   %-6s role=%-5s verified=%-5v", name(u), p.Role, p.EmailVerified)
		for _, perm := range perms {
			fmt.Fprintf(w, "  %s=%v", perm, wd.authz.Allowed(p, perm))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "  ", wd.authz.Explain(rbac.RoleAdmin, rbac.AdminUsers))
	return nil
}

func name(u steward.User) string {
	if u.FirstName != "" {
		return u.FirstName
	}
	return "(user)"
}

func consentChange(ctx context.Context, w io.Writer, wd *world) error {
	step(w, 2, "Consent: record a change, check it, mirror it to Clerk")
	if wd.readOnly || wd.subject == "" {
		fmt.Fprintln(w, "   skipped: read-only (pass -user and -allow-delete to change consent)")
		return nil
	}
	if _, err := wd.consent.Update(ctx, wd.subject, map[consent.Purpose]bool{
		consent.Marketing: true, consent.Analytics: false,
	}, consent.Meta{PolicyVersion: 1, Source: "banner"}); err != nil {
		return err
	}
	for _, p := range []consent.Purpose{consent.Marketing, consent.Analytics} {
		ok, err := wd.consent.Allowed(ctx, wd.subject, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %s allows %s: %v\n", wd.who, p, ok)
	}
	u, err := wd.idp.GetUser(ctx, wd.subject)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(u.PublicMetadata["consent"])
	fmt.Fprintf(w, "   Clerk public metadata consent: %s\n", b)
	return nil
}

func export(ctx context.Context, w io.Writer, wd *world, dir string) error {
	step(w, 3, "Export (GDPR Art. 15/20): one JSON document, streamed")
	if wd.subject == "" {
		fmt.Fprintln(w, "   skipped: pass -user to export a user")
		return nil
	}
	path := filepath.Join(dir, "user-data.json")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := wd.privacy.Export(ctx, wd.subject, f); err != nil {
		f.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	var doc struct {
		FormatVersion any             `json:"formatVersion"`
		Data          json.RawMessage `json:"data"`
	}
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("the export is not valid JSON: %w", err)
	}
	fmt.Fprintf(w, "   wrote %s (%d bytes, format version %v)\n", path, info.Size(), doc.FormatVersion)
	return nil
}

func erase(ctx context.Context, w io.Writer, wd *world) error {
	step(w, 4, "Erasure (GDPR Art. 17): a durable, checkpointed saga")
	if wd.readOnly || wd.subject == "" {
		fmt.Fprintln(w, "   skipped: read-only (pass -user and -allow-delete to erase)")
		return nil
	}
	res, err := wd.privacy.Erase(ctx, wd.subject)
	if err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	b, _ := json.MarshalIndent(res, "   ", "  ")
	fmt.Fprintf(w, "   DeletionResult: %s\n", b)
	if _, err := wd.idp.GetUser(ctx, wd.subject); err == nil {
		return fmt.Errorf("the user still exists after erasure")
	}
	fmt.Fprintf(w, "   %s is gone from Clerk and the app tables (orders kept, anonymised)\n", wd.who)
	// The ledger keeps fencing the user: the app guards its own writes
	// with one line, and Steward's session middleware, consent and
	// exports make the same check.
	if err := wd.privacy.CheckFence(ctx, wd.subject); errors.Is(err, privacy.ErrErased) {
		fmt.Fprintf(w, "   fenced: writes and sessions for %s are refused (the ledger holds a pseudonym, not the ID)\n", wd.who)
	}
	return nil
}

func retentionDryRun(ctx context.Context, w io.Writer, wd *world) error {
	step(w, 5, "Retention dry run: what the default policies would do")
	rep, err := wd.engine.Run(ctx, retention.RunOptions{DryRun: true})
	if err != nil {
		return err
	}
	for _, p := range rep.Policies {
		switch p.Action {
		case retention.NotifyThenErase:
			fmt.Fprintf(w, "   %-15s inactive before %s: would notify %d, erase %d (held %d)\n",
				p.Name, p.Cutoff.Format(time.DateOnly), p.Notified, p.Erased, p.Held)
		default:
			fmt.Fprintf(w, "   %-15s older than %s: would %s %d records\n", p.Name, p.Cutoff.Format(time.DateOnly), p.Action, p.Purged)
		}
	}
	return nil
}

func verifyAudit(ctx context.Context, w io.Writer, wd *world) error {
	step(w, 6, "Audit trail: verify the hash chain")
	if err := wd.log.Flush(ctx); err != nil {
		return err
	}
	n := 0
	types := map[audit.Type]int{}
	for e, err := range wd.store.AuditSink().Events(ctx, 0) {
		if err != nil {
			return err
		}
		n++
		types[e.Type]++
	}
	if err := audit.Verify(wd.store.AuditSink().Events(ctx, 0)); err != nil {
		return fmt.Errorf("audit chain broken: %w", err)
	}
	fmt.Fprintf(w, "   events by type: %v\n", types)
	fmt.Fprintf(w, "audit chain verified: %d events\n", n)
	return nil
}
