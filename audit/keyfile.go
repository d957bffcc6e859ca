package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrInvalidKey is matched when a key in a key file or an environment
// variable cannot be read; the message says where, never the secret.
var ErrInvalidKey = errors.New("audit: invalid key")

// ParseKey reads a key written as "<id>:<base64 secret>" (standard
// base64, with padding or without), the form to keep in an environment
// variable or a secret manager. The error never holds the secret.
func ParseKey(s string) (Key, error) {
	id, enc, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" || enc == "" {
		return Key{}, fmt.Errorf("%w: want <id>:<base64 secret>", ErrInvalidKey)
	}
	secret, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if secret, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return Key{}, fmt.Errorf("%w: key %q: the secret is not base64", ErrInvalidKey, id)
		}
	}
	k := Key{ID: id, Secret: secret}
	if err := validateKey(k); err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return k, nil
}

// FormatKey writes k in the form ParseKey reads.
func FormatKey(k Key) string { return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret) }

// LoadKeyFile reads the pseudonymisation keys kept in the file at path:
// one key a line in ParseKey's form, the active key first, then keys a
// rotation retired, which are still needed to find events, finished
// requests and ledger entries made under them. Blank lines and lines
// starting with '#' are ignored.
//
// When the file does not exist, LoadKeyFile creates it holding one new
// random 32-byte key called id, readable by its owner only (mode 0600).
// Creation is atomic (a complete file is linked into place, or the
// existing one is kept), so several processes starting at once on one
// volume end up with the same key. Keep the file, and back it up apart
// from the database: pseudonyms, and so the ledger of erased users, are
// only as lasting as the key. To rotate, put a new key on the first line
// and keep the old ones below it.
func LoadKeyFile(path, id string) (active Key, retired []Key, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path, id); err != nil {
			return Key{}, nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return Key{}, nil, fmt.Errorf("audit: reading the key file: %w", err)
	}
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return Key{}, nil, fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return Key{}, nil, fmt.Errorf("%w: %s holds no key", ErrInvalidKey, filepath.Base(path))
	}
	return keys[0], keys[1:], nil
}

// createKeyFile writes a new key file at path unless one appears first.
func createKeyFile(path, id string) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("audit: making a key: %w", err)
	}
	k := Key{ID: id, Secret: secret}
	if err := validateKey(k); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("audit: creating the key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	content := "# Steward's pseudonymisation keys: the active key first, retired keys after.\n" + FormatKey(k) + "\n"
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: creating the key file: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: creating the key file: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("audit: creating the key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: creating the key file: %w", err)
	}
	return nil
}
