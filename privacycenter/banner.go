package privacycenter

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
)

// BannerScript is the path, under the prefix, of the banner's script
// (a few hundred bytes, no dependencies): with it the banner records a
// choice without leaving the page; without it the banner's form posts
// and comes back.
const BannerScript = "/assets/banner.js"

type bannerData struct {
	Prefix   string
	Policy   int
	Return   string
	Purposes []purposeView
}

// NeedsConsent reports whether the signed-in user of r must be asked
// for consent: some registered purpose has no decision made under the
// current policy version (WithPolicyVersion). It is false without a
// principal.
func (c *Center) NeedsConsent(r *http.Request) (bool, error) {
	p, ok := principal(r)
	if !ok {
		return false, nil
	}
	st, err := c.consents.Current(r.Context(), p.UserID)
	if err != nil {
		return false, err
	}
	for name := range c.consents.Purposes() {
		if rec, ok := st[name]; !ok || rec.PolicyVersion < c.policy {
			return true, nil
		}
	}
	return false, nil
}

// Banner returns the consent banner for r, to put in any page of the
// application (an html/template partial's output): a region with the
// current policy version, one checkbox per purpose and the buttons
// Accept all, Reject all and Save choices, posting to the center
// (prefix + "/consent/banner", source "banner"). It is empty when the
// user need not be asked (NeedsConsent), so a choice is asked once per
// policy version; and without a principal (consent is recorded per
// user). Add the script too, with the page's other scripts:
//
//	<script src="/privacy/assets/banner.js" defer></script>
//
// Under Global Privacy Control the third_party box is off and says why.
// The center's own pages carry the banner already.
func (c *Center) Banner(r *http.Request) (template.HTML, error) {
	ask, err := c.NeedsConsent(r)
	if err != nil || !ask {
		return "", err
	}
	p, _ := principal(r)
	st, err := c.consents.Current(r.Context(), p.UserID)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	d := bannerData{Prefix: c.prefix, Policy: c.policy, Return: r.URL.RequestURI(), Purposes: c.purposes(r, st)}
	if err := c.banner.ExecuteTemplate(&buf, "banner", d); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

// localPath returns ret when it is a path on this site ("/..."), else
// the prefix's overview.
func (c *Center) localPath(ret string) string {
	if !strings.HasPrefix(ret, "/") || strings.HasPrefix(ret, "//") || strings.ContainsAny(ret, "\\\r\n") {
		return c.prefix + "/"
	}
	return ret
}

// saveBanner records the banner's choice: choice=accept (every purpose),
// reject (none) or save (the boxes ticked). A script's post (Accept:
// application/json) gets {"saved": true, "policyVersion": N}; a form's
// post is sent back to the page it came from.
func (c *Center) saveBanner(w http.ResponseWriter, r *http.Request) {
	asJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	p, ok := principal(r)
	if !ok {
		if asJSON {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
			return
		}
		c.signedOut(w, r)
		return
	}
	choice := r.PostFormValue("choice")
	want := map[consent.Purpose]bool{}
	for name := range c.consents.Purposes() {
		switch choice {
		case "accept":
			want[name] = true
		case "reject":
			want[name] = false
		case "save":
			want[name] = r.PostFormValue(string(name)) == "on"
		default:
			if asJSON {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "choice must be accept, reject or save"})
				return
			}
			c.fail(w, r, http.StatusBadRequest, "Choice not understood", "Choose Accept all, Reject all or Save choices.")
			return
		}
	}
	_, err := c.record(r, p.UserID, want, "banner")
	switch {
	case err == nil && asJSON:
		writeJSON(w, http.StatusOK, map[string]any{"saved": true, "policyVersion": c.policy})
	case err == nil:
		http.Redirect(w, r, c.localPath(r.PostFormValue("return")), http.StatusSeeOther)
	case asJSON && errors.Is(err, privacy.ErrFenced):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "User is being erased"})
	case errors.Is(err, privacy.ErrFenced):
		c.fenced(w, r, p, err)
	case asJSON:
		c.log.ErrorContext(r.Context(), "privacycenter: recording the banner's choice", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Could not record the choice"})
	default:
		c.internal(w, r, "save your choices", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
