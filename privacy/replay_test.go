package privacy_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// rowsOf counts userID's rows in the example schema.
func rowsOf(t *testing.T, db *sql.DB, userID string) int {
	t.Helper()
	n := 0
	for _, q := range []string{
		`SELECT COUNT(*) FROM user_profiles WHERE clerk_id = ?`,
		`SELECT COUNT(*) FROM orders WHERE user_id = ?`,
		`SELECT COUNT(*) FROM user_preferences WHERE user_id = ?`,
		`SELECT COUNT(*) FROM activity_log WHERE user_id = ?`,
	} {
		var c int
		if err := db.QueryRow(q, userID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// TestReplayAfterRestore restores the application's SQLite file from a
// copy made before an erasure: Replay finds the erased user there by the
// ledger (kept in another database, which the restore did not touch) and
// erases them again, and nobody else.
func TestReplayAfterRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	appPath, backup := filepath.Join(dir, "app.db"), filepath.Join(dir, "backup.db")

	// Steward's own records live in a database of their own.
	stewardDB, err := sqlstore.OpenSQLite(filepath.Join(dir, "steward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stewardDB.Close() })
	st, err := sqlstore.New(stewardDB, sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	openApp := func() *sql.DB {
		db, err := sqlstore.OpenSQLite(appPath)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	app := openApp()
	if err := exampleschema.Create(ctx, app, sqlstore.SQLite); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, u := range []string{"user_erased", "user_kept"} {
		if _, err := exampleschema.Seed(ctx, app, sqlstore.SQLite, u, 40, now); err != nil {
			t.Fatal(err)
		}
	}
	// The nightly backup, before the erasure.
	if _, err := app.ExecContext(ctx, `VACUUM INTO '`+backup+`'`); err != nil {
		t.Fatal(err)
	}

	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_erased"})
	idp.Put(steward.User{ID: "user_kept"})
	sink := audit.NewMemorySink()
	log, err := audit.NewLogger(sink, audit.WithKey("k1", bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	service := func(db *sql.DB) *privacy.Service {
		data, err := sqldata.New(ctx, db, sqlstore.SQLite, exampleschema.Tables())
		if err != nil {
			t.Fatal(err)
		}
		svc, err := privacy.NewService(idp, privacy.WithStores(data), privacy.WithAudit(log),
			privacy.WithRequestStore(st.Requests()), privacy.WithLedger(st.Ledger()))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	first, err := service(app).Erase(ctx, "user_erased")
	if err != nil || !first.Success {
		t.Fatalf("Erase = %+v, %v", first, err)
	}
	kept := rowsOf(t, app, "user_kept")
	if rowsOf(t, app, "user_erased") != 0 || kept == 0 {
		t.Fatalf("before the restore: %d rows of the erased user, %d of the other", rowsOf(t, app, "user_erased"), kept)
	}

	// Restore the backup over the application's database.
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{appPath + "-wal", appPath + "-shm"} {
		_ = os.Remove(f)
	}
	copyFile(t, backup, appPath)
	app = openApp()
	t.Cleanup(func() { app.Close() })
	if rowsOf(t, app, "user_erased") == 0 {
		t.Fatal("the restore did not bring the erased user back")
	}

	svc := service(app)
	n, err := svc.Replay(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	if got := rowsOf(t, app, "user_erased"); got != 0 {
		t.Errorf("%d rows of the erased user after Replay", got)
	}
	if got := rowsOf(t, app, "user_kept"); got != kept {
		t.Errorf("Replay changed another user: %d rows, want %d", got, kept)
	}
	if _, err := idp.GetUser(ctx, "user_kept"); err != nil {
		t.Errorf("Replay touched another user's identity: %v", err)
	}
	var replays []any
	for _, e := range sink.Snapshot() {
		if e.Type == audit.DataDeletion && e.Details["status"] == "completed" && e.Details["replayOf"] != nil {
			replays = append(replays, e.Details["replayOf"])
		}
	}
	if diff := cmp.Diff([]any{first.RequestID}, replays); diff != "" {
		t.Errorf("replay completion events (-want +got):\n%s", diff)
	}
	if n, err := svc.Replay(ctx); n != 0 || err != nil {
		t.Errorf("a second Replay = %d, %v; want nothing to do", n, err)
	}
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		t.Error(err)
	}
}
