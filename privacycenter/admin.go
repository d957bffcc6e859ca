package privacycenter

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

// admin lets only principals allowed admin:users through: 401 (the
// signed-out page) without a principal, 403 with an access_denied audit
// event without the permission.
func (c *Center) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal(r)
		if !ok {
			c.signedOut(w, r)
			return
		}
		if !c.authz.Allowed(p, privacy.AdminPermission) {
			if c.audit != nil {
				err := c.audit.Log(r.Context(), audit.Event{Type: audit.AccessDenied, Subject: p.UserID, Actor: p.UserID,
					Details: map[string]any{"permissions": []string{string(privacy.AdminPermission)}, "method": r.Method,
						"role": string(p.Role), "scope": "global", "route": r.Pattern}})
				if err != nil {
					c.log.ErrorContext(r.Context(), "privacycenter: recording a denied access", "err", err)
				}
			}
			c.fail(w, r, http.StatusForbidden, "Not allowed",
				"These pages are for the people who answer privacy requests: they need the "+string(privacy.AdminPermission)+" permission.")
			return
		}
		next(w, r)
	}
}

// queueQuery is the admin queue's filter as the form and links carry it.
type queueQuery struct {
	Kind    string
	Status  string
	Overdue bool
	After   string
}

// Values returns q as query parameters.
func (q queueQuery) Values() url.Values {
	v := url.Values{}
	if q.Kind != "" {
		v.Set("kind", q.Kind)
	}
	if q.Status != "" && q.Status != "open" {
		v.Set("status", q.Status)
	}
	if q.Overdue {
		v.Set("overdue", "1")
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	return v
}

var queueStatuses = []string{"open", "all", string(privacy.StatusPending), string(privacy.StatusPartial), string(privacy.StatusHeld),
	string(privacy.StatusCompleted), string(privacy.StatusCancelled), string(privacy.StatusExpired)}

// errBadFilter reports a filter the queue does not know.
var errBadFilter = errors.New("bad filter")

// parseQueue reads the queue's filter from r.
func (c *Center) parseQueue(r *http.Request) (queueQuery, privacy.RequestFilter, error) {
	v := r.URL.Query()
	q := queueQuery{Kind: v.Get("kind"), Status: v.Get("status"), Overdue: v.Get("overdue") == "1", After: v.Get("after")}
	if q.Status == "" {
		q.Status = "open"
	}
	var f privacy.RequestFilter
	switch privacy.Kind(q.Kind) {
	case "", privacy.KindErasure, privacy.KindExport:
		f.Kind = privacy.Kind(q.Kind)
	default:
		return q, f, fmt.Errorf("%w: kind %q", errBadFilter, q.Kind)
	}
	switch q.Status {
	case "open":
		f.Statuses = []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld}
	case "all":
	default:
		if !slices.Contains(queueStatuses, q.Status) {
			return q, f, fmt.Errorf("%w: status %q", errBadFilter, q.Status)
		}
		f.Statuses = []privacy.Status{privacy.Status(q.Status)}
	}
	if q.Overdue {
		// Overdue: pending or partial past the due date (Request.Overdue).
		var st []privacy.Status
		for _, s := range []privacy.Status{privacy.StatusPending, privacy.StatusPartial} {
			if len(f.Statuses) == 0 || slices.Contains(f.Statuses, s) {
				st = append(st, s)
			}
		}
		if len(st) == 0 {
			st = []privacy.Status{"none"} // a status no request has: the filter matches nothing
		}
		f.Statuses, f.DueBefore = st, c.clock()
	}
	if q.After != "" {
		cur, err := decodeCursor(q.After)
		if err != nil {
			return q, f, err
		}
		f.After = cur
	}
	return q, f, nil
}

// encodeCursor writes a cursor for a URL: base64url of
// "<unix nanoseconds>.<request ID>". It holds no personal data.
func encodeCursor(c privacy.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.ReceivedAt.UnixNano(), 10) + "." + c.ID))
}

