package clerktest

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"
)

// body is a decoded JSON request body. Its accessors check each
// parameter's JSON type and collect an error for each mistyped one, so
// that a handler reads every parameter and then answers all the problems
// at once, as Clerk does.
type body struct {
	m    map[string]json.RawMessage
	errs []apiError
}

// readBody decodes r's body as a JSON object whose keys must all be in
// allowed. Malformed JSON (or JSON that is not an object) answers 400
// request_body_invalid; each unknown key answers 422 form_param_unknown,
// as the request schemas of the Backend API say "additionalProperties:
// false". An empty body and the JSON null (what the SDK sends for calls
// without parameters) count as an empty object.
func readBody(r *http.Request, allowed ...string) (*body, *clerkError) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, errRequestBodyInvalid()
	}
	b := &body{m: map[string]json.RawMessage{}}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return b, nil
	}
	if raw[0] != '{' || json.Unmarshal(raw, &b.m) != nil {
		return nil, errRequestBodyInvalid()
	}
	var unknown []apiError
	for _, k := range slices.Sorted(maps.Keys(b.m)) {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, errParamUnknown(k))
		}
	}
	if len(unknown) > 0 {
		return nil, unprocessable(unknown...)
	}
	return b, nil
}

// err returns the collected type errors as one 422 answer, or nil.
func (b *body) err() *clerkError {
	if len(b.errs) == 0 {
		return nil
	}
	return unprocessable(b.errs...)
}

// has reports whether the body carries name, null included.
func (b *body) has(name string) bool {
	_, ok := b.m[name]
	return ok
}

// null reports whether the body carries name as JSON null.
func (b *body) null(name string) bool {
	v, ok := b.m[name]
	return ok && string(v) == "null"
}

// jsonType names the JSON type of raw, as Clerk's messages do.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// decode decodes name into dst when present and not null, reporting
// whether it did; a value of the wrong type is collected as an error.
func (b *body) decode(name, typ string, dst any) bool {
	raw, ok := b.m[name]
	if !ok || string(raw) == "null" {
		return false
	}
	if jsonType(raw) != typ || json.Unmarshal(raw, dst) != nil {
		b.errs = append(b.errs, errParamType(name, jsonType(raw), typ))
		return false
	}
	return true
}

// str returns a string parameter; ok is false when absent or null.
func (b *body) str(name string) (s string, ok bool) {
	ok = b.decode(name, "string", &s)
	return s, ok
}

// boolean returns a boolean parameter; ok is false when absent or null.
func (b *body) boolean(name string) (v bool, ok bool) {
	ok = b.decode(name, "boolean", &v)
	return v, ok
}

// integer returns an integer parameter; ok is false when absent or null.
func (b *body) integer(name string) (n int, ok bool) {
	var f float64
	if !b.decode(name, "number", &f) {
		return 0, false
	}
	if f != float64(int(f)) {
		b.errs = append(b.errs, errParamType(name, "number", "integer"))
		return 0, false
	}
	return int(f), true
}

// strings returns an array-of-strings parameter; ok is false when
// absent or null.
func (b *body) strings(name string) (vs []string, ok bool) {
	ok = b.decode(name, "array", &vs)
	return vs, ok
}

// object returns an object parameter decoded as JSON values; ok is false
// when absent or null.
func (b *body) object(name string) (m map[string]any, ok bool) {
	ok = b.decode(name, "object", &m)
	if ok && m == nil {
		m = map[string]any{}
	}
	return m, ok
}

// timestamp returns an RFC 3339 date-time parameter as Unix milliseconds.
func (b *body) timestamp(name string) (int64, bool) {
	s, ok := b.str(name)
	if !ok {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		b.errs = append(b.errs, errInvalidTime(name))
		return 0, false
	}
	return t.UnixMilli(), true
}

// fail collects an error found while reading the body.
func (b *body) fail(e apiError) { b.errs = append(b.errs, e) }
