package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqldialect/postgres"
	"github.com/stewardlabs/steward/sqlstore"
)

// Environment variables; doc.go describes each.
const (
	envDB           = "STEWARD_DB"
	envLedgerDB     = "STEWARD_LEDGER_DB"
	envConfig       = "STEWARD_CONFIG"
	envActor        = "STEWARD_ACTOR"
	envAuditKey     = "STEWARD_AUDIT_KEY"
	envAuditKeyFile = "STEWARD_AUDIT_KEY_FILE"
	envAuditKeyID   = "STEWARD_AUDIT_KEY_ID"
	envClerkKey     = "CLERK_SECRET_KEY"
	envClerkURL     = "STEWARD_CLERK_API_URL"
	envNow          = "STEWARD_NOW"
	envForwardURL   = "STEWARD_AUDIT_FORWARD_URL"
	envForwardToken = "STEWARD_AUDIT_FORWARD_TOKEN"
)

// Defaults of the settings.
const (
	defaultDB    = "steward.db"
	defaultActor = audit.SystemActorPrefix + "cli"
)

// setting returns the flag's value, else the environment variable's, else
// def.
func (a *app) setting(flag, env, def string) string {
	if flag != "" {
		return flag
	}
	if v := a.getenv(env); v != "" {
		return v
	}
	return def
}

// init runs before every command: it reads the settings every command
// shares.
func (a *app) init() error {
	if v := a.getenv(envNow); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return usageErrorf("%s is not an RFC 3339 time: %w", envNow, err)
		}
		a.now = func() time.Time { return t }
	}
	actor := a.setting(a.actor, envActor, defaultActor)
	if strings.HasPrefix(actor, audit.SystemActorPrefix) {
		if len(actor) > 128 || strings.ContainsFunc(actor, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return usageErrorf("--actor: a system actor is at most 128 printable characters")
		}
	} else if err := steward.ValidateUserID(actor); err != nil {
		return usageErrorf("--actor: want a user ID or %sNAME: %w", audit.SystemActorPrefix, err)
	}
	a.actor = actor
	return nil
}

// onClose registers f to run when the command ends.
func (a *app) onClose(f func()) { a.closers = append(a.closers, f) }

// asActor returns ctx with the acting operator as the principal, which
// privacy records as the actor of exports.
func (a *app) asActor(ctx context.Context) context.Context {
	return rbac.WithPrincipal(ctx, rbac.Principal{UserID: a.actor})
}

// openStore opens the database --db names. Unless migrating, it must
// exist and hold Steward's tables.
func (a *app) openStore(ctx context.Context, migrating bool) (*sqlstore.Store, error) {
	return a.openDSN(ctx, "--db", a.setting(a.dsn, envDB, defaultDB), migrating)
}

// ledgerStore opens the database --ledger-db names, where the application
// keeps its ledger of erased users apart from the database a restore
// brings back; nil when it is not set (the ledger is then the request
// store's, in --db). Unless migrating, it must hold Steward's tables.
func (a *app) ledgerStore(ctx context.Context, migrating bool) (*sqlstore.Store, error) {
	dsn := a.setting(a.ledgerDSN, envLedgerDB, "")
	if dsn == "" {
		return nil, nil
	}
	return a.openDSN(ctx, "--ledger-db", dsn, migrating)
}

// openDSN opens the database dsn names (flag says which setting gave
// it): an SQLite file or a postgres:// URL.
func (a *app) openDSN(ctx context.Context, flag, dsn string, migrating bool) (*sqlstore.Store, error) {
	var (
		st  *sqlstore.Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, oerr := postgres.Open(dsn)
		if oerr != nil {
			return nil, usageErrorf("%s: %w", flag, oerr)
		}
		a.onClose(func() { db.Close() })
		st, err = sqlstore.New(db, sqlstore.Postgres)
	case strings.Contains(dsn, "://"):
		return nil, usageErrorf("%s: want an SQLite file or a postgres:// URL, got a %s:// URL", flag, dsn[:strings.Index(dsn, "://")])
	default:
		if !migrating {
			if _, serr := os.Stat(dsn); errors.Is(serr, fs.ErrNotExist) {
				return nil, fmt.Errorf("database file %s does not exist: create it with 'steward migrate %s %s'", dsn, flag, dsn)
			}
		}
		db, oerr := sqlstore.OpenSQLite(dsn)
		if oerr != nil {
			return nil, oerr
		}
		a.onClose(func() { db.Close() })
		st, err = sqlstore.New(db, sqlstore.SQLite)
	}
	if err != nil {
		return nil, err
	}
	if !migrating {
		v, err := st.Version(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the database %s names: %w", flag, err)
		}
		if v == 0 {
			return nil, fmt.Errorf("the database %s names holds no Steward tables: run 'steward migrate' first", flag)
		}
	}
	return st, nil
}

