package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestLedgerApartFromTheRestoredDatabase: with STEWARD_LEDGER_DSN the
// ledger of erased users lives in a database of its own, so a restore of
// the main database cannot roll it back; without it, in the main one.
func TestLedgerApartFromTheRestoredDatabase(t *testing.T) {
	ctx := context.Background()
	mainDB, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "steward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mainDB.Close() })
	main, err := sqlstore.New(mainDB, sqlstore.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := main.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	entry := func(subject string) privacy.LedgerEntry {
		return privacy.LedgerEntry{Subject: subject, KeyID: "k1", RequestID: "req_1", ErasedAt: time.Now().UTC().Truncate(time.Second)}
	}
	inMain := func(subject string) bool {
		_, ok, err := main.Requests().FindErased(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Setenv(ledgerDSNEnv, "")
	l, closeLedger, err := ledgerStore(ctx, main)
	if err != nil {
		t.Fatal(err)
	}
	closeLedger()
	if err := l.RecordErased(ctx, entry("hmac-sha256:k1:aa")); err != nil {
		t.Fatal(err)
	}
	if !inMain("hmac-sha256:k1:aa") {
		t.Errorf("without %s the ledger is not the main database's", ledgerDSNEnv)
	}

	dsn := os.Getenv(sqltest.PostgresDSNEnv)
	if dsn == "" {
		t.Skipf("set %s to check a ledger kept in PostgreSQL", sqltest.PostgresDSNEnv)
	}
	var schema string
	if err := sqltest.Open(t, sqlstore.Postgres).QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Setenv(ledgerDSNEnv, u.String())
	l, closeLedger, err = ledgerStore(ctx, main)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLedger()
	if err := l.RecordErased(ctx, entry("hmac-sha256:k1:bb")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.FindErased(ctx, "hmac-sha256:k1:bb"); !ok || err != nil {
		t.Errorf("the separate ledger does not find its entry: %v, %v", ok, err)
	}
	if inMain("hmac-sha256:k1:bb") {
		t.Errorf("with %s set the entry went to the main database", ledgerDSNEnv)
	}
}