func decodeCursor(s string) (privacy.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return privacy.Cursor{}, fmt.Errorf("%w: after is not a cursor", errBadFilter)
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return privacy.Cursor{}, fmt.Errorf("%w: after is not a cursor", errBadFilter)
	}
	return privacy.Cursor{ReceivedAt: time.Unix(0, n).UTC(), ID: id}, nil
}

type queueData struct {
	Query    queueQuery
	Requests []requestView
	Next     string
	First    string
	CSV      string
	Kinds    []string
	Statuses []string
}

func (c *Center) queuePage(w http.ResponseWriter, r *http.Request) {
	q, f, err := c.parseQueue(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Filter not understood", "The queue has no such filter ("+err.Error()+").")
		return
	}
	f.Limit = c.pageSize + 1
	d := queueData{Query: q, Kinds: []string{string(privacy.KindErasure), string(privacy.KindExport)}, Statuses: queueStatuses}
	var last privacy.Request
	for req, err := range c.svc.Requests(r.Context(), f) {
		if err != nil {
			c.internal(w, r, "read the request queue", err)
			return
		}
		if len(d.Requests) == c.pageSize {
			next := q
			next.After = encodeCursor(last.Cursor())
			d.Next = c.prefix + "/admin?" + next.Values().Encode()
			break
		}
		d.Requests = append(d.Requests, c.view(req, c.subject(req)))
		last = req
	}
	first := q
	first.After = ""
	if q.After != "" {
		d.First = c.prefix + "/admin?" + first.Values().Encode()
	}
	d.CSV = c.prefix + "/admin/requests.csv?" + first.Values().Encode()
	c.render(w, r, http.StatusOK, "queue", page{Title: "Request queue", Nav: "admin", Data: d})
}

// queueCSV writes every request matching the queue's filter as CSV:
// pseudonyms, never user IDs.
func (c *Center) queueCSV(w http.ResponseWriter, r *http.Request) {
	_, f, err := c.parseQueue(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "Filter not understood", "The queue has no such filter ("+err.Error()+").")
		return
	}
	f.After = privacy.Cursor{}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="privacy-requests.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "kind", "status", "regime", "subject", "received_at", "due_at", "days_left", "overdue", "extended_at", "completed_at", "steps_done", "steps"})
	now := c.clock()
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for req, err := range c.svc.Requests(r.Context(), f) {
		if err != nil {
			c.log.ErrorContext(r.Context(), "privacycenter: CSV of the request queue", "err", err)
			panic(http.ErrAbortHandler) // cut the file: never a plausible partial one
		}
		v := c.view(req, c.subject(req))
		_ = cw.Write([]string{req.ID, string(req.Kind), string(req.Status), string(req.Regime), v.Subject,
			ts(req.ReceivedAt), ts(req.DueAt), v.Badge.Text, strconv.FormatBool(req.Overdue(now)),
			ts(req.ExtendedAt), ts(req.CompletedAt), strconv.Itoa(v.Done), strconv.Itoa(v.Total)})
	}
	cw.Flush()
}

type requestData struct {
	Request  requestView
	Timeline []stepView
	Events   []audit.Event
	Reader   bool
	Holds    bool
	Hold     *retention.Hold
}

func (c *Center) requestPage(w http.ResponseWriter, r *http.Request) {
	c.renderRequest(w, r, http.StatusOK, "")
}

func (c *Center) renderRequest(w http.ResponseWriter, r *http.Request, status int, errText string) {
	id := r.PathValue("id")
	req, err := c.svc.Request(r.Context(), id)
	if errors.Is(err, privacy.ErrRequestNotFound) {
		c.fail(w, r, http.StatusNotFound, "Request not found", "There is no request with this ID.")
		return
	}
	if err != nil {
		c.internal(w, r, "read the request", err)
		return
	}
	v := c.view(req, c.subject(req))
	d := requestData{Request: v, Timeline: timeline(v.Steps), Reader: c.reader != nil, Holds: c.holds != nil && !req.Pseudonymous()}
	if c.reader != nil {
		for e, err := range c.reader.Events(r.Context(), 0) {
			if err != nil {
				c.internal(w, r, "read the audit trail", err)
				return
			}
			if e.Details["requestId"] == req.ID {
				d.Events = append(d.Events, e)
			}
		}
	}
	if d.Holds {
		h, ok, err := c.holds.Get(r.Context(), req.UserID)
		if err != nil {
			c.internal(w, r, "read the legal hold", err)
			return
		}
		if ok {
			d.Hold = &h
		}
	}
	c.render(w, r, status, "request", page{Title: "Request " + req.ID, Nav: "admin", Error: errText, Data: d})
}

