package consent

import (
	"errors"
	"net/http"
	"strings"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// GPCHeader is the request header of the Global Privacy Control signal:
// "Sec-GPC: 1" says the person opts out of the sale and sharing of their
// personal information, which California's regulations (Cal. Code Regs.
// tit. 11, § 7025) require a business to treat as a valid opt-out.
const GPCHeader = "Sec-GPC"

// SourceGPC is the Record.Source of changes made because a request
// carried the Global Privacy Control signal.
const SourceGPC = "gpc"

// GPC reports whether r carries the Global Privacy Control signal: the
// header Sec-GPC with the value 1 (surrounding spaces allowed). Any other
// value, or no header, is no signal.
func GPC(r *http.Request) bool {
	return strings.TrimSpace(r.Header.Get(GPCHeader)) == "1"
}

// HonourGPC returns middleware that treats the Global Privacy Control
// signal as an opt-out of ThirdParty: for a request that carries it
// (GPC) from a signed-in principal (rbac.PrincipalFrom) whose ThirdParty
// consent is granted or was never decided, it records ThirdParty
// withdrawn with Source SourceGPC, through Update, so the change is
// audited, mirrored and fenced like any other, before serving next. The
// record carries the policy version of the purpose's latest record, or
// the purpose's minimum when there is none. A user whose latest
// ThirdParty record is already a withdrawal is left alone, so a browser
// sending the signal on every request records one change.
//
// The signal wins over an earlier grant: a user who grants ThirdParty
// while their browser sends it is opted out again by their next request,
// as the regulation's "the business shall process the opt-out preference
// signal" asks; tell them so where they grant it.
//
// Requests without a principal, or of a user whose erasure has begun
// (privacy.ErrFenced), are served unchanged. When the change cannot be
// recorded (the audit sink or the store is down) the request is served
// all the same, onError (if not nil) is told, and the next request with
// the signal tries again; until then Allowed keeps answering from what
// is recorded.
func (m *Manager) HonourGPC(onError func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := rbac.PrincipalFrom(r.Context()); ok && p.UserID != "" && GPC(r) {
				if err := m.recordGPC(r, p.UserID); err != nil && onError != nil && !errors.Is(err, privacy.ErrFenced) {
					onError(r, err)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recordGPC records the opt-out of ThirdParty that the signal asks for,
// unless the user's latest ThirdParty record is a withdrawal already.
func (m *Manager) recordGPC(r *http.Request, userID string) error {
	if _, ok := m.purposes[ThirdParty]; !ok {
		return nil
	}
	st, err := m.Current(r.Context(), userID)
	if err != nil {
		return err
	}
	version := m.purposes[ThirdParty]
	if rec, ok := st[ThirdParty]; ok {
		if !rec.Granted {
			return nil
		}
		version = max(version, rec.PolicyVersion)
	}
	_, err = m.Update(r.Context(), userID, map[Purpose]bool{ThirdParty: false}, Meta{PolicyVersion: version, Source: SourceGPC})
	return err
}
