package privacycenter

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// self returns the signed-in principal of a self-service page. Without
// one it renders the signed-out page (with the result of the erasure
// this browser asked for, if any); for a user whose erasure has begun
// it renders where the erasure stands. It then returns false.
func (c *Center) self(w http.ResponseWriter, r *http.Request) (rbac.Principal, bool) {
	p, ok := principal(r)
	if !ok {
		c.signedOut(w, r)
		return p, false
	}
	if err := c.svc.CheckFence(r.Context(), p.UserID); err != nil {
		c.fenced(w, r, p, err)
		return p, false
	}
	return p, true
}

// erasureResult is what the signed-out and fenced pages show of an
// erasure.
type erasureResult struct {
	Request *requestView
	Erased  bool
}

// signedOut renders the signed-out page, 401.
func (c *Center) signedOut(w http.ResponseWriter, r *http.Request) {
	var res erasureResult
	if ck, err := r.Cookie(ErasureCookie); err == nil && ck.Value != "" {
		if req, err := c.svc.Request(r.Context(), ck.Value); err == nil && req.Kind == privacy.KindErasure {
			v := c.view(req, "")
			res.Request, res.Erased = &v, req.Status == privacy.StatusCompleted
		}
	}
	c.render(w, r, http.StatusUnauthorized, "signed-out", page{Title: "You are signed out", Data: res})
}

// fenced renders where the user's erasure stands: 409 while it runs,
// 410 once the user is erased, 500 when the fence could not be read.
func (c *Center) fenced(w http.ResponseWriter, r *http.Request, p rbac.Principal, err error) {
	if !errors.Is(err, privacy.ErrFenced) {
		c.internal(w, r, "check the state of your account", err)
		return
	}
	res := erasureResult{Erased: errors.Is(err, privacy.ErrErased)}
	for req, err := range c.svc.Requests(r.Context(), privacy.RequestFilter{UserID: p.UserID, Kind: privacy.KindErasure}) {
		if err != nil {
			break
		}
		v := c.view(req, "")
		res.Request = &v // the latest
	}
	status, title := http.StatusConflict, "Your account is being deleted"
	if res.Erased {
		status, title = http.StatusGone, "Your account was deleted"
	}
	c.render(w, r, status, "signed-out", page{Title: title, Data: res})
}

// userRequests returns the user's requests of kind ("" for all),
// newest first.
func (c *Center) userRequests(ctx context.Context, userID string, kind privacy.Kind) ([]requestView, error) {
	var out []requestView
	for req, err := range c.svc.Requests(ctx, privacy.RequestFilter{UserID: userID, Kind: kind}) {
		if err != nil {
			return nil, err
		}
		out = append(out, c.view(req, ""))
	}
	slices.Reverse(out)
	return out, nil
}

type overviewData struct {
	Categories []privacy.Category
	Open       []requestView
}

func (c *Center) overview(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	cats, err := c.svc.Categories(r.Context(), p.UserID)
	if err != nil {
		c.internal(w, r, "read what we hold about you", err)
		return
	}
	reqs, err := c.userRequests(r.Context(), p.UserID, "")
	if err != nil {
		c.internal(w, r, "read your requests", err)
		return
	}
	var open []requestView
	for _, v := range reqs {
		if v.Status.Open() {
			open = append(open, v)
		}
	}
	c.render(w, r, http.StatusOK, "overview", page{Title: "Your privacy", Nav: "overview", Data: overviewData{cats, open}})
}

type exportData struct {
	Exports []requestView
	Pending bool
}

func (c *Center) exportPage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	c.renderExport(w, r, p, http.StatusOK, "")
}

func (c *Center) renderExport(w http.ResponseWriter, r *http.Request, p rbac.Principal, status int, errText string) {
	exports, err := c.userRequests(r.Context(), p.UserID, privacy.KindExport)
	if err != nil {
		c.internal(w, r, "read your downloads", err)
		return
	}
	d := exportData{Exports: exports[:min(len(exports), 10)]}
	for _, e := range exports {
		d.Pending = d.Pending || e.Status == privacy.StatusPending
	}
	c.render(w, r, status, "export", page{Title: "Download your data", Nav: "export", Error: errText, Data: d})
}

func (c *Center) startExport(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	_, err := c.svc.StartExport(r.Context(), p.UserID)
	switch {
	case err == nil:
		c.redirect(w, r, "/export", "export-started")
	case errors.Is(err, privacy.ErrFenced):
		c.fenced(w, r, p, err)
	case errors.Is(err, privacy.ErrAsyncUnavailable):
		c.renderExport(w, r, p, http.StatusNotImplemented, "Downloads are not available on this service.")
	case errors.Is(err, privacy.ErrClosed):
		c.renderExport(w, r, p, http.StatusServiceUnavailable, "The service is restarting; please try again in a moment.")
	default:
		c.internal(w, r, "start your download", err)
	}
}

