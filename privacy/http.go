package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
)

// Response bodies of the handlers; the field names are the wire format.
type (
	errorBody struct {
		Error     string `json:"error"`
		Code      string `json:"code,omitempty"`
		RequestID string `json:"requestId,omitempty"`
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
		RequestID string    `json:"requestId"`
		Status    Status    `json:"status"`
		Location  string    `json:"location,omitempty"`
		ExpiresAt time.Time `json:"expiresAt,omitzero"`
	}
	scheduledBody struct {
		Message string         `json:"message"`
		Result  DeletionResult `json:"result"`
	}
	cancelledBody struct {
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	}
)

// Stable codes of the handlers' error bodies ("code").
const (
	codeFenced      = "erasure_in_progress"
	codeErased      = "erased"
	codeFenceFailed = "fence_check_failed"
)

// writeFenceError answers a refusal by the fence: 409 while the user's
// erasure runs, 410 once they are erased, 500 when the fence could not
// be read. It reports whether it answered.
func writeFenceError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrErased):
		writeJSON(w, http.StatusGone, errorBody{Error: "User erased", Code: codeErased})
	case errors.Is(err, ErrFenced):
		writeJSON(w, http.StatusConflict, errorBody{Error: "User is being erased", Code: codeFenced})
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Could not check the user's erasure state", Code: codeFenceFailed})
	}
	return true
}

// ConfirmHeader is the header DeleteHandler requires, with value "true".
const ConfirmHeader = "X-Confirm-Delete"

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// allowMethods answers 405 with an Allow header, and returns false, unless
// the request's method is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "Method not allowed"})
	return false
}

// signedIn returns the request's principal, or answers 401 and returns
// false when there is none.
func signedIn(w http.ResponseWriter, r *http.Request) (rbac.Principal, bool) {
	p, ok := rbac.PrincipalFrom(r.Context())
	if !ok || p.UserID == "" {
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "Unauthorized"})
		return p, false
	}
	return p, true
}

// subject authenticates the request and returns whose data it acts on:
// the principal, or the user named by the userId query parameter when
// the principal may act on others. It answers 401, 403 or 400 itself and
// then returns false.
func (s *Service) subject(w http.ResponseWriter, r *http.Request) (rbac.Principal, string, bool) {
	p, ok := signedIn(w, r)
	if !ok {
		return p, "", false
	}
	target := r.URL.Query().Get("userId")
	if target == "" || target == p.UserID {
		return p, p.UserID, true
	}
	if s.authz == nil || !s.authz.Allowed(p, AdminPermission) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden"})
		return p, "", false
	}
	if steward.ValidateFor(s.idp, target) != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "Invalid user ID", Code: CodeInvalidUserID})
		return p, "", false
	}
	return p, target, true
}

// isAdmin reports whether p may act on other users.
func (s *Service) isAdmin(p rbac.Principal) bool {
	return s.authz != nil && s.authz.Allowed(p, AdminPermission)
}

// ExportHandler serves the export endpoint (GET) of GDPR Art. 15 and 20:
//
//   - 200 with the export document (see ExportDocument), Content-Type
//     application/json and Content-Disposition: attachment;
//     filename="user-data-<id>.json";
//   - 202 {"requestId": ..., "status": "pending"} when the export is
//     queued: asked for with ?async=1, or, when a BlobWriter is
//     configured, larger or slower than WithInlineExportLimits allows
//     (a user has one pending export at a time: asking again answers
//     its ID);
//   - 401 {"error": "Unauthorized"} without a principal in the context;
//   - 403 {"error": "Forbidden"} for ?userId=<another user> without
//     AdminPermission; 400 {"error": "Invalid user ID"} for a malformed
//     one, or one the identity provider refuses (steward.IDValidator);
//   - 404 {"error": "User not found"};
//   - 409 {"error": "User is being erased", "code":
//     "erasure_in_progress"} once the user's erasure has begun, and 410
//     {"error": "User erased", "code": "erased"} after it (see
//     Service.CheckFence);
//   - 501 {"error": "Queued exports are not configured"} for ?async=1
//     without a BlobWriter;
//   - 405 for methods other than GET and HEAD.
//
// An administrator exporting another user writes a data_access audit
// event besides the data_export one.
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
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
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
		if writeFenceError(w, s.CheckFence(r.Context(), target)) {
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
	switch {
	case errors.Is(err, steward.ErrUserNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "User not found"})
	case errors.Is(err, steward.ErrInvalidUserID):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "Invalid user ID", Code: CodeInvalidUserID})
	case errors.Is(err, ErrFenced):
		writeFenceError(w, err)
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Export failed", Code: "export_failed"})
	}
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
	_, err = s.writeExport(ctx, "inline", "", u, buf)
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
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "Queued exports are not configured"})
	case errors.Is(err, ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service shutting down"})
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
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Request lookup failed"})
		return
	}
	if req.Kind != KindExport {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
		return
	}
	if !s.owns(req, p.UserID) && !s.isAdmin(p) {
		// Someone else's request is as good as absent.
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
		return
	}
	writeJSON(w, http.StatusOK, queuedBody{RequestID: req.ID, Status: req.Status, Location: req.Location, ExpiresAt: req.ExpiresAt})
}

