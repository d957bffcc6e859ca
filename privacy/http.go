package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/rbac"
)

// Response bodies of the handlers; the field names are the wire format.
type (
	errorBody struct {
		Error string `json:"error"`
	}
	confirmBody struct {
		Error          string `json:"error"`
		RequiresHeader string `json:"requiresHeader"`
	}
	deletedBody struct {
		Message string         `json:"message"`
		Result  DeletionResult `json:"result"`
	}
	failedBody struct {
		Error   string         `json:"error"`
		Details DeletionResult `json:"details"`
	}
	queuedBody struct {
		RequestID string `json:"requestId"`
		Status    Status `json:"status"`
		Location  string `json:"location,omitempty"`
	}
)

// ConfirmHeader is the header DeleteHandler requires, with value "true".
const ConfirmHeader = "X-Confirm-Delete"

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// subject authenticates the request and returns whose data it acts on:
// the principal, or the user named by the userId query parameter when
// the principal may act on others. It answers 401, 403 or 400 itself and
// then returns false.
func (s *Service) subject(w http.ResponseWriter, r *http.Request) (rbac.Principal, string, bool) {
	p, ok := rbac.PrincipalFrom(r.Context())
	if !ok || p.UserID == "" {
		writeJSON(w, http.StatusUnauthorized, errorBody{"Unauthorized"})
		return p, "", false
	}
	target := r.URL.Query().Get("userId")
	if target == "" || target == p.UserID {
		return p, p.UserID, true
	}
	if s.authz == nil || !s.authz.Allowed(p, AdminPermission) {
		writeJSON(w, http.StatusForbidden, errorBody{"Forbidden"})
		return p, "", false
	}
	if steward.ValidateUserID(target) != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"Invalid user ID"})
		return p, "", false
	}
	return p, target, true
}

// ExportHandler serves the GDPR export endpoint (GET), wire-compatible
// with the data-handling guide:
//
//   - 200 with the export document (see ExportDocument), Content-Type
//     application/json and Content-Disposition: attachment;
//     filename="user-data-<id>.json";
//   - 202 {"requestId": ..., "status": "pending"} when the export is
//     queued: asked for with ?async=1, or, when a BlobWriter is
//     configured, larger or slower than WithInlineExportLimits allows;
//   - 401 {"error": "Unauthorized"} without a principal in the context;
//   - 403 {"error": "Forbidden"} for ?userId=<another user> without
//     AdminPermission; 400 {"error": "Invalid user ID"} for a malformed one;
//   - 404 {"error": "User not found"};
//   - 501 {"error": "Queued exports are not configured"} for ?async=1
//     without a BlobWriter;
//   - 405 for methods other than GET and HEAD.
//
// HEAD answers the headers of the 200 (or the error) without reading or
// exporting any data.
//
// GET ?requestId=<id> polls a queued export of the caller (or, for an
// administrator, of anyone): 200 {"requestId", "status", "location"}, or
// 404. Without a BlobWriter the document streams straight to the client;
// a store failing mid-stream then aborts the connection, so the client
// sees a truncated, invalid document rather than a plausible one.
func (s *Service) ExportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{"Method not allowed"})
			return
		}
		p, target, ok := s.subject(w, r)
		if !ok {
			return
		}
		q := r.URL.Query()
		if id := q.Get("requestId"); id != "" {
			s.servePoll(w, r, p, id)
			return
		}
		if a := q.Get("async"); a == "1" || a == "true" {
			s.queueExport(w, r, target)
			return
		}
		if r.Method == http.MethodHead {
			// Headers only: no data is read, so nothing is exported.
			if _, err := s.exportUser(r.Context(), target); err != nil {
				writeExportError(w, err)
				return
			}
			exportHeaders(w, target)
			w.WriteHeader(http.StatusOK)
			return
		}
		if s.blobs == nil {
			s.streamExport(w, r, target)
			return
		}
		s.bufferedExport(w, r, target)
	})
}

func exportHeaders(w http.ResponseWriter, userID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	// userID passed ValidateUserID: only letters, digits, '_' and '-'.
	h.Set("Content-Disposition", `attachment; filename="user-data-`+userID+`.json"`)
}

func writeExportError(w http.ResponseWriter, err error) {
	if errors.Is(err, steward.ErrUserNotFound) {
		writeJSON(w, http.StatusNotFound, errorBody{"User not found"})
		return
	}
	writeJSON(w, http.StatusInternalServerError, errorBody{"Export failed"})
}

// startedWriter records whether anything was written.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}

