package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/retention"
)

func retentionCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Report what the declared retention policies would purge, or purge it",
		RunE:  needSubcommand,
	}
	cmd.AddCommand(retentionPlanCommand(a), retentionApplyCommand(a))
	return cmd
}

func retentionPlanCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Report, per policy, what a sweep would delete or anonymise now; changes nothing",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			e, err := a.retentionEngine(ctx, st, nil)
			if err != nil {
				return err
			}
			rep, err := e.Run(ctx, retention.RunOptions{DryRun: true})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rep)
			}
			a.printReport(rep, "WOULD PURGE")
			return nil
		},
	}
}

func retentionApplyCommand(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Purge what the declared retention policies say has expired, in batches",
		Long: `apply first reports what the policies would purge, asks for confirmation
unless --yes, then deletes or anonymises the expired records policy by
policy in bounded batches, skipping users under legal hold, and writes a
retention_purge audit event per policy. It shows a progress bar per policy
on a terminal, and a line per batch otherwise (on standard error). It holds
the database's retention lease: a second run waits for none and fails.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			log, err := a.logger(st, "retention apply")
			if err != nil {
				return err
			}
			e, err := a.retentionEngine(ctx, st, log)
			if err != nil {
				return err
			}
			plan, err := e.Run(ctx, retention.RunOptions{DryRun: true})
			if err != nil {
				return err
			}
			planned, total := map[string]int{}, 0
			var parts []string
			for _, p := range plan.Policies {
				planned[p.Name] = p.Purged
				total += p.Purged
				if p.Purged > 0 {
					parts = append(parts, fmt.Sprintf("%s %d records of %s", verb(p.Action), p.Purged, p.Name))
				}
			}
			if total == 0 {
				if a.json {
					return a.printJSON(plan)
				}
				a.printf("nothing has expired: no record to purge")
				return nil
			}
			if err := a.confirm(capitalise(strings.Join(parts, ", "))+"?", yes); err != nil {
				return err
			}
			rep, err := a.sweep(ctx, e, planned)
			if a.json {
				if jerr := a.printJSON(rep); jerr != nil {
					return jerr
				}
			} else if len(rep.Policies) > 0 {
				a.printReport(rep, "PURGED")
			}
			if err != nil && purged(rep) > 0 {
				return partialError(err)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// sweep runs the policies for real, showing each one's progress towards
// what the plan counted.
func (a *app) sweep(ctx context.Context, e *retention.Engine, planned map[string]int) (retention.Report, error) {
	var (
		m       *meter
		current string
	)
	rep, err := e.Run(ctx, retention.RunOptions{Progress: func(p retention.Progress) {
		if p.Policy != current {
			if m != nil {
				m.finish()
			}
			current = p.Policy
			m = a.progress(p.Policy, int64(max(planned[p.Policy], 1)))
		}
		m.set(int64(p.Done), fmt.Sprintf("%s: batch of %d (%d of %d)", p.Policy, p.Batch, p.Done, planned[p.Policy]))
	}})
	switch {
	case m != nil && err != nil:
		m.abort()
	case m != nil:
		m.finish()
	}
	return rep, err
}

// printReport writes a retention report as a table, the purged column
// headed what.
func (a *app) printReport(rep retention.Report, what string) {
	rows := make([][]string, len(rep.Policies))
	for i, p := range rep.Policies {
		rows[i] = []string{p.Name, string(p.Action), date(p.Cutoff), strconv.Itoa(p.Purged), strconv.Itoa(p.Batches)}
	}
	a.printTable([]string{"POLICY", "ACTION", "CUTOFF", what, "BATCHES"}, rows)
}

func purged(rep retention.Report) int {
	n := 0
	for _, p := range rep.Policies {
		n += p.Purged
	}
	return n
}

func verb(act retention.Action) string {
	if act == retention.Anonymise {
		return "anonymise"
	}
	return "delete"
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