// auditKeys are the audit pseudonymisation keys: the active one, which
// makes every new pseudonym, and those a rotation retired, still needed to
// find holds, finished requests and ledger entries made under them.
type auditKeys struct {
	active  audit.Key
	retired []audit.Key
}

// auditKey reads the audit pseudonymisation keys from STEWARD_AUDIT_KEY or
// the key file, and the active key's ID. ok is false when neither is set.
//
// Both take what the application uses: the file audit.LoadKeyFile writes
// (a key a line as "<id>:<base64 secret>", the active one first, then
// retired ones; blank lines and # comments ignored) and the
// "<id>:<base64 secret>" form of audit.ParseKey in the variable, or a bare
// secret in hex or base64 with its ID in STEWARD_AUDIT_KEY_ID.
func (a *app) auditKey() (keys auditKeys, ok bool, err error) {
	file := a.setting(a.auditKeyFile, envAuditKeyFile, "")
	inline := a.getenv(envAuditKey)
	var text, source string
	switch {
	case file != "" && inline != "":
		return keys, false, usageErrorf("both %s and a key file are set: give the audit key one way", envAuditKey)
	case file != "":
		info, err := os.Stat(file)
		if err != nil {
			return keys, false, usageErrorf("audit key file: %w", err)
		}
		if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
			return keys, false, usageErrorf("audit key file %s can be read by others (mode %04o): run chmod 600 on it", file, info.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return keys, false, usageErrorf("audit key file: %w", err)
		}
		text, source = string(b), "audit key file "+file
	case inline != "":
		text, source = inline, envAuditKey
	default:
		return keys, false, nil
	}
	id := a.setting(a.auditKeyID, envAuditKeyID, "")
	if parsed, found, err := parseKeyLines(text); err != nil {
		return keys, false, usageErrorf("%s: %w", source, err)
	} else if found {
		if id != "" && id != parsed[0].ID {
			return keys, false, usageErrorf("%s: the active key is called %q, but %s says %q: they must match the application's audit.WithKey", source, parsed[0].ID, envAuditKeyID, id)
		}
		return auditKeys{active: parsed[0], retired: parsed[1:]}, true, nil
	}
	secret, err := decodeKey(strings.TrimSpace(text))
	if err != nil {
		return keys, false, usageErrorf("%s: %w", source, err)
	}
	if id == "" {
		return keys, false, usageErrorf("%s is not set: give the key ID the application passes to audit.WithKey, or its pseudonyms will not match", envAuditKeyID)
	}
	key := audit.Key{ID: id, Secret: secret}
	if _, err := audit.NewPseudonymizer(key); err != nil {
		return keys, false, usageErrorf("%w", err)
	}
	return auditKeys{active: key}, true, nil
}

// parseKeyLines reads text as audit.LoadKeyFile's form: a key a line in
// audit.ParseKey's "<id>:<base64 secret>", blank lines and lines starting
// with '#' ignored. found is false when no line has that form (a bare hex or
// base64 secret); a text mixing forms is an error. Errors never hold a key.
func parseKeyLines(text string) (keys []audit.Key, found bool, err error) {
	var lines []string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	for _, line := range lines {
		if strings.Contains(line, ":") {
			found = true
		}
	}
	if !found {
		return nil, false, nil
	}
	for i, line := range lines {
		k, err := audit.ParseKey(line)
		if err != nil {
			return nil, true, fmt.Errorf("key %d of %d: %w", i+1, len(lines), err)
		}
		keys = append(keys, k)
	}
	if _, err := audit.NewPseudonymizer(keys[0], keys[1:]...); err != nil {
		return nil, true, err
	}
	return keys, true, nil
}

// pseudonymizerOf returns the Pseudonymizer of keys: the active key, then
// the retired ones.
func pseudonymizerOf(keys auditKeys) (*audit.Pseudonymizer, error) {
	return audit.NewPseudonymizer(keys.active, keys.retired...)
}

// decodeKey decodes a key written in hex or in base64. The error never
// holds the key.
func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("the key is neither hex nor base64, nor \"<id>:<base64 secret>\" lines as audit.LoadKeyFile writes")
}

