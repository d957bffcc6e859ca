package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"iter"
	"strings"
	"sync"
)

// PseudonymPrefix starts every pseudonym: the value names its algorithm,
// then the key ID, then the hex HMAC: "hmac-sha256:<keyID>:<64 hex>".
const PseudonymPrefix = "hmac-sha256:"

// SystemActorPrefix marks an Actor that names a process rather than a
// person ("system:retention"). Such actors are recorded as given; every
// other non-empty Actor is pseudonymised.
const SystemActorPrefix = "system:"

// MinKeySize is the shortest HMAC key accepted, in bytes.
const MinKeySize = 16

// Key is one pseudonymisation key. ID is recorded in each event (KeyID) and
// in each pseudonym, so events stay attributable to the key that made them
// after rotation. ID is 1 to 64 characters from [A-Za-z0-9._-]; Secret is
// at least MinKeySize bytes (32 random bytes recommended).
type Key struct {
	ID     string
	Secret []byte
}

// Pseudonymizer turns user IDs into keyed pseudonyms (HMAC-SHA256) and
// finds a person's pseudonyms again for whoever holds the keys. Unlike a
// plain hash, a pseudonym cannot be reversed by hashing candidate IDs
// without the key. It is safe for concurrent use.
//
// One key is active and makes new pseudonyms; retired keys are kept only so
// that Pseudonyms and Lookup still find events made before a rotation.
type Pseudonymizer struct {
	keys []pkey // keys[0] is active
}

type pkey struct {
	id     string
	prefix string // "hmac-sha256:<id>:"
	pool   *sync.Pool
}

// NewPseudonymizer returns a Pseudonymizer that makes pseudonyms with
// active and also recognises those made with retired keys. Key IDs must be
// distinct. The secrets are copied.
func NewPseudonymizer(active Key, retired ...Key) (*Pseudonymizer, error) {
	p := &Pseudonymizer{}
	seen := map[string]bool{}
	for _, k := range append([]Key{active}, retired...) {
		if err := validateKey(k); err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("audit: key ID %q given twice", k.ID)
		}
		seen[k.ID] = true
		secret := append([]byte(nil), k.Secret...)
		p.keys = append(p.keys, pkey{
			id:     k.ID,
			prefix: PseudonymPrefix + k.ID + ":",
			pool:   &sync.Pool{New: func() any { return &mac{h: hmac.New(sha256.New, secret)} }},
		})
	}
	return p, nil
}

func validateKey(k Key) error {
	if k.ID == "" || len(k.ID) > 64 {
		return fmt.Errorf("audit: key ID %q: must be 1 to 64 characters", k.ID)
	}
	for _, c := range []byte(k.ID) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("audit: key ID %q: only letters, digits, '.', '_' and '-' are allowed", k.ID)
		}
	}
	if len(k.Secret) < MinKeySize {
		return fmt.Errorf("audit: key %q: secret is %d bytes, need at least %d", k.ID, len(k.Secret), MinKeySize)
	}
	return nil
}

// KeyID returns the ID of the active key.
func (p *Pseudonymizer) KeyID() string { return p.keys[0].id }

// Pseudonym returns the pseudonym of id under the active key,
// "hmac-sha256:<keyID>:<hex>". The empty ID stays empty.
func (p *Pseudonymizer) Pseudonym(id string) string {
	if id == "" {
		return ""
	}
	return p.keys[0].pseudonym(id)
}

func (k *pkey) pseudonym(id string) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + 2*sha256.Size)
	k.writePseudonym(&b, id)
	return b.String()
}

// writePseudonym writes the pseudonym of id to b.
func (k *pkey) writePseudonym(b *strings.Builder, id string) {
	m := k.pool.Get().(*mac)
	m.buf = append(m.buf[:0], id...)
	m.h.Reset()
	m.h.Write(m.buf)
	m.sum = m.h.Sum(m.sum[:0])
	m.buf = append(m.buf[:0], k.prefix...)
	m.buf = hex.AppendEncode(m.buf, m.sum)
	b.Write(m.buf)
	k.pool.Put(m)
}

// mac is a keyed HMAC with a scratch buffer, pooled per key.
type mac struct {
	h   hash.Hash
	buf []byte
	sum []byte
}

// Pseudonyms returns the pseudonyms of id under every key, the active one
// first: the values to search for when a person asks for their events.
func (p *Pseudonymizer) Pseudonyms(id string) []string {
	if id == "" {
		return nil
	}
	out := make([]string, len(p.keys))
	for i := range p.keys {
		out[i] = p.keys[i].pseudonym(id)
	}
	return out
}

// Match reports whether pseudonym was made from id with any of p's keys.
func (p *Pseudonymizer) Match(pseudonym, id string) bool {
	if id == "" || !strings.HasPrefix(pseudonym, PseudonymPrefix) {
		return false
	}
	for i := range p.keys {
		k := &p.keys[i]
		if strings.HasPrefix(pseudonym, k.prefix) {
			return hmac.Equal([]byte(k.pseudonym(id)), []byte(pseudonym))
		}
	}
	return false
}

// Lookup returns the events of events whose Subject or Actor is a
// pseudonym of userID under any of p's keys, in the order given. It never
// needs the raw ID to be stored: use it to answer an access request.
// An error from events is passed on and ends the sequence.
func (p *Pseudonymizer) Lookup(events iter.Seq2[Event, error], userID string) iter.Seq2[Event, error] {
	want := map[string]bool{}
	for _, ps := range p.Pseudonyms(userID) {
		want[ps] = true
	}
	return func(yield func(Event, error) bool) {
		for e, err := range events {
			if err != nil {
				yield(Event{}, err)
				return
			}
			if (want[e.Subject] || want[e.Actor]) && !yield(e, nil) {
				return
			}
		}
	}
}