// DownloadHandler serves a finished queued export (GET
// ?requestId=<id>) to its user, or to an administrator
// (AdminPermission, which writes a data_access audit event):
//
//   - 200 with the export document, Content-Type application/json and
//     Content-Disposition: attachment; filename="user-data-<id>.json"
//     (the user's ID, or for an administrator the request's);
//   - 202 {"requestId", "status"} while the export is pending or partial;
//   - 400 {"error": "requestId is required"};
//   - 401 {"error": "Unauthorized"} without a principal;
//   - 404 {"error": "Request not found"} for an unknown request, one that
//     is not an export, or another user's (to a non-administrator);
//   - 409 or 410 for a principal whose erasure has begun or ended (see
//     ExportHandler);
//   - 410 {"error": "Export expired", "code": "expired"} once the blob was
//     deleted (WithExportTTL, or an erasure), and {"error": "Export
//     cancelled", "code": "cancelled"} for a cancelled export;
//   - 501 without a BlobWriter that is a BlobOpener;
//   - 405 for methods other than GET.
func (s *Service) DownloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowMethods(w, r, http.MethodGet) {
			return
		}
		p, ok := signedIn(w, r)
		if !ok {
			return
		}
		if s.opener == nil {
			writeJSON(w, http.StatusNotImplemented, errorBody{Error: "Queued exports are not configured"})
			return
		}
		id := r.URL.Query().Get("requestId")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "requestId is required"})
			return
		}
		if writeFenceError(w, s.CheckFence(r.Context(), p.UserID)) {
			return
		}
		req, err := s.requests.Get(r.Context(), id)
		switch {
		case errors.Is(err, ErrRequestNotFound):
			writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
			return
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Request lookup failed"})
			return
		}
		own := s.owns(req, p.UserID)
		if req.Kind != KindExport || !own && !s.isAdmin(p) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
			return
		}
		switch {
		case req.Status == StatusCancelled:
			writeJSON(w, http.StatusGone, errorBody{Error: "Export cancelled", Code: "cancelled", RequestID: req.ID})
			return
		case req.Status == StatusExpired, req.Status == StatusCompleted && req.Location == "",
			req.Status == StatusCompleted && !req.ExpiresAt.IsZero() && !s.clock().Before(req.ExpiresAt):
			writeJSON(w, http.StatusGone, errorBody{Error: "Export expired", Code: "expired", RequestID: req.ID})
			return
		case req.Status != StatusCompleted:
			writeJSON(w, http.StatusAccepted, queuedBody{RequestID: req.ID, Status: req.Status})
			return
		}
		if !own {
			if err := s.logEvent(r.Context(), audit.DataAccess, req.UserID, p.UserID,
				map[string]any{"what": "export download", "requestId": req.ID}); err != nil {
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Export failed", Code: CodeAuditFailed, RequestID: req.ID})
				return
			}
		}
		rc, err := s.opener.Open(r.Context(), req.Location)
		if errors.Is(err, ErrBlobNotFound) {
			writeJSON(w, http.StatusGone, errorBody{Error: "Export expired", Code: "expired", RequestID: req.ID})
			return
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Export failed", Code: "export_failed", RequestID: req.ID})
			return
		}
		defer rc.Close()
		name := req.ID
		if own {
			name = p.UserID
		}
		exportHeaders(w, name)
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, rc)
	})
}