// logger returns an audit Logger over the database's chain, or fails
// naming what (the command) writes audit events.
func (a *app) logger(st *sqlstore.Store, what string) (*audit.Logger, error) {
	keys, ok, err := a.auditKey()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, usageErrorf("%s writes audit events: set %s or %s, and %s", what, envAuditKey, envAuditKeyFile, envAuditKeyID)
	}
	return a.loggerWith(st, keys)
}

// optionalLogger is logger for commands that work without one: nil when
// no key is set.
func (a *app) optionalLogger(st *sqlstore.Store) (*audit.Logger, error) {
	keys, ok, err := a.auditKey()
	if err != nil || !ok {
		return nil, err
	}
	return a.loggerWith(st, keys)
}

func (a *app) loggerWith(st *sqlstore.Store, keys auditKeys) (*audit.Logger, error) {
	log, err := audit.NewLogger(st.AuditSink(), audit.WithKey(keys.active.ID, keys.active.Secret), audit.WithNow(a.now))
	if err != nil {
		return nil, err
	}
	a.onClose(func() { _ = log.Close(context.Background()) })
	return log, nil
}

// optionalIdentity is identity for commands that can do without the
// provider: noIdentity when CLERK_SECRET_KEY is not set.
func (a *app) optionalIdentity(what string) (steward.IdentityProvider, error) {
	if a.getenv(envClerkKey) == "" {
		return noIdentity{}, nil
	}
	return a.identity(what)
}

// identity returns the Clerk identity provider, or fails naming what (the
// command) needs it.
func (a *app) identity(what string) (steward.IdentityProvider, error) {
	secret := a.getenv(envClerkKey)
	if secret == "" {
		return nil, usageErrorf("%s needs the identity provider: set %s", what, envClerkKey)
	}
	cfg := &clerk.ClientConfig{}
	cfg.Key = clerk.String(secret)
	if raw := a.setting(a.clerkURL, envClerkURL, ""); raw != "" {
		u, err := checkedURL("--clerk-api-url", raw)
		if err != nil {
			return nil, err
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1"
		}
		cfg.URL = clerk.String(u.String())
	}
	return clerkadapter.New(cfg), nil
}

// checkedURL parses raw as an http(s) URL that secrets may be sent to:
// https, or plain http to this machine only.
func checkedURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, usageErrorf("%s: %q is not an absolute URL", what, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, usageErrorf("%s: refusing to send credentials over plain http to %s: use https (plain http is for localhost only)", what, host)
		}
	default:
		return nil, usageErrorf("%s: want an https URL, got %s://", what, u.Scheme)
	}
	return u, nil
}

// noIdentity stands in for the identity provider in commands that never
// reach it (listing and extending requests).
type noIdentity struct{}

var _ steward.IdentityProvider = noIdentity{}

var errNoIdentity = fmt.Errorf("this command does not reach the identity provider")

func (noIdentity) GetUser(context.Context, string) (steward.User, error) {
	return steward.User{}, errNoIdentity
}

func (noIdentity) ListUsers(context.Context, steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) { yield(steward.User{}, errNoIdentity) }
}

func (noIdentity) UpdateMetadata(context.Context, string, steward.MetadataPatch) error {
	return errNoIdentity
}

func (noIdentity) DeleteUser(context.Context, string) error { return errNoIdentity }

// commandService opens the store, the audit logger and the identity
// provider for command and builds the privacy service over them.
func (a *app) commandService(ctx context.Context, command string) (*privacy.Service, error) {
	st, err := a.openStore(ctx, false)
	if err != nil {
		return nil, err
	}
	log, err := a.logger(st, command)
	if err != nil {
		return nil, err
	}
	idp, err := a.identity(command)
	if err != nil {
		return nil, err
	}
	return a.privacyService(ctx, st, idp, log)
}

// errorLines is err's message, one line per error it joins; empty (not
// nil, so JSON shows []) for nil.
func errorLines(err error) []string {
	lines := []string{}
	if err == nil {
		return lines
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			lines = append(lines, e.Error())
		}
		return lines
	}
	return append(lines, err.Error())
}

