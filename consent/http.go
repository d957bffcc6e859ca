package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// wireName is a purpose's JSON key on the wire: camelCase
// "thirdParty" for third_party, the purpose's own name otherwise.
func wireName(p Purpose) string {
	if p == ThirdParty {
		return "thirdParty"
	}
	return string(p)
}

// Handler serves the signed-in principal's consent (see rbac.WithPrincipal):
//
//	GET  → 200 {"marketing": false, "analytics": true, "thirdParty": false, "updatedAt": "..."}
//	PUT  {"marketing": true} → 200 with the new state in the same shape
//
// Every registered purpose appears in GET; PUT changes only the purposes
// it names ("thirdParty" and "third_party" both work). A PUT may also
// carry "policyVersion" (number) and "source" (string). Errors: 401
// {"error":"Unauthorized"} without a principal, 400 {"error": ...} naming
// an unknown purpose or a value that is not a boolean, 409 {"error":
// "User is being erased", "code": "erasure_in_progress"} once the user's
// erasure has begun and 410 {"error": "User erased", "code": "erased"}
// after it (WithFence), 500 when the change could not be recorded (the
// audit sink down, say: nothing changed), 405 for other methods.
//
// A request carrying Global Privacy Control (GPC: "Sec-GPC: 1") is an
// opt-out of ThirdParty, as HonourGPC records it: withdrawn with Source
// SourceGPC (once; audited and mirrored like any change) before GET
// answers or PUT records the other purposes, and a PUT cannot grant
// ThirdParty while its browser sends the signal; its answer shows
// "thirdParty": false. When the opt-out cannot be recorded the answer is
// 500 and nothing else changes.
func (m *Manager) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := rbac.PrincipalFrom(r.Context())
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
			return
		}
		gpc := GPC(r)
		switch r.Method {
		case http.MethodGet:
			if gpc {
				if err := m.recordGPC(r, p.UserID); err != nil && !errors.Is(err, privacy.ErrFenced) {
					writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Could not record the Global Privacy Control opt-out"})
					return
				}
			}
			st, err := m.Current(r.Context(), p.UserID)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Could not read consent"})
				return
			}
			writeJSON(w, http.StatusOK, m.wire(st))
		case http.MethodPut:
			changes, meta, err := m.decodeChanges(r.Body)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
				return
			}
			meta.Actor = p.UserID
			var st State
			if gpc {
				// The signal decides ThirdParty: recorded as its own
				// opt-out, never granted by this request.
				delete(changes, ThirdParty)
				err = m.recordGPC(r, p.UserID)
			}
			if err == nil {
				if len(changes) > 0 {
					st, err = m.Update(r.Context(), p.UserID, changes, meta)
				} else {
					st, err = m.Current(r.Context(), p.UserID)
				}
			}
			switch {
			case errors.Is(err, ErrInvalidRecord):
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": strings.TrimPrefix(err.Error(), "consent: ")})
				return
			case errors.Is(err, privacy.ErrErased):
				writeJSON(w, http.StatusGone, map[string]any{"error": "User erased", "code": "erased"})
				return
			case errors.Is(err, privacy.ErrFenced):
				writeJSON(w, http.StatusConflict, map[string]any{"error": "User is being erased", "code": "erasure_in_progress"})
				return
			}
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Could not record consent"})
				return
			}
			writeJSON(w, http.StatusOK, m.wire(st))
		default:
			w.Header().Set("Allow", "GET, PUT")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "Method not allowed"})
		}
	})
}

func (m *Manager) wire(st State) map[string]any {
	out := map[string]any{"updatedAt": nil}
	for p, minVersion := range m.purposes {
		out[wireName(p)] = st.Granted(p, minVersion)
	}
	if t := st.UpdatedAt(); !t.IsZero() {
		out["updatedAt"] = t.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	return out
}

func (m *Manager) decodeChanges(body io.Reader) (map[Purpose]bool, Meta, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(body, 64<<10))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, Meta{}, errors.New("body must be a JSON object of purpose: boolean")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Meta{}, errors.New("body must be a single JSON object of purpose: boolean")
	}
	byWire := make(map[string]Purpose, len(m.purposes))
	for p := range m.purposes {
		byWire[wireName(p)] = p
		byWire[string(p)] = p
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	changes := map[Purpose]bool{}
	var meta Meta
	for _, k := range keys {
		v := raw[k]
		switch k {
		case "policyVersion":
			if isNull(v) || json.Unmarshal(v, &meta.PolicyVersion) != nil || meta.PolicyVersion < 0 {
				return nil, Meta{}, errors.New("policyVersion must be a non-negative integer")
			}
			continue
		case "source":
			if isNull(v) || json.Unmarshal(v, &meta.Source) != nil {
				return nil, Meta{}, errors.New("source must be a string")
			}
			continue
		case "updatedAt":
			continue // echoed back from a GET; the server sets it
		}
		p, ok := byWire[k]
		if !ok {
			return nil, Meta{}, fmt.Errorf("unknown purpose %q", k)
		}
		var granted bool
		if isNull(v) || json.Unmarshal(v, &granted) != nil {
			return nil, Meta{}, fmt.Errorf("purpose %q must be true or false, not %s", k, truncate(string(v)))
		}
		changes[p] = granted
	}
	if len(changes) == 0 {
		return nil, Meta{}, errors.New("no purposes to change")
	}
	return changes, meta, nil
}

// isNull reports whether v is JSON null, which json.Unmarshal would
// silently read as false or 0.
func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