func (s *Service) streamExport(w http.ResponseWriter, r *http.Request, userID string) {
	exportHeaders(w, userID)
	sw := &startedWriter{w: w}
	if err := s.Export(r.Context(), userID, sw); err != nil {
		if !sw.started {
			w.Header().Del("Content-Disposition")
			writeExportError(w, err)
			return
		}
		panic(http.ErrAbortHandler) // cut the response: never a plausible partial export
	}
}

// errTooLarge stops an inline export that outgrew its buffer.
var errTooLarge = errors.New("privacy: export larger than the inline limit")

// limitBuffer is a bytes.Buffer that refuses to grow past max.
type limitBuffer struct {
	bytes.Buffer
	max int64
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	if int64(b.Len()+len(p)) > b.max {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

func (s *Service) bufferedExport(w http.ResponseWriter, r *http.Request, userID string) {
	ctx, cancel := context.WithTimeout(r.Context(), s.inlineTime)
	defer cancel()
	u, err := s.exportUser(ctx, userID)
	if err != nil {
		writeExportError(w, err)
		return
	}
	buf := &limitBuffer{max: s.inlineBytes}
	_, err = s.writeDocument(ctx, u, buf)
	switch {
	case errors.Is(err, errTooLarge),
		errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		s.queueExport(w, r, userID)
		return
	case err != nil:
		writeExportError(w, err)
		return
	}
	if err := s.logExport(r.Context(), userID, actorFrom(r.Context()), map[string]any{"mode": "inline"}); err != nil {
		writeExportError(w, err)
		return
	}
	exportHeaders(w, userID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func (s *Service) queueExport(w http.ResponseWriter, r *http.Request, userID string) {
	id, err := s.StartExport(r.Context(), userID)
	switch {
	case errors.Is(err, ErrAsyncUnavailable):
		writeJSON(w, http.StatusNotImplemented, errorBody{"Queued exports are not configured"})
	case errors.Is(err, ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"Service shutting down"})
	case err != nil:
		writeExportError(w, err)
	default:
		writeJSON(w, http.StatusAccepted, queuedBody{RequestID: id, Status: StatusPending})
	}
}

func (s *Service) servePoll(w http.ResponseWriter, r *http.Request, p rbac.Principal, id string) {
	req, err := s.requests.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrRequestNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{"Request not found"})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody{"Request lookup failed"})
		return
	}
	if req.Kind != KindExport {
		writeJSON(w, http.StatusNotFound, errorBody{"Request not found"})
		return
	}
	if req.UserID != p.UserID && (s.authz == nil || !s.authz.Allowed(p, AdminPermission)) {
		// Someone else's request is as good as absent.
		writeJSON(w, http.StatusNotFound, errorBody{"Request not found"})
		return
	}
	writeJSON(w, http.StatusOK, queuedBody{RequestID: req.ID, Status: req.Status, Location: req.Location})
}

// DeleteHandler serves the GDPR erasure endpoint (DELETE), wire-compatible
// with the data-handling guide:
//
//   - 401 {"error": "Unauthorized"} without a principal in the context;
//   - 403 {"error": "Forbidden"} for ?userId=<another user> without
//     AdminPermission; 400 {"error": "Invalid user ID"} for a malformed one;
//   - 400 {"error": "Confirmation required", "requiresHeader":
//     "X-Confirm-Delete: true"} without that header;
//   - 200 {"message": "Account deleted successfully", "result":
//     <DeletionResult>} when every step is done;
//   - 500 {"error": "Partial deletion", "details": <DeletionResult>} when
//     a step failed (the request stays partial, for Resume);
//   - 409 {"error": "Legal hold", "details": <DeletionResult>} when the
//     user is under legal hold;
//   - 500 {"error": "Deletion failed"} when the request could not be
//     recorded;
//   - 405 for methods other than DELETE.
//
// The erasure runs to the end even if the client goes away.
func (s *Service) DeleteHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			w.Header().Set("Allow", "DELETE")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{"Method not allowed"})
			return
		}
		p, target, ok := s.subject(w, r)
		if !ok {
			return
		}
		if r.Header.Get(ConfirmHeader) != "true" {
			writeJSON(w, http.StatusBadRequest, confirmBody{"Confirmation required", ConfirmHeader + ": true"})
			return
		}
		res, err := s.Erase(context.WithoutCancel(r.Context()), target, RequestedBy(p.UserID))
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, deletedBody{"Account deleted successfully", res})
		case errors.Is(err, ErrLegalHold):
			writeJSON(w, http.StatusConflict, failedBody{"Legal hold", res})
		case errors.Is(err, ErrPartialDeletion):
			writeJSON(w, http.StatusInternalServerError, failedBody{"Partial deletion", res})
		default:
			writeJSON(w, http.StatusInternalServerError, errorBody{"Deletion failed"})
		}
	})
}