// privacyService builds the privacy.Service the application builds: the
// declared tables and consent records as DataStores, the database's
// request store and legal holds, and log when not nil; extra options
// come last.
func (a *app) privacyService(ctx context.Context, st *sqlstore.Store, idp steward.IdentityProvider, log *audit.Logger, extra ...privacy.Option) (*privacy.Service, error) {
	decl, err := a.declarations()
	if err != nil {
		return nil, err
	}
	var stores []privacy.DataStore
	if len(decl.Tables) > 0 {
		tables, err := decl.tables()
		if err != nil {
			return nil, err
		}
		var opts []sqldata.Option
		if decl.StoreName != "" {
			opts = append(opts, sqldata.WithName(decl.StoreName))
		}
		if len(decl.Undeclared) > 0 {
			opts = append(opts, sqldata.WithUndeclared(decl.Undeclared...))
		}
		ds, err := sqldata.New(ctx, st.DB(), st.Dialect(), tables, opts...)
		if err != nil {
			return nil, usageErrorf("%s: %w", a.configName(), err)
		}
		stores = append(stores, ds)
	}
	if decl.Consent {
		var opts []consent.Option
		if log != nil {
			opts = append(opts, consent.WithAudit(log))
		}
		m, err := consent.NewManager(st.Consent(), idp, opts...)
		if err != nil {
			return nil, err
		}
		stores = append(stores, m.DataStore())
	}
	opts := []privacy.Option{
		privacy.WithStores(stores...),
		privacy.WithRequestStore(st.Requests()),
		privacy.WithHoldChecker(retention.Checker{Holds: st.Holds()}),
		privacy.WithNow(a.now),
	}
	if ls, err := a.ledgerStore(ctx, false); err != nil {
		return nil, err
	} else if ls != nil {
		opts = append(opts, privacy.WithLedger(ls.Ledger()))
	}
	if log != nil {
		opts = append(opts, privacy.WithAudit(log))
		// The logger knows the active key only; finished requests and
		// the ledger are found under every key a rotation retired too.
		if keys, ok, err := a.auditKey(); err != nil {
			return nil, err
		} else if ok && len(keys.retired) > 0 {
			p, err := pseudonymizerOf(keys)
			if err != nil {
				return nil, usageErrorf("%w", err)
			}
			opts = append(opts, privacy.WithPseudonymizer(p))
		}
	}
	if decl.IdentityName != "" {
		opts = append(opts, privacy.WithIdentityName(decl.IdentityName))
	}
	if decl.Regime != "" {
		opts = append(opts, privacy.WithRegime(decl.Regime))
	}
	svc, err := privacy.NewService(idp, append(opts, extra...)...)
	if err != nil {
		return nil, usageErrorf("%s: %w", a.configName(), err)
	}
	return svc, nil
}

// stepNames returns the names of the steps an erasure takes, in order,
// for confirmations.
func (a *app) stepNames() []string {
	var names []string
	if a.decl != nil {
		if len(a.decl.Tables) > 0 {
			names = append(names, cmp.Or(a.decl.StoreName, sqldata.DefaultName))
		}
		if a.decl.Consent {
			names = append(names, "consent")
		}
		return append(names, cmp.Or(a.decl.IdentityName, privacy.DefaultIdentityName))
	}
	return []string{privacy.DefaultIdentityName}
}

// retentionEngine builds the retention Engine over the declared policies,
// with the database's legal holds and lease, and log when not nil; extra
// options come last.
func (a *app) retentionEngine(ctx context.Context, st *sqlstore.Store, log *audit.Logger, extra ...retention.Option) (*retention.Engine, error) {
	decl, err := a.declarations()
	if err != nil {
		return nil, err
	}
	if len(decl.Retention) == 0 {
		return nil, usageErrorf("no retention policies are declared: add \"retention\" to the --config file")
	}
	policies, err := decl.policies(ctx, st)
	if err != nil {
		return nil, usageErrorf("%s: %w", a.configName(), err)
	}
	opts := []retention.Option{
		retention.WithHolds(st.Holds()),
		retention.WithLease(st.Leases(), 0),
		retention.WithNow(a.now),
	}
	if log != nil {
		opts = append(opts, retention.WithAudit(log))
	}
	e, err := retention.NewEngine(policies, append(opts, extra...)...)
	if err != nil {
		return nil, usageErrorf("%s: %w", a.configName(), err)
	}
	return e, nil
}

// pseudonymizer returns the audit key's Pseudonymizer, or nil when no key
// is set.
func (a *app) pseudonymizer() (*audit.Pseudonymizer, error) {
	keys, ok, err := a.auditKey()
	if err != nil || !ok {
		return nil, err
	}
	return pseudonymizerOf(keys)
}
