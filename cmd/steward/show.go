package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func showCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one request: its dates, and its steps with status, attempts and errors",
		Long: `show prints a request and its steps. The user it is about appears as
their audit pseudonym when the audit key is set (the value audit events
carry), never as the raw user ID.`,
		Args: oneArg("request ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			p, err := a.pseudonymizer()
			if err != nil {
				return err
			}
			r, err := st.Requests().Get(ctx, args[0])
			if err != nil {
				return err
			}
			var pseudonym func(string) string
			if p != nil {
				pseudonym = p.Pseudonym
			}
			v := a.view(r, pseudonym)
			v.Steps = r.Steps
			if a.json {
				return a.printJSON(v)
			}
			due := date(v.DueAt)
			switch {
			case v.DaysLeft != nil && *v.DaysLeft < 0:
				due += fmt.Sprintf(" (overdue by %d days)", -*v.DaysLeft)
			case v.DaysLeft != nil:
				due += fmt.Sprintf(" (%d days left)", *v.DaysLeft)
			}
			fields := [][]string{
				{"request", v.ID},
				{"kind", string(v.Kind)},
				{"status", string(v.Status)},
				{"regime", string(v.Regime)},
			}
			if v.Subject != "" {
				fields = append(fields, []string{"subject", v.Subject})
			}
			if v.Actor != "" {
				fields = append(fields, []string{"requested by", v.Actor})
			}
			fields = append(fields, []string{"received", stamp(v.ReceivedAt)}, []string{"due", due})
			if !v.ExtendedAt.IsZero() {
				fields = append(fields, []string{"extended", stamp(v.ExtendedAt) + ": " + v.ExtensionReason})
			}
			if v.Reason != "" {
				fields = append(fields, []string{"reason", v.Reason})
			}
			if !v.CompletedAt.IsZero() {
				fields = append(fields, []string{"completed", stamp(v.CompletedAt)})
			}
			if v.Location != "" {
				fields = append(fields, []string{"location", v.Location})
			}
			if v.ClaimedBy != "" {
				fields = append(fields, []string{"claimed by", v.ClaimedBy + " until " + v.ClaimExpires.UTC().Format("15:04:05 UTC")})
			}
			fields = append(fields, []string{"updated", stamp(v.UpdatedAt)})
			for _, f := range fields {
				a.printf("%-13s %s", f[0], f[1])
			}
			a.printf("")
			rows := make([][]string, len(r.Steps))
			for i, s := range r.Steps {
				errText := s.Error
				if errText == "" {
					errText = "-"
				}
				rows[i] = []string{s.Name, string(s.Kind), string(s.Status), strconv.Itoa(s.Attempts), strconv.Itoa(s.Erased), errText}
			}
			a.printTable([]string{"STEP", "KIND", "STATUS", "ATTEMPTS", "ERASED", "ERROR"}, rows)
			return nil
		},
	}
}