// download serves the user's finished export through the Service's
// DownloadHandler, after finding it among the user's own requests.
func (c *Center) download(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	id := r.URL.Query().Get("requestId")
	exports, err := c.userRequests(r.Context(), p.UserID, privacy.KindExport)
	if err != nil {
		c.internal(w, r, "find your download", err)
		return
	}
	i := slices.IndexFunc(exports, func(v requestView) bool { return v.ID == id })
	switch {
	case id == "" || i < 0:
		c.fail(w, r, http.StatusNotFound, "Download not found", "There is no such download among yours.")
	case exports[i].Download == "" && exports[i].Status == privacy.StatusPending:
		c.fail(w, r, http.StatusAccepted, "Download not ready", "Your download is still being prepared.")
	case exports[i].Download == "":
		c.fail(w, r, http.StatusGone, "Download expired", "This download is no longer available. Prepare a new one.")
	default:
		c.svc.DownloadHandler().ServeHTTP(w, r)
	}
}

type deleteData struct {
	Open       *requestView
	Categories []privacy.Category
}

func (c *Center) deletePage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	c.renderDelete(w, r, p, http.StatusOK, "")
}

func (c *Center) renderDelete(w http.ResponseWriter, r *http.Request, p rbac.Principal, status int, errText string) {
	var d deleteData
	for req, err := range c.svc.Requests(r.Context(), privacy.RequestFilter{UserID: p.UserID, Kind: privacy.KindErasure, Statuses: []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld}, Limit: 1}) {
		if err != nil {
			c.internal(w, r, "read your requests", err)
			return
		}
		v := c.view(req, "")
		d.Open = &v
	}
	if d.Open == nil {
		cats, err := c.svc.Categories(r.Context(), p.UserID)
		if err != nil {
			c.internal(w, r, "read what we hold about you", err)
			return
		}
		d.Categories = cats
	}
	c.render(w, r, status, "delete", page{Title: "Delete your account", Nav: "delete", Error: errText, Data: d})
}

func (c *Center) erasureCookie(w http.ResponseWriter, r *http.Request, id string, keep bool) {
	ck := &http.Cookie{Name: ErasureCookie, Value: id, Path: c.prefix, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil, MaxAge: int((30 * 24 * time.Hour).Seconds())}
	if !keep {
		ck.Value, ck.MaxAge = "", -1
	}
	http.SetCookie(w, ck)
}

func (c *Center) confirmDelete(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.renderDelete(w, r, p, http.StatusBadRequest, "Tick the box to confirm that you want your account deleted.")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	res, err := c.svc.Erase(ctx, p.UserID, privacy.RequestedBy(p.UserID))
	if res.RequestID != "" {
		c.erasureCookie(w, r, res.RequestID, true)
	}
	switch {
	case errors.Is(err, privacy.ErrScheduled):
		c.redirect(w, r, "/delete", "deletion-planned")
		return
	case errors.Is(err, privacy.ErrLegalHold):
		c.fail(w, r, http.StatusConflict, "Your account cannot be deleted now",
			"A legal obligation requires us to keep your data for now. Your request is recorded, and we will carry it out once the obligation ends.")
		return
	case errors.Is(err, privacy.ErrCancelled):
		c.fail(w, r, http.StatusConflict, "Deletion cancelled", "This deletion was cancelled meanwhile. You can ask again.")
		return
	case err != nil && !errors.Is(err, privacy.ErrPartialDeletion):
		c.internal(w, r, "delete your account", err)
		return
	}
	// Done, or partly done and queued for a retry: either way the user
	// is fenced now and signed out.
	req, gerr := c.svc.Request(ctx, res.RequestID)
	if gerr != nil {
		c.internal(w, r, "read the result of your deletion", gerr)
		return
	}
	v := c.view(req, "")
	status, title := http.StatusOK, "Your account was deleted"
	if err != nil {
		status, title = http.StatusInternalServerError, "Your account is being deleted"
	}
	c.render(w, r, status, "signed-out", page{Title: title, Data: erasureResult{Request: &v, Erased: err == nil}})
}

func (c *Center) cancelDelete(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	id := r.PostFormValue("requestId")
	req, err := c.svc.Request(r.Context(), id)
	if errors.Is(err, privacy.ErrRequestNotFound) || err == nil && (req.UserID != p.UserID || req.Kind != privacy.KindErasure) {
		c.fail(w, r, http.StatusNotFound, "Request not found", "There is no such deletion among your requests.")
		return
	}
	if err != nil {
		c.internal(w, r, "find your request", err)
		return
	}
	_, err = c.svc.Cancel(context.WithoutCancel(r.Context()), id, "cancelled by the user in the privacy center")
	switch {
	case err == nil:
		c.erasureCookie(w, r, "", false)
		c.redirect(w, r, "/delete", "deletion-cancel")
	case errors.Is(err, privacy.ErrForbidden):
		c.fail(w, r, http.StatusForbidden, "Too late to cancel", "The waiting period is over, so the deletion can no longer be cancelled.")
	case errors.Is(err, privacy.ErrInvalidRequest):
		c.fail(w, r, http.StatusConflict, "Already finished", "This deletion has already finished.")
	default:
		c.internal(w, r, "cancel the deletion", err)
	}
}