// requestAction runs one of the request page's forms: resume, extend
// (reason), cancel (reason), hold (reason), release.
func (c *Center) requestAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	p, _ := principal(r)
	req, err := c.svc.Request(r.Context(), id)
	if errors.Is(err, privacy.ErrRequestNotFound) {
		c.fail(w, r, http.StatusNotFound, "Request not found", "There is no request with this ID.")
		return
	}
	if err != nil {
		c.internal(w, r, "read the request", err)
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	needsReason := action == "extend" || action == "cancel" || action == "hold"
	if needsReason && reason == "" {
		c.renderRequest(w, r, http.StatusBadRequest, "Give a reason: it is recorded with the change.")
		return
	}
	back := "/admin/requests/" + url.PathEscape(id)
	ctx := context.WithoutCancel(r.Context())
	switch action {
	case "resume":
		res, err := c.svc.Drive(ctx, id)
		switch {
		case res.Outcome == privacy.OutcomeScheduled:
			c.redirect(w, r, back, "scheduled")
		case err != nil && !errors.Is(err, privacy.ErrPartialDeletion) && !errors.Is(err, privacy.ErrLegalHold):
			c.log.WarnContext(r.Context(), "privacycenter: resuming a request", "request", id, "err", err)
			c.renderRequest(w, r, http.StatusConflict, "The request could not be run: "+string(res.Outcome)+".")
		default:
			c.redirect(w, r, back, "resumed")
		}
	case "extend":
		_, err := c.svc.Extend(ctx, id, reason)
		switch {
		case err == nil:
			c.redirect(w, r, back, "extended")
		case errors.Is(err, privacy.ErrAlreadyExtended):
			c.renderRequest(w, r, http.StatusConflict, "The deadline was extended already; the law allows one extension.")
		case errors.Is(err, privacy.ErrInvalidRequest):
			c.renderRequest(w, r, http.StatusConflict, "A finished request cannot be extended.")
		default:
			c.internal(w, r, "extend the request", err)
		}
	case "cancel":
		_, err := c.svc.Cancel(ctx, id, reason)
		switch {
		case err == nil:
			c.redirect(w, r, back, "cancelled")
		case errors.Is(err, privacy.ErrForbidden):
			c.renderRequest(w, r, http.StatusForbidden, "The privacy service does not let you cancel requests (see privacy.WithAuthorizer).")
		case errors.Is(err, privacy.ErrInvalidRequest):
			c.renderRequest(w, r, http.StatusConflict, "A finished request cannot be cancelled.")
		default:
			c.internal(w, r, "cancel the request", err)
		}
	case "hold", "release":
		if c.holds == nil {
			c.fail(w, r, http.StatusNotImplemented, "Holds not configured", "This privacy center has no legal holds (WithHolds).")
			return
		}
		if req.Pseudonymous() {
			c.renderRequest(w, r, http.StatusConflict, "This request is finished and no longer names its user, so no hold can be set from it.")
			return
		}
		if action == "hold" {
			err = c.holds.Place(ctx, retention.Hold{UserID: req.UserID, Reason: reason, PlacedBy: p.UserID, PlacedAt: c.clock()})
		} else {
			err = c.holds.Release(ctx, req.UserID)
		}
		if err != nil {
			c.internal(w, r, "change the legal hold", err)
			return
		}
		done := "held"
		if action == "release" {
			done = "released"
		}
		c.redirect(w, r, back, done)
	default:
		c.fail(w, r, http.StatusNotFound, "No such action", "Requests can be resumed, extended, cancelled, held or released.")
	}
}

