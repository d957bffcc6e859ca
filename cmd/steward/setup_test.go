package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/sqlstore"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	ref, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "ref.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	st, _ := sqlstore.New(ref, sqlstore.SQLite)
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	latest, _ := st.Version(t.Context())

	file := filepath.Join(t.TempDir(), "new.db")
	env := []string{envDB + "=" + file}
	res := runCLI(t, env, "", "requests")
	if res.code != exitFailure || !strings.Contains(res.stderr, "database file "+file+" does not exist: create it with 'steward migrate") {
		t.Errorf("requests before migrate: exit %d, %q", res.code, res.stderr)
	}
	res = runCLI(t, env, "", "migrate", "--json")
	var got struct{ From, To int }
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != exitOK {
		t.Fatalf("migrate: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
	}
	if diff := cmp.Diff(struct{ From, To int }{0, latest}, got); diff != "" {
		t.Errorf("migrate --json (-want +got):\n%s", diff)
	}
	res = runCLI(t, env, "", "migrate")
	if res.code != exitOK || res.stdout != fmt.Sprintf("schema up to date at version %d\n", latest) {
		t.Errorf("migrate again: exit %d, %q", res.code, res.stdout)
	}

	// A file that exists but is not Steward's.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, []string{envDB + "=" + empty}, "", "requests")
	if res.code != exitFailure || !strings.Contains(res.stderr, "run 'steward migrate' first") {
		t.Errorf("requests on an empty file: exit %d, %q", res.code, res.stderr)
	}
}

func TestMigrateMigrated(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		res := fx.run("", "migrate")
		if res.code != exitOK || !strings.HasPrefix(res.stdout, "schema up to date at version ") {
			t.Errorf("migrate of a migrated database: exit %d, %q %q", res.code, res.stdout, res.stderr)
		}
	})
}

// TestSettings checks that bad flags, environment and configuration end
// with exit code 2 and say what is wrong, and that no message shows the
// audit key or the Clerk secret key.
func TestSettings(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "steward.db")
	if res := runCLI(t, []string{envDB + "=" + db}, "", "migrate"); res.code != exitOK {
		t.Fatal(res.stderr)
	}
	dir := t.TempDir()
	keyFile := func(name string, mode os.FileMode, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	openKey := keyFile("open.key", 0o644, testKey+"\n")
	badKey := keyFile("bad.key", 0o600, "not a key at all!\n")
	config := func(name, content string) string { return keyFile(name, 0o644, content) }
	typo := config("typo.json", `{"tabels": []}`)
	notify := config("notify.json", `{"retention": [{"name": "inactive", "maxAge": "365d", "action": "notify_then_erase"}]}`)
	badAge := config("age.json", `{"retention": [{"name": "logs", "table": "steward_leases", "timeColumn": "expires_at", "maxAge": "ninety", "action": "delete"}]}`)
	base := []string{envDB + "=" + db, envClerkKey + "=sk_test_hidden", envAuditKeyID + "=k1"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		stderr string
	}{
		{"unknown command", base, []string{"purge"}, `unknown command "purge"`},
		{"unknown flag", base, []string{"requests", "--everything"}, "unknown flag: --everything"},
		{"missing argument", base, []string{"erase"}, "steward erase needs one USER, got 0 arguments"},
		{"group without subcommand", base, []string{"retention"}, "steward retention needs a subcommand: apply, plan"},
		{"resume without ID", base, []string{"resume"}, "needs one request ID or --pending"},
		{"database URL", with(envDB + "=mysql://db/app"), []string{"requests"}, "want an SQLite file or a postgres:// URL, got a mysql:// URL"},
		{"clock", with(envNow + "=yesterday"), []string{"requests"}, envNow + " is not an RFC 3339 time"},
		{"actor", base, []string{"requests", "--actor", "ada@example.com"}, "--actor: want a user ID or system:NAME"},
		{"no audit key", base, []string{"export", "user_ada"}, "export writes audit events: set " + envAuditKey},
		{"no Clerk key", []string{envDB + "=" + db, envAuditKey + "=" + testKey, envAuditKeyID + "=k1"}, []string{"erase", "user_ada", "--yes"},
			"erase needs the identity provider: set " + envClerkKey},
		{"two audit keys", with(envAuditKey+"="+testKey, envAuditKeyFile+"="+badKey), []string{"hold", "list"}, "give the audit key one way"},
		{"key file readable by others", with(envAuditKeyFile + "=" + openKey), []string{"hold", "list"}, "can be read by others (mode 0644): run chmod 600"},
		{"key not hex nor base64", with(envAuditKeyFile + "=" + badKey), []string{"hold", "list"}, "the key is neither hex nor base64"},
		{"short key", with(envAuditKey + "=00112233"), []string{"hold", "list"}, "secret is 4 bytes, need at least 16"},
		{"no key ID", []string{envDB + "=" + db, envAuditKey + "=" + testKey}, []string{"hold", "list"}, envAuditKeyID + " is not set"},
		{"config typo", with(envConfig + "=" + typo), []string{"retention", "plan"}, `config ` + typo + `: json: unknown field "tabels"`},
		{"config notify policy", with(envConfig + "=" + notify), []string{"retention", "plan"}, `retention policy "inactive": notify_then_erase needs the application's Notifier`},
		{"config max age", with(envConfig + "=" + badAge), []string{"retention", "plan"}, `retention policy "logs": maxAge: "ninety" is not a positive duration`},
		{"no policies", base, []string{"retention", "plan"}, "no retention policies are declared"},
		{"Clerk over plain http", with(envAuditKey+"="+testKey, envClerkURL+"=http://clerk.example.com"), []string{"export", "user_ada"},
			"--clerk-api-url: refusing to send credentials over plain http to clerk.example.com"},
		{"extra argument", base, []string{"show", "req_1", "req_2"}, "steward show needs one request ID, got 2 arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, tc.env, "", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("steward %v: exit %d, stderr %q; want exit %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.stderr)
			}
			for _, secret := range []string{testKey, "sk_test_hidden", "not a key"} {
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Errorf("output shows a secret:\n%s%s", res.stdout, res.stderr)
				}
			}
		})
	}

	// A key file of mode 0600 serves like the variable.
	goodKey := keyFile("good.key", 0o600, testKey+"\n")
	res := runCLI(t, with(envAuditKeyFile+"="+goodKey), "", "hold", "list")
	if res.code != exitOK || res.stdout != "no legal holds\n" {
		t.Errorf("hold list with a key file: exit %d, %q %q", res.code, res.stdout, res.stderr)
	}
}
