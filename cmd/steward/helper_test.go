package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqldialect/postgres"
	"github.com/stewardlabs/steward/sqlstore"
)

// exportOutEnv names the file libraryExport writes.
const exportOutEnv = "STEWARD_CLI_TEST_OUT"

// libraryExport is the baseline of the export benchmark: what an
// application does to export a user with the library alone, over the
// same database, Clerk and stores as the command's configuration
// (testdata/config.json declares exampleschema's tables and consent).
// It reads the command's environment variables and the user from
// STEWARD_CLI_TEST_USER, and writes the document to STEWARD_CLI_TEST_OUT.
func libraryExport(ctx context.Context, _ []string, _ io.Writer) error {
	dsn := os.Getenv(envDB)
	var (
		db  *sql.DB
		d   sqlstore.Dialect
		err error
	)
	if strings.HasPrefix(dsn, "postgres") {
		db, err = postgres.Open(dsn)
		d = sqlstore.Postgres
	} else {
		db, err = sqlstore.OpenSQLite(dsn)
		d = sqlstore.SQLite
	}
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := sqlstore.New(db, d)
	if err != nil {
		return err
	}
	secret, err := hex.DecodeString(os.Getenv(envAuditKey))
	if err != nil {
		return err
	}
	log, err := audit.NewLogger(st.AuditSink(), audit.WithKey(os.Getenv(envAuditKeyID), secret))
	if err != nil {
		return err
	}
	defer log.Close(ctx)
	cfg := &clerk.ClientConfig{}
	cfg.Key = clerk.String(os.Getenv(envClerkKey))
	cfg.URL = clerk.String(os.Getenv(envClerkURL) + "/v1")
	idp := clerkadapter.New(cfg)
	appData, err := sqldata.New(ctx, db, d, exampleschema.Tables())
	if err != nil {
		return err
	}
	consents, err := consent.NewManager(st.Consent(), idp, consent.WithAudit(log))
	if err != nil {
		return err
	}
	svc, err := privacy.NewService(idp, privacy.WithStores(appData, consents.DataStore()), privacy.WithAudit(log),
		privacy.WithRequestStore(st.Requests()), privacy.WithHoldChecker(retention.Checker{Holds: st.Holds()}))
	if err != nil {
		return err
	}
	user := os.Getenv("STEWARD_CLI_TEST_USER")
	out := os.Getenv(exportOutEnv)
	if user == "" || out == "" {
		return errors.New("STEWARD_CLI_TEST_USER and " + exportOutEnv + " must be set")
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if err := svc.Export(ctx, user, w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
