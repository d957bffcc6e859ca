package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
)

func TestLoadKeyFileCreatesOnceAndKeeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	var wg sync.WaitGroup
	keys := make([]audit.Key, 8)
	for i := range keys {
		wg.Go(func() {
			k, retired, err := audit.LoadKeyFile(path, "k1")
			if err != nil || len(retired) != 0 {
				t.Errorf("LoadKeyFile: %v, %d retired", err, len(retired))
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i, k := range keys {
		if diff := cmp.Diff(keys[0], k); diff != "" {
			t.Errorf("starter %d got another key (-first +got):\n%s", i, diff)
		}
	}
	if keys[0].ID != "k1" || len(keys[0].Secret) != 32 {
		t.Errorf("new key %q of %d bytes; want k1, 32 bytes", keys[0].ID, len(keys[0].Secret))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// A restart reads the same key.
	again, _, err := audit.LoadKeyFile(path, "other")
	if err != nil || again.ID != "k1" || string(again.Secret) != string(keys[0].Secret) {
		t.Errorf("after a restart: %q, %v; want the same key", again.ID, err)
	}

	// A rotation: a new active key on top, the old one retired.
	rotated := audit.FormatKey(audit.Key{ID: "k2", Secret: []byte("another key, thirty-two bytes!!!")}) + "\n" + audit.FormatKey(keys[0]) + "\n"
	if err := os.WriteFile(path, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	active, retired, err := audit.LoadKeyFile(path, "k1")
	if err != nil || active.ID != "k2" || len(retired) != 1 || retired[0].ID != "k1" {
		t.Errorf("after rotation: active %q, retired %v, %v", active.ID, retired, err)
	}
}

func TestParseKey(t *testing.T) {
	k, err := audit.ParseKey(" prod-1:" + "YW4gZXhhbXBsZSBrZXksIDMyIGJ5dGVzIGxvbmchISE=" + "\n")
	if err != nil || k.ID != "prod-1" || string(k.Secret) != "an example key, 32 bytes long!!!" {
		t.Errorf("ParseKey = %+v, %v", k, err)
	}
	for _, bad := range []string{"", "nokey", "k1:", "k1:!!!", "k1:c2hvcnQ=", "bad id:YW4gZXhhbXBsZSBrZXksIDMyIGJ5dGVzIGxvbmchISE="} {
		_, err := audit.ParseKey(bad)
		if !errors.Is(err, audit.ErrInvalidKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("the error holds the secret: %v", err)
		}
	}
}
