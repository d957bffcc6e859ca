package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
)

func holdCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Place, release and list legal holds, which keep a user's data from erasure and retention",
		RunE:  needSubcommand,
	}
	cmd.AddCommand(holdPlaceCommand(a), holdReleaseCommand(a), holdListCommand(a))
	return cmd
}

// auditedHolds returns the database's legal holds, each change audited
// (a legal-hold event) before it is made; what names the command, which
// needs the audit key.
func (a *app) auditedHolds(st *sqlstore.Store, what string) (retention.AuditedHolds, error) {
	log, err := a.logger(st, what)
	if err != nil {
		return retention.AuditedHolds{}, err
	}
	return retention.AuditedHolds{Holds: st.Holds(), Audit: log}, nil
}

// holdView is a hold as the command shows it: the user by their audit
// pseudonym.
type holdView struct {
	Subject  string    `json:"subject"`
	Reason   string    `json:"reason"`
	PlacedBy string    `json:"placedBy"`
	PlacedAt time.Time `json:"placedAt"`
}

func viewHold(h retention.Hold, p *audit.Pseudonymizer) holdView {
	by := h.PlacedBy
	if !strings.HasPrefix(by, audit.SystemActorPrefix) {
		by = p.Pseudonym(by)
	}
	return holdView{Subject: p.Pseudonym(h.UserID), Reason: h.Reason, PlacedBy: by, PlacedAt: h.PlacedAt}
}

func holdPlaceCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "place USER --reason TEXT",
		Short: "Put USER under a legal hold (replacing any hold they had)",
		Long: `place records a legal hold on the user: erasure refuses them and retention
sweeps skip their data until the hold is released. The reason is shown in
erasure results, so it must not hold personal data.`,
		Args: oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			holds, err := a.auditedHolds(st, "hold place")
			if err != nil {
				return err
			}
			h := retention.Hold{UserID: args[0], Reason: reason, PlacedBy: a.actor, PlacedAt: a.now()}
			if err := holds.Place(ctx, h); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(struct {
					User     string    `json:"user"`
					Reason   string    `json:"reason"`
					PlacedAt time.Time `json:"placedAt"`
				}{h.UserID, h.Reason, h.PlacedAt.UTC()})
			}
			a.printf("placed a legal hold on %s: %s", h.UserID, h.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the data must be kept (required; no personal data)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func holdReleaseCommand(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "release USER|PSEUDONYM",
		Short: "Lift a legal hold, named by user ID or by the pseudonym 'hold list' shows",
		Long: `release lifts the user's legal hold, after which erasure and retention
reach their data again. Name the user by ID, or by the pseudonym 'steward
hold list' shows (which needs the audit key). It asks for confirmation
unless --yes.`,
		Args: oneArg("USER or PSEUDONYM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			holds, err := a.auditedHolds(st, "hold release")
			if err != nil {
				return err
			}
			name := args[0]
			var hold retention.Hold
			if strings.HasPrefix(name, audit.PseudonymPrefix) {
				p, err := a.pseudonymizer()
				if err != nil {
					return err
				}
				if p == nil {
					return usageErrorf("a pseudonym is matched with the audit key: set %s or %s, and %s", envAuditKey, envAuditKeyFile, envAuditKeyID)
				}
				list, err := holds.List(ctx)
				if err != nil {
					return err
				}
				for _, h := range list {
					if p.Match(name, h.UserID) {
						hold = h
						break
					}
				}
			} else if h, ok, err := holds.Get(ctx, name); err != nil {
				return err
			} else if ok {
				hold = h
			}
			if hold.UserID == "" {
				return fmt.Errorf("%s has no legal hold", name)
			}
			question := fmt.Sprintf("Release the legal hold on %s (%s)? Erasure and retention will reach the user's data again.", name, hold.Reason)
			if err := a.confirm(question, yes); err != nil {
				return err
			}
			// The release is audited with the command's actor.
			if err := holds.Release(rbac.WithPrincipal(ctx, rbac.Principal{UserID: a.actor}), hold.UserID); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(struct {
					Released string `json:"released"`
					Reason   string `json:"reason"`
				}{name, hold.Reason})
			}
			a.printf("released the legal hold on %s", name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func holdListCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List legal holds, users named by their audit pseudonym",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := a.pseudonymizer()
			if err != nil {
				return err
			}
			if p == nil {
				return usageErrorf("hold list names users by their audit pseudonym: set %s or %s, and %s", envAuditKey, envAuditKeyFile, envAuditKeyID)
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			list, err := st.Holds().List(ctx)
			if err != nil {
				return err
			}
			views := make([]holdView, len(list))
			for i, h := range list {
				views[i] = viewHold(h, p)
			}
			if a.json {
				return a.printJSON(views)
			}
			if len(views) == 0 {
				a.printf("no legal holds")
				return nil
			}
			rows := make([][]string, len(views))
			for i, v := range views {
				rows[i] = []string{v.Subject, v.Reason, v.PlacedBy, stamp(v.PlacedAt)}
			}
			a.printTable([]string{"SUBJECT", "REASON", "PLACED BY", "PLACED AT"}, rows)
			return nil
		},
	}
}
