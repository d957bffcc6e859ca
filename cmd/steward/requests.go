package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/privacy"
)

// openStatuses are the statuses requests lists by default.
var openStatuses = []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld}

// allStatuses are the statuses --status accepts: every status a request
// can have.
var allStatuses = []privacy.Status{privacy.StatusPending, privacy.StatusPartial, privacy.StatusHeld,
	privacy.StatusCompleted, privacy.StatusCancelled, privacy.StatusExpired}

func requestsCommand(a *app) *cobra.Command {
	var (
		overdue, attention bool
		statuses           []string
		user               string
	)
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "List data-subject requests: ID, kind, status, received, due and days left",
		Long: `requests lists the open requests (pending, partial, held), or with
--overdue those past their due date, with --attention the partial ones (a
step failed after its retries), with --status those of the given statuses.
Requests are named by their ID only, never by the user they are about; use
--user to list one user's requests, and 'steward show ID' for the steps.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			filter := privacy.RequestFilter{Statuses: openStatuses, UserID: user}
			if len(statuses) > 0 {
				filter.Statuses = nil
				for _, s := range statuses {
					st := privacy.Status(s)
					if !slices.Contains(allStatuses, st) {
						return usageErrorf("--status: %q is not pending, partial, held, completed, cancelled or expired", s)
					}
					filter.Statuses = append(filter.Statuses, st)
				}
			}
			switch {
			case overdue:
				filter.Statuses = []privacy.Status{privacy.StatusPending, privacy.StatusPartial}
				filter.DueBefore = a.now()
			case attention:
				filter.Statuses = []privacy.Status{privacy.StatusPartial}
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			views := []requestView{}
			for r, err := range st.Requests().List(ctx, filter) {
				if err != nil {
					return err
				}
				views = append(views, a.view(r, nil))
			}
			if a.json {
				return a.printJSON(views)
			}
			if len(views) == 0 {
				a.printf("no requests")
				return nil
			}
			rows := make([][]string, len(views))
			for i, v := range views {
				left := "-"
				if v.DaysLeft != nil {
					left = strconv.Itoa(*v.DaysLeft)
				}
				rows[i] = []string{v.ID, string(v.Kind), string(v.Status), date(v.ReceivedAt), date(v.DueAt), left}
			}
			a.printTable([]string{"ID", "KIND", "STATUS", "RECEIVED", "DUE", "DAYS LEFT"}, rows)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&overdue, "overdue", false, "only pending and partial requests past their due date")
	f.BoolVar(&attention, "attention", false, "only partial requests: a step failed after its retries")
	f.StringSliceVar(&statuses, "status", nil, "only requests of these `STATUSES` (pending, partial, held, completed, cancelled, expired; comma-separated)")
	f.StringVar(&user, "user", "", "only requests about `USER`")
	cmd.MarkFlagsMutuallyExclusive("overdue", "attention", "status")
	return cmd
}

// requestView is a request as the command shows it: without the user ID,
// which names the user only through the audit pseudonym, and with the
// days left until its due date.
type requestView struct {
	ID     string         `json:"id"`
	Kind   privacy.Kind   `json:"kind"`
	Status privacy.Status `json:"status"`
	Regime privacy.Regime `json:"regime"`
	// Subject is the user's audit pseudonym (show only, with a key).
	Subject string `json:"subject,omitempty"`
	Actor   string `json:"actor,omitempty"`
	// DaysLeft counts calendar days (UTC) from today to the due date,
	// negative when past it; nil when the request is answered (held or
	// completed).
	DaysLeft        *int           `json:"daysLeft"`
	Overdue         bool           `json:"overdue"`
	ReceivedAt      time.Time      `json:"receivedAt"`
	DueAt           time.Time      `json:"dueAt"`
	ExtendedAt      time.Time      `json:"extendedAt,omitzero"`
	ExtensionReason string         `json:"extensionReason,omitempty"`
	Reason          string         `json:"reason,omitempty"`
	UpdatedAt       time.Time      `json:"updatedAt"`
	CompletedAt     time.Time      `json:"completedAt,omitzero"`
	Location        string         `json:"location,omitempty"`
	ClaimedBy       string         `json:"claimedBy,omitempty"`
	ClaimExpires    time.Time      `json:"claimExpires,omitzero"`
	Steps           []privacy.Step `json:"steps,omitempty"`
}

// view turns r into what the command shows; pseudonym, when not nil,
// names the user and a user actor by their audit pseudonyms.
func (a *app) view(r privacy.Request, pseudonym func(string) string) requestView {
	v := requestView{
		ID: r.ID, Kind: r.Kind, Status: r.Status, Regime: r.Regime, Overdue: r.Overdue(a.now()),
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, ExtendedAt: r.ExtendedAt, ExtensionReason: r.ExtensionReason,
		Reason: r.Reason, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt, Location: r.Location,
		ClaimedBy: r.ClaimedBy, ClaimExpires: r.ClaimExpires,
	}
	if r.Status == privacy.StatusPending || r.Status == privacy.StatusPartial {
		days := daysBetween(a.now(), r.DueAt)
		v.DaysLeft = &days
	}
	if pseudonym != nil {
		v.Subject = pseudonym(r.UserID)
		v.Actor = r.Actor
		if v.Actor != "" && !strings.HasPrefix(v.Actor, "system:") {
			v.Actor = pseudonym(r.Actor)
		}
	} else if strings.HasPrefix(r.Actor, "system:") {
		v.Actor = r.Actor
	}
	return v
}

// daysBetween counts the calendar days (UTC) from from's date to to's.
func daysBetween(from, to time.Time) int {
	day := func(t time.Time) time.Time {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return int(day(to).Sub(day(from)).Hours() / 24)
}
