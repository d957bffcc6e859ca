package audit_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/audit"
)

// FuzzCanonicalDetails checks that the canonical encoding of any JSON
// object is valid JSON and a fixed point of decoding and encoding again:
// what a database returns hashes as what was logged.
func FuzzCanonicalDetails(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1,"b":[1,2,{"c":null}]}`, `{"n":1e400}`, `{"n":-0.0}`, `{"n":1E+2,"m":0.000001}`,
		`{"s":"\u0000\ud800\"\\"}`, `{"big":123456789012345678901234567890}`, "{\"k\xff\":\"v\xfe\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := audit.ParseDetails(data)
		if err != nil {
			return
		}
		c1, err := audit.CanonicalDetails(d)
		if err != nil {
			return // e.g. a number out of float64 range
		}
		if !json.Valid(c1) {
			t.Fatalf("canonical form is not JSON: %q", c1)
		}
		d2, err := audit.ParseDetails(c1)
		if err != nil {
			t.Fatalf("canonical form does not parse: %q: %v", c1, err)
		}
		c2, err := audit.CanonicalDetails(d2)
		if err != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("not a fixed point:\n%q\n%q (%v)", c1, c2, err)
		}
	})
}

// FuzzVerify decodes a JSON array of events and verifies it: Verify must
// never panic, and a chain it accepts must still verify after its events
// are encoded and decoded again.
func FuzzVerify(f *testing.F) {
	sink := audit.NewMemorySink()
	l, err := audit.NewLogger(sink, audit.WithKey("k1", testKey), audit.WithNow(testClock))
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		_ = l.Log(f.Context(), audit.Event{Type: audit.ConsentChange, Subject: "u", Actor: "a",
			Details: map[string]any{"i": i, "f": 0.5, "s": "x"}})
	}
	valid, _ := json.Marshal(sink.Snapshot())
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"i":1`), []byte(`"i":2`), 1))
	f.Add(bytes.Replace(valid, []byte(`"sequence":2`), []byte(`"sequence":3`), 1))
	f.Add([]byte(`[{"sequence":1,"details":{"x":1e999}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var events []audit.Event
		if json.Unmarshal(data, &events) != nil {
			return
		}
		if audit.Verify(seqOf(events)) != nil {
			return
		}
		wire, err := json.Marshal(events)
		if err != nil {
			t.Fatalf("a verified chain does not encode: %v", err)
		}
		var back []audit.Event
		if err := json.Unmarshal(wire, &back); err != nil {
			t.Fatalf("wire form does not decode: %v", err)
		}
		if err := audit.Verify(seqOf(back)); err != nil {
			t.Fatalf("a verified chain fails after a round trip: %v", err)
		}
	})
}

// FuzzParseKey checks that ParseKey never panics, that a key it accepts
// writes back (FormatKey) to a form it reads as the same key, and that
// its errors never hold the secret part of the input.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"k1:YW4gZXhhbXBsZSBrZXksIDMyIGJ5dGVzIGxvbmchISE=", "k1:YW4gZXhhbXBsZSBrZXksIDMyIGJ5dGVzIGxvbmchISE", ":", "a:b:c", "k1:c2hvcnQ=", " id : x "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := audit.ParseKey(s)
		if err != nil {
			// The ID is named in errors; a secret that is not part of it
			// never is.
			if id, secret, ok := strings.Cut(strings.TrimSpace(s), ":"); ok && len(secret) >= 8 && !strings.Contains(id, secret) &&
				strings.Contains(strings.ReplaceAll(err.Error(), strconv.Quote(id), ""), secret) {
				t.Fatalf("the error %q holds the secret", err)
			}
			return
		}
		back, err := audit.ParseKey(audit.FormatKey(k))
		if err != nil || back.ID != k.ID || !bytes.Equal(back.Secret, k.Secret) {
			t.Fatalf("FormatKey(%q) reads back as %+v, %v", k.ID, back, err)
		}
	})
}
