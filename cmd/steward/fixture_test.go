package main

import (
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// The fixture's fixed clock and audit key.
const (
	testNow   = "2026-03-01T12:00:00Z"
	testKeyID = "k1"
	testKey   = "5f2b8e0c4a1d9f3e7b6a0c2d4e8f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d0e2f"
)

// fixture is a database prepared for the command, of one dialect, and a
// fake Clerk holding its users.
type fixture struct {
	t       testing.TB
	dialect sqlstore.Dialect
	db      *sql.DB
	store   *sqlstore.Store
	dsn     string // what --db names
	clerk   *clerktest.Server
	now     time.Time
}

// eachDialect runs f on a fresh fixture per dialect: SQLite always,
// PostgreSQL when STEWARD_TEST_POSTGRES_DSN is set.
func eachDialect(t *testing.T, f func(t *testing.T, fx *fixture)) {
	t.Helper()
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		t.Parallel()
		f(t, newFixture(t, db, d))
	})
}

func newFixture(t testing.TB, db *sql.DB, d sqlstore.Dialect) *fixture {
	t.Helper()
	now, _ := time.Parse(time.RFC3339, testNow)
	fx := &fixture{t: t, dialect: d, db: db, now: now}
	st, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	fx.store = st
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exampleschema.Create(ctx, db, d); err != nil {
		t.Fatal(err)
	}
	fx.dsn = dsnOf(t, db, d)
	fx.clerk = clerktest.NewServer(clerktest.WithNow(func() time.Time { return now }))
	t.Cleanup(fx.clerk.Close)
	return fx
}

