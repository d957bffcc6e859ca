package privacycenter

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

// Badge is the days-left badge of a request on the admin pages.
type Badge struct {
	Text string
	// Red is set for an open request that is overdue or has less than a
	// quarter of its time left.
	Red bool
	// Class is the badge's CSS class: "badge-red", "badge-ok",
	// "badge-held" or "badge-done".
	Class string
}

// DaysLeft returns the badge of r at now: for a pending or partial
// request, the whole days left until DueAt ("12 days left"), or past it
// ("3 days overdue"), red when overdue or when less than a quarter of
// the time from ReceivedAt to DueAt is left; "on hold" for a held
// request, "answered" for a finished one.
func DaysLeft(r privacy.Request, now time.Time) Badge {
	switch {
	case r.Status.Finished():
		return Badge{Text: "answered", Class: "badge-done"}
	case r.Status == privacy.StatusHeld:
		return Badge{Text: "on hold", Class: "badge-held"}
	}
	left := r.DueAt.Sub(now)
	total := r.DueAt.Sub(r.ReceivedAt)
	if left < 0 {
		n := int(math.Ceil(-left.Hours() / 24))
		return Badge{Text: plural(n, "day") + " overdue", Red: true, Class: "badge-red"}
	}
	n := int(math.Ceil(left.Hours() / 24))
	b := Badge{Text: plural(n, "day") + " left", Class: "badge-ok"}
	if left*4 < total {
		b.Red, b.Class = true, "badge-red"
	}
	return b
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// requestView is a request as the templates show it.
type requestView struct {
	privacy.Request
	// Subject is the pseudonym shown for the user ("hidden" when the
	// center has no Pseudonymizer), or the user ID on a lookup.
	Subject  string
	Badge    Badge
	Steps    []stepView
	Done     int
	Total    int
	InGrace  bool
	Overdue  bool
	Download string
}

type stepView struct {
	privacy.Step
	Text string
}

// view turns r into what the templates show; subject is what names its
// user.
func (c *Center) view(r privacy.Request, subject string) requestView {
	now := c.clock()
	v := requestView{Request: r, Subject: subject, Badge: DaysLeft(r, now), Overdue: r.Overdue(now)}
	v.InGrace = r.Status.Open() && !r.NotBefore.IsZero() && now.Before(r.NotBefore)
	for _, st := range r.Steps {
		v.Steps = append(v.Steps, stepView{Step: st, Text: stepText(st)})
		v.Total++
		if st.Status == privacy.StepDone {
			v.Done++
		}
	}
	if r.Kind == privacy.KindExport && r.Status == privacy.StatusCompleted && r.Location != "" &&
		(r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)) {
		v.Download = c.prefix + "/export/download?requestId=" + r.ID
	}
	return v
}

// subject returns the pseudonym that names r's user on the admin pages.
func (c *Center) subject(r privacy.Request) string {
	switch {
	case r.Pseudonymous():
		return r.UserID
	case c.pseudo != nil:
		return c.pseudo.Pseudonym(r.UserID)
	}
	return "hidden"
}

// timeline orders steps by when they last changed, steps not yet run
// last, in plan order.
func timeline(steps []stepView) []stepView {
	out := slices.Clone(steps)
	slices.SortStableFunc(out, func(a, b stepView) int {
		switch {
		case a.UpdatedAt.IsZero() && b.UpdatedAt.IsZero():
			return 0
		case a.UpdatedAt.IsZero():
			return 1
		case b.UpdatedAt.IsZero():
			return -1
		}
		return a.UpdatedAt.Compare(b.UpdatedAt)
	})
	return out
}

// formatTime is how pages show times: "2 Jan 2026 15:04 UTC", "—" for
// the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// shortPseudonym shortens "hmac-sha256:k1:0123456789abcdef..." to
// "k1:01234567…", enough to tell people apart on a page; the full
// pseudonym is in the element's title.
func shortPseudonym(p string) string {
	rest, ok := strings.CutPrefix(p, audit.PseudonymPrefix)
	if !ok {
		return p
	}
	key, hex, ok := strings.Cut(rest, ":")
	if !ok || len(hex) <= 12 {
		return rest
	}
	return key + ":" + hex[:12] + "…"
}

func statusText(s privacy.Status) string {
	switch s {
	case privacy.StatusPending:
		return "in progress"
	case privacy.StatusPartial:
		return "needs a retry"
	case privacy.StatusHeld:
		return "on legal hold"
	case privacy.StatusCompleted:
		return "done"
	case privacy.StatusCancelled:
		return "cancelled"
	case privacy.StatusExpired:
		return "expired"
	}
	return string(s)
}

func kindText(k privacy.Kind) string {
	switch k {
	case privacy.KindErasure:
		return "Account deletion"
	case privacy.KindExport:
		return "Data download"
	}
	return string(k)
}

// stepText says what a step does, in words for the data subject.
func stepText(st privacy.Step) string {
	switch st.Kind {
	case privacy.StepFence:
		return "Stop new activity on the account"
	case privacy.StepStore:
		return "Delete data in " + st.Name
	case privacy.StepExports:
		return "Delete prepared downloads"
	case privacy.StepIdentity:
		return "Delete the account"
	case privacy.StepExternal:
		return "Delete data at " + st.Name
	case privacy.StepFinal:
		return "Check every store once more"
	case privacy.StepLedger:
		return "Record the deletion"
	case privacy.StepAudit:
		return "Write the audit record"
	case privacy.StepExport:
		return "Prepare the download"
	}
	return st.Name
}