// purposeView is one consent purpose as a form shows it.
type purposeView struct {
	Name        consent.Purpose
	Label       string
	Description string
	Granted     bool
	Version     int
	Decided     bool
	// GPC is set for third_party when the request carries Global
	// Privacy Control, which keeps it off.
	GPC bool
}

// purposes returns the registered purposes in display order (built-in
// first, then by name) with the user's state.
func (c *Center) purposes(r *http.Request, st consent.State) []purposeView {
	reg := c.consents.Purposes()
	names := make([]consent.Purpose, 0, len(reg))
	for p := range reg {
		names = append(names, p)
	}
	rank := func(p consent.Purpose) int {
		switch p {
		case consent.Marketing:
			return 0
		case consent.Analytics:
			return 1
		case consent.ThirdParty:
			return 2
		}
		return 3
	}
	slices.SortFunc(names, func(a, b consent.Purpose) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
	gpc := consent.GPC(r)
	out := make([]purposeView, 0, len(names))
	for _, p := range names {
		t, ok := c.purposeText[p]
		if !ok {
			t = purposeText{label: string(p)}
		}
		rec, decided := st[p]
		v := purposeView{Name: p, Label: t.label, Description: t.description, Granted: st.Granted(p, reg[p]),
			Version: rec.PolicyVersion, Decided: decided, GPC: gpc && p == consent.ThirdParty}
		if v.GPC {
			v.Granted = false
		}
		out = append(out, v)
	}
	return out
}

type consentData struct {
	Purposes []purposeView
	History  []consent.Record
}

func (c *Center) consentPage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	c.renderConsent(w, r, p, http.StatusOK)
}

func (c *Center) renderConsent(w http.ResponseWriter, r *http.Request, p rbac.Principal, status int) {
	st, err := c.consents.Current(r.Context(), p.UserID)
	if err != nil {
		c.internal(w, r, "read your choices", err)
		return
	}
	var hist []consent.Record
	for rec, err := range c.consents.History(r.Context(), p.UserID) {
		if err != nil {
			c.internal(w, r, "read your choices", err)
			return
		}
		hist = append(hist, rec)
	}
	slices.Reverse(hist)
	c.render(w, r, status, "consent", page{Title: "Your choices", Nav: "consent", Data: consentData{c.purposes(r, st), hist}})
}

// record records the user's choices (purpose → granted) that differ
// from their state or were made under an older policy version; it
// reports whether anything was recorded. Under Global Privacy Control
// third_party stays withdrawn.
func (c *Center) record(r *http.Request, userID string, want map[consent.Purpose]bool, source string) (bool, error) {
	st, err := c.consents.Current(r.Context(), userID)
	if err != nil {
		return false, err
	}
	if consent.GPC(r) {
		if _, ok := want[consent.ThirdParty]; ok {
			want[consent.ThirdParty] = false
		}
	}
	changes := map[consent.Purpose]bool{}
	for p, g := range want {
		if rec, ok := st[p]; !ok || rec.Granted != g || rec.PolicyVersion < c.policy {
			changes[p] = g
		}
	}
	if len(changes) == 0 {
		return false, nil
	}
	_, err = c.consents.Update(r.Context(), userID, changes, consent.Meta{PolicyVersion: c.policy, Source: source})
	return err == nil, err
}

func (c *Center) saveConsent(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	want := map[consent.Purpose]bool{}
	for name := range c.consents.Purposes() {
		want[name] = r.PostFormValue(string(name)) == "on"
	}
	changed, err := c.record(r, p.UserID, want, "privacy_center")
	switch {
	case errors.Is(err, privacy.ErrFenced):
		c.fenced(w, r, p, err)
	case err != nil:
		c.internal(w, r, "save your choices", err)
	case changed:
		c.redirect(w, r, "/consent", "consent-saved")
	default:
		c.redirect(w, r, "/consent", "consent-same")
	}
}

type requestsData struct{ Requests []requestView }

func (c *Center) requestsPage(w http.ResponseWriter, r *http.Request) {
	p, ok := c.self(w, r)
	if !ok {
		return
	}
	reqs, err := c.userRequests(r.Context(), p.UserID, "")
	if err != nil {
		c.internal(w, r, "read your requests", err)
		return
	}
	c.render(w, r, http.StatusOK, "requests", page{Title: "Your requests", Nav: "requests", Data: requestsData{reqs}})
}