// DeleteHandler serves the erasure endpoint (DELETE) of GDPR Art. 17:
//
//   - 401 {"error": "Unauthorized"} without a principal in the context;
//   - 403 {"error": "Forbidden"} for ?userId=<another user> without
//     AdminPermission; 400 {"error": "Invalid user ID"} for a malformed
//     one, or one the identity provider refuses (steward.IDValidator);
//   - 404 {"error": "User not found"} when an administrator names a user
//     the identity provider does not know and who has no open request;
//   - 400 {"error": "Confirmation required", "requiresHeader":
//     "X-Confirm-Delete: true"} without that header;
//   - 200 {"message": "Account deleted successfully", "result":
//     <DeletionResult>} when every step is done;
//   - 202 {"message": "Deletion scheduled", "result": <DeletionResult>}
//     while the request's grace period runs (WithGracePeriod;
//     result.notBefore says until when; CancelHandler takes it back);
//   - 500 {"error": "Partial deletion", "details": <DeletionResult>} when
//     a step failed (the request stays partial, for Resume);
//   - 409 {"error": "Legal hold", "details": <DeletionResult>} when the
//     user is under legal hold (the hold's reason is never in the body);
//   - 409 {"error": "Request cancelled", "code": "cancelled",
//     "requestId"} for a request an administrator cancelled meanwhile;
//   - 500 {"error": "Deletion failed", "code", "requestId"} when the
//     request could not be recorded or run;
//   - 405 for methods other than DELETE.
//
// Every error in a body is a stable code with a fixed sentence (see
// StepError) and the request ID: never what a store or provider said.
// The erasure runs to the end even if the client goes away.
func (s *Service) DeleteHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowMethods(w, r, http.MethodDelete) {
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
		ctx := context.WithoutCancel(r.Context())
		if target != p.UserID {
			known, err := s.known(ctx, target)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Deletion failed", Code: CodeIdentityFailed})
				return
			}
			if !known {
				writeJSON(w, http.StatusNotFound, errorBody{Error: "User not found"})
				return
			}
		}
		res, err := s.Erase(ctx, target, RequestedBy(p.UserID))
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, deletedBody{"Account deleted successfully", res})
		case errors.Is(err, ErrScheduled):
			writeJSON(w, http.StatusAccepted, scheduledBody{"Deletion scheduled", res})
		case errors.Is(err, ErrLegalHold):
			writeJSON(w, http.StatusConflict, failedBody{"Legal hold", res})
		case errors.Is(err, ErrPartialDeletion):
			writeJSON(w, http.StatusInternalServerError, failedBody{"Partial deletion", res})
		case errors.Is(err, ErrCancelled):
			writeJSON(w, http.StatusConflict, errorBody{Error: "Request cancelled", Code: "cancelled", RequestID: res.RequestID})
		case errors.Is(err, steward.ErrInvalidUserID):
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "Invalid user ID", Code: CodeInvalidUserID})
		default:
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Deletion failed", Code: "deletion_failed", RequestID: res.RequestID})
		}
	})
}

// known reports whether the identity provider knows userID or the user
// has an open erasure request.
func (s *Service) known(ctx context.Context, userID string) (bool, error) {
	_, err := s.idp.GetUser(ctx, userID)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, steward.ErrUserNotFound):
		return false, err
	}
	for _, err := range s.requests.List(ctx, RequestFilter{Kind: KindErasure, UserID: userID, Statuses: openStatuses, Limit: 1}) {
		return err == nil, err
	}
	return false, nil
}

// CancelHandler serves POST {"requestId": ..., "reason": ...}: Cancel
// with the principal in the context (an administrator, or the data
// subject while their erasure's grace period runs):
//
//   - 200 {"message": "Request cancelled", "requestId"};
//   - 400 {"error": ...} for a body without requestId or reason;
//   - 401 without a principal; 403 {"error": "Forbidden"} when the
//     principal may not cancel the request; 404 for an unknown request
//     (or another user's, to a non-administrator);
//   - 409 {"error": "Request already finished"} for a finished request;
//   - 500 {"error": "Cancellation failed"} when it could not be audited
//     or stored (nothing changed);
//   - 405 for methods other than POST.
func (s *Service) CancelHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		p, ok := signedIn(w, r)
		if !ok {
			return
		}
		var body struct {
			RequestID string `json:"requestId"`
			Reason    string `json:"reason"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&body); err != nil || body.RequestID == "" || strings.TrimSpace(body.Reason) == "" {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: `body must be {"requestId": "...", "reason": "..."}`})
			return
		}
		req, err := s.requests.Get(r.Context(), body.RequestID)
		if errors.Is(err, ErrRequestNotFound) || err == nil && !s.owns(req, p.UserID) && !s.isAdmin(p) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "Request not found"})
			return
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Request lookup failed"})
			return
		}
		_, err = s.Cancel(context.WithoutCancel(r.Context()), body.RequestID, body.Reason)
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, cancelledBody{"Request cancelled", body.RequestID})
		case errors.Is(err, ErrForbidden):
			writeJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden", RequestID: body.RequestID})
		case errors.Is(err, ErrInvalidRequest):
			writeJSON(w, http.StatusConflict, errorBody{Error: "Request already finished", RequestID: body.RequestID})
		default:
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Cancellation failed", RequestID: body.RequestID})
		}
	})
}