type lookupData struct {
	UserID   string
	Requests []requestView
	Events   []audit.Event
	Reader   bool
	Hold     *retention.Hold
	Holds    bool
}

// lookupPage shows one user, named by ID (the only page whose URL holds
// a user ID): their requests with their ID, legal hold and audit events.
// Each lookup writes a data_access audit event first; without an audit
// logger (WithAudit) the page refuses to look anyone up.
func (c *Center) lookupPage(w http.ResponseWriter, r *http.Request) {
	userID := strings.TrimSpace(r.URL.Query().Get("userId"))
	d := lookupData{UserID: userID, Reader: c.reader != nil && c.pseudo != nil, Holds: c.holds != nil}
	if userID == "" {
		c.render(w, r, http.StatusOK, "lookup", page{Title: "Look a user up", Nav: "lookup", Data: d})
		return
	}
	if err := steward.ValidateUserID(userID); err != nil {
		d.UserID = ""
		c.render(w, r, http.StatusBadRequest, "lookup", page{Title: "Look a user up", Nav: "lookup", Error: "That is not a user ID.", Data: d})
		return
	}
	if c.audit == nil {
		c.fail(w, r, http.StatusNotImplemented, "Lookups not configured", "Looking a user up is audited, and this privacy center has no audit logger (WithAudit).")
		return
	}
	p, _ := principal(r)
	if err := c.audit.Log(r.Context(), audit.Event{Type: audit.DataAccess, Subject: userID, Actor: p.UserID,
		Details: map[string]any{"what": "privacy center lookup"}}); err != nil {
		c.internal(w, r, "record the lookup in the audit trail, so nothing was looked up", err)
		return
	}
	for req, err := range c.svc.Requests(r.Context(), privacy.RequestFilter{UserID: userID}) {
		if err != nil {
			c.internal(w, r, "read the user's requests", err)
			return
		}
		d.Requests = append(d.Requests, c.view(req, userID))
	}
	slices.Reverse(d.Requests)
	if c.holds != nil {
		h, ok, err := c.holds.Get(r.Context(), userID)
		if err != nil {
			c.internal(w, r, "read the legal hold", err)
			return
		}
		if ok {
			d.Hold = &h
		}
	}
	if d.Reader {
		for e, err := range c.pseudo.Lookup(c.reader.Events(r.Context(), 0), userID) {
			if err != nil {
				c.internal(w, r, "read the audit trail", err)
				return
			}
			d.Events = append(d.Events, e)
		}
		slices.Reverse(d.Events)
		d.Events = d.Events[:min(len(d.Events), 100)]
	}
	c.render(w, r, http.StatusOK, "lookup", page{Title: "Look a user up", Nav: "lookup", Data: d})
}

type auditData struct {
	Reader bool
	OK     bool
	Events uint64
	Last   audit.Event
	Broken *audit.ChainError
}

// auditPage verifies the audit chain (audit.Verify) from its first
// event and shows the outcome.
func (c *Center) auditPage(w http.ResponseWriter, r *http.Request) {
	d := auditData{Reader: c.reader != nil}
	if c.reader != nil {
		var n uint64
		counted := func(yield func(audit.Event, error) bool) {
			for e, err := range c.reader.Events(r.Context(), 0) {
				if err == nil {
					n++
				}
				if !yield(e, err) {
					return
				}
			}
		}
		err := audit.Verify(counted)
		var ce *audit.ChainError
		switch {
		case errors.As(err, &ce):
			d.Broken = ce
		case err != nil:
			c.internal(w, r, "read the audit trail", err)
			return
		default:
			d.OK = true
		}
		d.Events = n
		if d.Last, err = c.reader.Last(r.Context()); err != nil {
			c.internal(w, r, "read the audit trail", err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Audit trail", Nav: "audit", Data: d})
}
