// Command retentionjob runs Steward's default retention policies once,
// as a nightly job would:
//
//	go run ./examples/retentionjob          # dry run: report what would go
//	go run ./examples/retentionjob -apply   # purge, notify and erase
//
// With no environment it works on an in-process fake Clerk and an SQLite
// copy of the example application's tables, seeded with a year of
// activity and a few long-inactive users. It prints a line per batch and
// a final report.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqlstore"
)

func main() {
	apply := flag.Bool("apply", false, "act on the policies instead of only reporting")
	batch := flag.Int("batch", 25, "rows or users per batch")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *apply, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "retentionjob:", err)
		os.Exit(1)
	}
}

// mailer stands in for the application's email service.
type mailer struct{ w io.Writer }

func (m mailer) NotifyInactive(_ context.Context, u steward.User, eraseAt time.Time) error {
	fmt.Fprintf(m.w, "   (mail to %s: your account will be erased on %s unless you sign in)\n", u.FirstName, eraseAt.Format(time.DateOnly))
	return nil
}

func run(ctx context.Context, w io.Writer, apply bool, batch int) error {
	now := time.Now().UTC()
	srv := clerktest.NewServer()
	defer srv.Close()
	idp := clerkadapter.New(srv.ClientConfig())
	active := srv.AddUser(steward.User{FirstName: "Ada", CreatedAt: now.AddDate(-2, 0, 0), LastActiveAt: now})
	srv.AddUser(steward.User{FirstName: "Carol", CreatedAt: now.AddDate(-3, 0, 0), LastActiveAt: now.AddDate(-1, -2, 0)})
	srv.AddUser(steward.User{FirstName: "Dan", CreatedAt: now.AddDate(-3, 0, 0), LastActiveAt: now.AddDate(-2, 0, 0),
		PrivateMetadata: map[string]any{retention.NotifiedKey: now.AddDate(0, -2, 0).Format(time.RFC3339)}})

	dir, err := os.MkdirTemp("", "steward-retentionjob-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "app.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if err := exampleschema.Create(ctx, db, sqlstore.SQLite); err != nil {
		return err
	}
	if _, err := exampleschema.Seed(ctx, db, sqlstore.SQLite, active.ID, 200, now); err != nil {
		return err
	}
	// The audit key makes the pseudonyms of audit events and of the
	// ledger of erased users: a real job uses the application's key
	// (STEWARD_AUDIT_KEY, "<id>:<base64 secret>"), never a new one per
	// run, or the people it erases would be unknown to the application's
	// fence. Without it the demo, whose database goes with it, makes one.
	key := audit.Key{ID: "retentionjob-1", Secret: make([]byte, 32)}
	if v := os.Getenv("STEWARD_AUDIT_KEY"); v != "" {
		if key, err = audit.ParseKey(v); err != nil {
			return fmt.Errorf("STEWARD_AUDIT_KEY: %w", err)
		}
	} else if _, err := rand.Read(key.Secret); err != nil {
		return err
	}
	log, err := audit.NewLogger(store.AuditSink(), audit.WithKey(key.ID, key.Secret))
	if err != nil {
		return err
	}
	appData, err := sqldata.New(ctx, db, sqlstore.SQLite, exampleschema.Tables())
	if err != nil {
		return err
	}
	holds := store.Holds()
	svc, err := privacy.NewService(idp, privacy.WithStores(appData), privacy.WithAudit(log),
		privacy.WithRequestStore(store.Requests()), privacy.WithHoldChecker(retention.Checker{Holds: holds}))
	if err != nil {
		return err
	}
	activity, err := sqltarget.New(ctx, db, sqlstore.SQLite, sqltarget.Table{
		Name: exampleschema.ActivityLog, TimeColumn: "created_at", SubjectColumn: "user_id"})
	if err != nil {
		return err
	}
	policies := retention.DefaultPolicies(activity, nil) // the app keeps no sessions table
	for i := range policies {
		policies[i].BatchSize = batch
	}
	engine, err := retention.NewEngine(policies, retention.WithIdentity(idp), retention.WithHolds(holds),
		retention.WithNotifier(mailer{w}), retention.WithEraser(svc), retention.WithAudit(log),
		retention.WithLease(store.Leases(), 10*time.Minute))
	if err != nil {
		return err
	}

	mode := "dry run (pass -apply to act)"
	if apply {
		mode = "applying"
	}
	fmt.Fprintf(w, "retention job, %s, %d policies\n", mode, len(policies))
	rep, err := engine.Run(ctx, retention.RunOptions{DryRun: !apply, Progress: func(p retention.Progress) {
		fmt.Fprintf(w, "   %-15s batch of %d (%d so far)\n", p.Policy, p.Batch, p.Done)
	}})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "report:\n%s\n", b)
	return log.Close(ctx)
}
