package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// TestApplicationsAuditKeys: the command takes the audit key in the forms
// the application keeps it — the file audit.LoadKeyFile writes and the
// "<id>:<base64 secret>" of audit.ParseKey — as well as a bare hex secret
// with STEWARD_AUDIT_KEY_ID, and its pseudonyms are the application's.
func TestApplicationsAuditKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret, _ := hex.DecodeString(testKey)
	k1 := audit.Key{ID: testKeyID, Secret: secret}
	writeKeys := func(name string, keys ...audit.Key) string {
		var b strings.Builder
		b.WriteString("# audit keys, the active one first\n")
		for _, k := range keys {
			b.WriteString(audit.FormatKey(k) + "\n\n")
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	made := filepath.Join(dir, "made.key")
	active, _, err := audit.LoadKeyFile(made, "app-1")
	if err != nil {
		t.Fatal(err)
	}
	madeP, err := audit.NewPseudonymizer(active)
	if err != nil {
		t.Fatal(err)
	}
	k2 := audit.Key{ID: "k2", Secret: []byte(strings.Repeat("k2 secret ", 4))}
	rotated := writeKeys("rotated.key", k2, k1)
	rotatedP, err := audit.NewPseudonymizer(k2, k1)
	if err != nil {
		t.Fatal(err)
	}

	fx := newFixture(t, sqltest.Open(t, sqlstore.SQLite), sqlstore.SQLite)
	if res := fx.run("", "hold", "place", "user_zed", "--reason", "tax audit"); res.code != exitOK {
		t.Fatalf("hold place: exit %d, %s", res.code, res.stderr)
	}
	keyless := func() []string {
		var env []string
		for _, v := range fx.env() {
			if !strings.HasPrefix(v, envAuditKey+"=") && !strings.HasPrefix(v, envAuditKeyID+"=") {
				env = append(env, v)
			}
		}
		return env
	}
	for _, tc := range []struct {
		name    string
		env     []string
		subject string
	}{
		{"a file made by audit.LoadKeyFile, its ID inside", []string{envAuditKeyFile + "=" + made}, madeP.Pseudonym("user_zed")},
		{"the same file with the same STEWARD_AUDIT_KEY_ID", []string{envAuditKeyFile + "=" + made, envAuditKeyID + "=app-1"}, madeP.Pseudonym("user_zed")},
		{"STEWARD_AUDIT_KEY in audit.ParseKey's form", []string{envAuditKey + "=" + audit.FormatKey(k1)}, pseudonym(t, "user_zed")},
		{"STEWARD_AUDIT_KEY as a hex secret with its ID", []string{envAuditKey + "=" + testKey, envAuditKeyID + "=" + testKeyID}, pseudonym(t, "user_zed")},
		{"a rotated file: the first key is the active one", []string{envAuditKeyFile + "=" + rotated}, rotatedP.Pseudonym("user_zed")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, append(keyless(), tc.env...), "", "hold", "list", "--json")
			if res.code != exitOK {
				t.Fatalf("hold list: exit %d, %s", res.code, res.stderr)
			}
			var got []struct{ Subject string }
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("hold list --json: %v in %q", err, res.stdout)
			}
			if diff := cmp.Diff([]struct{ Subject string }{{tc.subject}}, got); diff != "" {
				t.Errorf("hold list subjects (-want +got):\n%s", diff)
			}
			if strings.Contains(res.stdout+res.stderr, base64Secret(active)) {
				t.Errorf("output shows the key")
			}
		})
	}

	t.Run("a pseudonym made under a retired key is still matched", func(t *testing.T) {
		res := runCLI(t, append(keyless(), envAuditKeyFile+"="+rotated), "", "hold", "release", pseudonym(t, "user_zed"), "--yes")
		if res.code != exitOK {
			t.Fatalf("hold release: exit %d, %s", res.code, res.stderr)
		}
	})

	t.Run("an ID that contradicts the file is refused", func(t *testing.T) {
		res := runCLI(t, append(keyless(), envAuditKeyFile+"="+made, envAuditKeyID+"=other"), "", "hold", "list")
		want := `the active key is called "app-1", but STEWARD_AUDIT_KEY_ID says "other"`
		if res.code != exitUsage || !strings.Contains(res.stderr, want) {
			t.Errorf("exit %d, stderr %q; want exit %d and %q", res.code, res.stderr, exitUsage, want)
		}
	})
}

// base64Secret is how a key file shows k's secret.
func base64Secret(k audit.Key) string {
	s := audit.FormatKey(k)
	return s[strings.Index(s, ":")+1:]
}