// dsnOf returns what --db must say to reach db: the SQLite file, or the
// PostgreSQL URL with the test's schema as search_path.
func dsnOf(t testing.TB, db *sql.DB, d sqlstore.Dialect) string {
	t.Helper()
	if d == sqlstore.SQLite {
		var seq int
		var name, file string
		if err := db.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
			t.Fatal(err)
		}
		return file
	}
	var schema string
	if err := db.QueryRow("SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(os.Getenv(sqltest.PostgresDSNEnv))
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("the command's tests need %s as a postgres:// URL", sqltest.PostgresDSNEnv)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// env is the command's whole environment: the fixture's database,
// configuration, Clerk, audit key and clock, then extra.
func (fx *fixture) env(extra ...string) []string {
	config, err := filepath.Abs(filepath.Join("testdata", "config.json"))
	if err != nil {
		fx.t.Fatal(err)
	}
	return append([]string{
		envDB + "=" + fx.dsn,
		envConfig + "=" + config,
		envClerkKey + "=" + fx.clerk.SecretKey(),
		envClerkURL + "=" + fx.clerk.URL,
		envAuditKey + "=" + testKey,
		envAuditKeyID + "=" + testKeyID,
		envNow + "=" + testNow,
	}, extra...)
}

// run runs the command in the fixture's environment.
func (fx *fixture) run(stdin string, args ...string) result {
	fx.t.Helper()
	return runCLI(fx.t, fx.env(), stdin, args...)
}

// addUser adds a user to Clerk with rows rows of application data (none
// when rows is 0).
func (fx *fixture) addUser(id string, rows int) exampleschema.Counts {
	fx.t.Helper()
	fx.clerk.AddUser(steward.User{ID: id, FirstName: "Test", EmailAddresses: []steward.EmailAddress{{Address: id + "@example.com", Verified: true}},
		CreatedAt: fx.now.AddDate(-1, 0, 0), LastActiveAt: fx.now})
	if rows == 0 {
		return exampleschema.Counts{}
	}
	c, err := exampleschema.Seed(fx.t.Context(), fx.db, fx.dialect, id, rows, fx.now)
	if err != nil {
		fx.t.Fatal(err)
	}
	return c
}

// pseudonym is the audit pseudonym of id under the fixture's key.
func pseudonym(t *testing.T, id string) string {
	t.Helper()
	secret, _ := hex.DecodeString(testKey)
	p, err := audit.NewPseudonymizer(audit.Key{ID: testKeyID, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return p.Pseudonym(id)
}

// erasureSteps are the steps of an erasure under testdata/config.json.
func erasureSteps(statuses ...privacy.StepStatus) []privacy.Step {
	steps := []privacy.Step{
		{Name: "application_database", Kind: privacy.StepStore, Status: privacy.StepPending},
		{Name: "consent", Kind: privacy.StepStore, Status: privacy.StepPending},
		{Name: "identity", Kind: privacy.StepIdentity, Status: privacy.StepPending},
		{Name: "audit", Kind: privacy.StepAudit, Status: privacy.StepPending},
	}
	for i, s := range statuses {
		steps[i].Status = s
	}
	return steps
}

// day returns the fixture's date at 09:00 UTC.
func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s+"T09:00:00Z")
	if err != nil {
		panic(err)
	}
	return t
}

// addRequests stores the fixture's requests, one of each situation:
//
//	req_a_overdue  pending erasure, due 2026-02-15 (overdue)
//	req_b_partial  partial erasure: the identity step failed 5 times
//	req_c_held     held erasure (legal hold)
//	req_d_done     completed erasure
//	req_e_ccpa     pending CCPA erasure, received 2026-02-27
func (fx *fixture) addRequests() {
	fx.t.Helper()
	partial := erasureSteps(privacy.StepDone, privacy.StepDone, privacy.StepFailed)
	partial[0].Attempts, partial[0].Erased = 1, 12
	partial[1].Attempts = 1
	partial[2].Attempts, partial[2].Error = 5, "identity: clerkadapter: delete user: 503 Service Unavailable"
	done := erasureSteps(privacy.StepDone, privacy.StepDone, privacy.StepDone, privacy.StepDone)
	for i := range done {
		done[i].Attempts = 1
	}
	reqs := []privacy.Request{
		{ID: "req_a_overdue", UserID: "user_carol", Actor: "system:privacy", Regime: privacy.GDPR, Status: privacy.StatusPending,
			ReceivedAt: day("2026-01-15"), Steps: erasureSteps()},
		{ID: "req_b_partial", UserID: "user_dan", Actor: "user_admin", Regime: privacy.GDPR, Status: privacy.StatusPartial,
			ReceivedAt: day("2026-02-20"), Steps: partial},
		{ID: "req_c_held", UserID: "user_erin", Actor: "system:privacy", Regime: privacy.GDPR, Status: privacy.StatusHeld,
			ReceivedAt: day("2026-02-25"), Reason: "litigation: case 2026-17", Steps: erasureSteps()},
		{ID: "req_d_done", UserID: "user_frank", Actor: "system:privacy", Regime: privacy.GDPR, Status: privacy.StatusCompleted,
			ReceivedAt: day("2026-02-01"), CompletedAt: day("2026-02-03"), Steps: done},
		{ID: "req_e_ccpa", UserID: "user_gus", Actor: "system:privacy", Regime: privacy.CCPA, Status: privacy.StatusPending,
			ReceivedAt: day("2026-02-27"), Steps: erasureSteps()},
	}
	for _, r := range reqs {
		r.Kind = privacy.KindErasure
		r.DueAt = r.Regime.Deadline(r.ReceivedAt)
		r.UpdatedAt = r.ReceivedAt
		if !r.CompletedAt.IsZero() {
			r.UpdatedAt = r.CompletedAt
		}
		if err := fx.store.Requests().Create(fx.t.Context(), r); err != nil {
			fx.t.Fatal(err)
		}
	}
	if err := fx.store.Holds().Place(fx.t.Context(), retention.Hold{UserID: "user_erin", Reason: "litigation: case 2026-17",
		PlacedBy: "system:legal", PlacedAt: day("2026-02-24")}); err != nil {
		fx.t.Fatal(err)
	}
}

// logEvents writes n audit events about user under the fixture's key.
func (fx *fixture) logEvents(n int, user string) {
	fx.t.Helper()
	secret, _ := hex.DecodeString(testKey)
	log, err := audit.NewLogger(fx.store.AuditSink(), audit.WithKey(testKeyID, secret), audit.WithNow(func() time.Time { return fx.now }))
	if err != nil {
		fx.t.Fatal(err)
	}
	for i := range n {
		if err := log.Log(fx.t.Context(), audit.Event{Type: audit.DataAccess, Subject: user, Actor: "system:test",
			Details: map[string]any{"n": i}}); err != nil {
			fx.t.Fatal(err)
		}
	}
	if err := log.Close(fx.t.Context()); err != nil {
		fx.t.Fatal(err)
	}
}
