package useradmin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

// Handler serves the administration API, every route behind
// rbac.Require(admin:users) (401 without a principal, 403 without the
// permission):
//
//	GET  /users/{id}/role          → 200 {"role": "admin"}
//	PUT  /users/{id}/role          {"role": "admin"} → 200 {"role": "admin", "previousRole": "user"}
//	POST /users/{id}/ban           → 200 {"action": "ban"}   (likewise unban, lock, unlock)
//
// Errors are JSON {"error": ...}: 400 for a malformed user ID, body or
// unknown role (named), 403 for an action on one's own account, 404 for
// an unknown user, 409 when the last active admin would be removed, 501
// when the provider cannot ban or lock, 503 with Retry-After: 1 when
// another change held the administrators lock too long (ErrBusy), and
// 503 when the change could not be audited (ErrNotAudited: nothing
// changed). Reading a role writes a data_access audit event first. Mount
// it under a prefix with http.StripPrefix.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/role", func(w http.ResponseWriter, r *http.Request) {
		role, err := m.Role(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		// An administrator reading a user's data is recorded first.
		if m.audit != nil {
			actor, _ := rbac.PrincipalFrom(r.Context())
			if err := m.audit.Log(r.Context(), audit.Event{Type: audit.DataAccess, Subject: r.PathValue("id"), Actor: actor.UserID,
				Details: map[string]any{"what": "role"}}); err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "the read could not be audited"})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"role": role})
	})
	mux.HandleFunc("PUT /users/{id}/role", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Role *string `json:"role"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Role == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": `body must be {"role": "<role>"}`})
			return
		}
		actor, _ := rbac.PrincipalFrom(r.Context())
		prev, err := m.AssignRole(r.Context(), actor, r.PathValue("id"), rbac.Role(*body.Role))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"role": *body.Role, "previousRole": prev})
	})
	for _, a := range []Action{Ban, Unban, Lock, Unlock} {
		mux.HandleFunc("POST /users/{id}/"+string(a), func(w http.ResponseWriter, r *http.Request) {
			actor, _ := rbac.PrincipalFrom(r.Context())
			id := r.PathValue("id")
			var err error
			switch a {
			case Ban, Unban:
				err = m.SetBanned(r.Context(), actor, id, a == Ban)
			default:
				err = m.SetLocked(r.Context(), actor, id, a == Lock)
			}
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"action": a})
		})
	}
	return rbac.Require(rbac.AdminUsers, rbac.WithAuthorizer(m.authz), rbac.WithAudit(m.audit))(mux)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := "internal error"
	switch {
	case errors.Is(err, steward.ErrInvalidUserID), errors.Is(err, ErrUnknownRole):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, steward.ErrUserNotFound):
		status, msg = http.StatusNotFound, "user not found"
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrSelfAction):
		status, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, ErrLastAdmin):
		status, msg = http.StatusConflict, err.Error()
	case errors.Is(err, ErrUnsupported):
		status, msg = http.StatusNotImplemented, err.Error()
	case errors.Is(err, ErrNotAudited):
		status, msg = http.StatusServiceUnavailable, ErrNotAudited.Error()
	case errors.Is(err, ErrBusy):
		status, msg = http.StatusServiceUnavailable, ErrBusy.Error()
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]any{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
