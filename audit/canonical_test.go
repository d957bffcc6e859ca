package audit_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stewardlabs/steward/audit"
)

func TestCanonicalDetails(t *testing.T) {
	type order struct {
		Total float64 `json:"total"`
		ID    string  `json:"id"`
	}
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"nil is an empty object", nil, `{}`},
		{"keys are sorted", map[string]any{"b": 1, "a": 2, "B": 3}, `{"B":3,"a":2,"b":1}`},
		{"nested maps are sorted", map[string]any{"x": map[string]any{"z": true, "y": nil}}, `{"x":{"y":null,"z":true}}`},
		{"integers are exact", map[string]any{"max": int64(math.MaxInt64), "umax": uint64(math.MaxUint64), "neg": int8(-5)},
			`{"max":9223372036854775807,"neg":-5,"umax":18446744073709551615}`},
		{"floats are shortest, plain in [1e-6, 1e21)", map[string]any{"a": 0.1, "b": 3.0, "c": 1e20, "d": 1e-6, "e": math.Copysign(0, -1)},
			`{"a":0.1,"b":3,"c":100000000000000000000,"d":0.000001,"e":-0}`},
		{"floats outside use exponents", map[string]any{"a": 1e21, "b": 1e-7, "c": -2.5e300}, `{"a":1e+21,"b":1e-07,"c":-2.5e+300}`},
		{"float32 is widened exactly", map[string]any{"f": float32(0.1)}, `{"f":0.10000000149011612}`},
		{"json.Number integers keep their digits", map[string]any{"n": json.Number("123456789012345678901234567890")}, `{"n":123456789012345678901234567890}`},
		{"json.Number fractions are normalised", map[string]any{"n": json.Number("3.0"), "m": json.Number("1E2")}, `{"m":100,"n":3}`},
		{"strings escape only quotes, backslash and controls", map[string]any{"s": "a\"b\\c\n\t\x01<>&é\u2028"}, `{"s":"a\"b\\c\n\t\u0001<>&é` + "\u2028" + `"}`},
		{"invalid UTF-8 becomes U+FFFD", map[string]any{"s": "a\xffb"}, `{"s":"a` + "\uFFFD" + `b"}`},
		{"slices", map[string]any{"a": []any{1, "x", []string{"y"}}, "b": []string{}}, `{"a":[1,"x",["y"]],"b":[]}`},
		{"string maps", map[string]any{"m": map[string]string{"b": "2", "a": "1"}}, `{"m":{"a":"1","b":"2"}}`},
		{"structs go through encoding/json, then sorted", map[string]any{"o": order{Total: 42, ID: "o1"}}, `{"o":{"id":"o1","total":42}}`},
		{"times are RFC 3339", map[string]any{"t": time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)}, `{"t":"2025-01-02T03:04:05.0000006Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.CanonicalDetails(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("CanonicalDetails =\n%s\nwant\n%s", got, tt.want)
			}
			// The canonical text is a fixed point of decode + encode.
			back, err := audit.ParseDetails(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := audit.CanonicalDetails(back)
			if err != nil || string(again) != string(got) {
				t.Errorf("after a round trip: %s (%v), want %s", again, err, got)
			}
		})
	}
}

func TestCanonicalDetailsErrors(t *testing.T) {
	deep := map[string]any{}
	for m, i := deep, 0; i < 100; i++ {
		next := map[string]any{}
		m["x"] = next
		m = next
	}
	for name, d := range map[string]map[string]any{
		"NaN":            {"x": math.NaN()},
		"infinity":       {"x": math.Inf(1)},
		"a function":     {"f": func() {}},
		"a bad number":   {"n": json.Number("12abc")},
		"deep recursion": deep,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := audit.CanonicalDetails(d); err == nil {
				t.Error("want an error")
			}
		})
	}
}

// TestCanonicalEncoding pins the hashed encoding: a change here breaks
// every stored chain. The hash was computed independently (sha256sum of
// the text below).
func TestCanonicalEncoding(t *testing.T) {
	e := audit.Event{
		ID: "0b0e6b8e-8f47-4d2a-9a53-2e8f1c0d3b7a", Type: audit.DataExport,
		Subject: "hmac-sha256:k1:aa", Actor: "system:export",
		Details:  map[string]any{"stores": 3, "note": "é\n"},
		Time:     time.Date(2025, 3, 1, 12, 0, 0, 5000, time.FixedZone("X", 3600)),
		Sequence: 7, KeyID: "k1", PrevHash: "ff", Hash: "ignored",
	}
	wire, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	const canonical = `{"id":"0b0e6b8e-8f47-4d2a-9a53-2e8f1c0d3b7a","type":"data_export","subject":"hmac-sha256:k1:aa","actor":"system:export","details":{"note":"é\n","stores":3},"time":"2025-03-01T11:00:00.000005Z","sequence":7,"keyId":"k1","prevHash":"ff"}`
	if want := canonical[:len(canonical)-1] + `,"hash":"ignored"}`; string(wire) != want {
		t.Errorf("wire form =\n%s\nwant\n%s", wire, want)
	}
	h, err := audit.Hash(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cbacad6b1ff30f2d7ca54cc9352bc56f315fa4e777fd4c6a102fb8c130127a56"; h != want {
		t.Errorf("Hash = %s, want %s", h, want)
	}
}

func TestEventJSONRoundTripVerifies(t *testing.T) {
	type point struct{ X, Y int }
	details := []map[string]any{
		{"big": int64(math.MaxInt64), "ubig": uint64(math.MaxUint64), "f": 0.1, "f32": float32(2.5)},
		{"tiny": 1e-300, "huge": 1e300, "neg0": math.Copysign(0, -1), "whole": 1e20},
		{"s": "tab\t<html>&\u2028 \x00 \xff", "nested": map[string]any{"b": []any{1, map[string]any{"z": 1, "a": 2}}}},
		{"struct": point{2, 1}, "time": time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC), "strs": []string{"a"}},
		nil,
	}
	sink := audit.NewMemorySink()
	l := newLogger(t, sink)
	for i, d := range details {
		if err := l.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: "u", Details: d}); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	stored := sink.Snapshot()
	wire, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	var back []audit.Event
	if err := json.Unmarshal(wire, &back); err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(seqOf(back)); err != nil {
		t.Fatalf("events decoded from their wire form must verify: %v", err)
	}
	wire2, _ := json.Marshal(back)
	if diff := cmp.Diff(string(wire), string(wire2)); diff != "" {
		t.Errorf("wire form changed after a round trip:\n%s", diff)
	}
	if !strings.Contains(string(wire), `"big":9223372036854775807`) {
		t.Error("big integers must stay exact on the wire")
	}
}

func TestTimeEncodingMatchesTimeFormat(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2025, 3, 1, 12, 0, 0, 5000, time.FixedZone("X", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		b, err := json.Marshal(audit.Event{Time: tm})
		if err != nil {
			t.Fatal(err)
		}
		want := `"time":"` + tm.UTC().Format(audit.TimeFormat) + `"`
		if !strings.Contains(string(b), want) {
			t.Errorf("%v encodes as %s, want %s", tm, b, want)
		}
	}
}
