package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeFormat is the layout of Event.Time in the canonical encoding and on
// the wire: RFC 3339 in UTC with exactly six fractional digits. Times are
// kept to the microsecond because that is what every sink (PostgreSQL
// timestamptz included) stores exactly.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// maxDetailsDepth bounds nesting in Details so a hostile value cannot
// exhaust the stack.
const maxDetailsDepth = 64

// CanonicalDetails returns the canonical JSON encoding of details, the
// bytes that enter an event's hash. Sinks that store Details as text
// should store exactly these bytes.
//
// The encoding is JSON without insignificant white space; object keys are
// sorted by their UTF-8 bytes; strings escape only '"', '\\' and control
// characters (as \b \f \n \r \t or \u00xx) and replace invalid UTF-8 with
// U+FFFD; integers are written in decimal; other numbers are written as
// the shortest decimal that parses back to the same float64, in plain
// notation when 1e-6 <= |x| < 1e21 and in exponent notation otherwise;
// json.Number keeps its text when it is an integer. A nil or empty map is
// "{}". Values of other types are encoded with encoding/json first and the
// result re-encoded by these rules, so a value and its JSON round trip
// (through a database column or an HTTP collector) encode identically.
// NaN and infinities are errors.
func CanonicalDetails(details map[string]any) ([]byte, error) {
	return appendDetails(nil, details)
}

func appendDetails(b []byte, details map[string]any) ([]byte, error) {
	if len(details) == 0 {
		return append(b, "{}"...), nil
	}
	return appendMap(b, details, 0)
}

// appendCanonicalHead appends the part of the canonical event encoding
// that the caller's input determines: everything up to the time.
func appendCanonicalHead(b []byte, e *Event) ([]byte, error) {
	return appendDetails(appendCanonicalPrefix(b, e), e.Details)
}

// appendCanonicalPrefix appends the head up to the details.
func appendCanonicalPrefix(b []byte, e *Event) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	b = append(b, `,"subject":`...)
	b = appendString(b, e.Subject)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	return append(b, `,"details":`...)
}

// appendCanonicalTail appends the part the Logger assigns when it chains
// the event.
func appendCanonicalTail(b []byte, e *Event) []byte {
	b = append(b, `,"time":"`...)
	b = appendTime(b, e.Time)
	b = append(b, `","sequence":`...)
	b = strconv.AppendUint(b, e.Sequence, 10)
	b = append(b, `,"keyId":`...)
	b = appendString(b, e.KeyID)
	b = append(b, `,"prevHash":`...)
	b = appendString(b, e.PrevHash)
	return append(b, '}')
}

// appendCanonical appends the canonical encoding of e: every field but
// Hash, in a fixed order. See the package documentation.
func appendCanonical(b []byte, e *Event) ([]byte, error) {
	b, err := appendCanonicalHead(b, e)
	if err != nil {
		return b, err
	}
	return appendCanonicalTail(b, e), nil
}

// appendTime appends t in TimeFormat; it is AppendFormat without the
// layout interpretation, for the Logger's hot path.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

func appendDigits(b []byte, v, width int) []byte {
	var d [6]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes appendString copies as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if depth > maxDetailsDepth {
		return b, errors.New("nested too deeply")
	}
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	// Keys are compared after the same U+FFFD replacement the encoding
	// applies, so two spellings of a broken key cannot reorder.
	slices.SortFunc(keys, func(x, y string) int {
		if utf8.ValidString(x) && utf8.ValidString(y) {
			return compareStrings(x, y)
		}
		return bytes.Compare(appendString(nil, x), appendString(nil, y))
	})
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], depth+1); err != nil {
			return b, fmt.Errorf("%q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

func compareStrings(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float32:
		return appendFloat(b, float64(v))
	case float64:
		return appendFloat(b, v)
	case json.Number:
		return appendNumber(b, string(v))
	case map[string]any:
		return appendMap(b, v, depth)
	case []any:
		if depth > maxDetailsDepth {
			return b, errors.New("nested too deeply")
		}
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, x, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, x)
		}
		return append(b, ']'), nil
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = x
		}
		return appendMap(b, m, depth)
	case time.Time:
		// Encoded as encoding/json would (RFC 3339, nanoseconds as given):
		// the value is the caller's, not the event's timestamp.
		return appendString(b, v.Format(time.RFC3339Nano)), nil
	}
	// Any other type: let encoding/json say what it looks like, then
	// encode that generic value by the rules above.
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	var generic any
	if err := decodeJSON(raw, &generic); err != nil {
		return b, err
	}
	return appendValue(b, generic, depth)
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("unsupported number %v", f)
	}
	abs := math.Abs(f)
	if abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64), nil
	}
	return strconv.AppendFloat(b, f, 'e', -1, 64), nil
}

// appendNumber writes a json.Number: integers keep their text (so big
// integers stay exact), other numbers go through float64.
func appendNumber(b []byte, s string) ([]byte, error) {
	if isJSONInteger(s) {
		return append(b, s...), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !json.Valid([]byte(s)) {
		return b, fmt.Errorf("invalid number %q", s)
	}
	return appendFloat(b, f)
}

// isJSONInteger reports whether s is a JSON number without fraction or
// exponent: -?(0|[1-9][0-9]*).
func isJSONInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeJSON decodes with numbers kept as json.Number so integers survive
// exactly.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after JSON value")
	}
	return nil
}

// ParseDetails decodes Details stored as JSON text (for example by
// CanonicalDetails) with numbers as json.Number, so that the result has
// the same canonical encoding as the text. Empty input or "null" gives nil.
func ParseDetails(raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := decodeJSON(raw, &m); err != nil {
		return nil, fmt.Errorf("audit: details: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
