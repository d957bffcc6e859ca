package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func resumeCommand(a *app) *cobra.Command {
	var pending bool
	cmd := &cobra.Command{
		Use:   "resume ID | --pending",
		Short: "Carry an erasure on from its last checkpoint, or every request left pending or partial",
		Long: `resume ID runs the request's remaining steps and reports like erase (exit
code 3 while steps are left). resume --pending finishes every partial
request and every pending one left untouched for a minute (its process
died), skipping those another worker is running; it is safe beside the
application's own workers.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if pending == (len(args) == 1) || len(args) > 1 {
				return fmt.Errorf("%s needs one request ID or --pending", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, err := a.commandService(ctx, "resume")
			if err != nil {
				return err
			}
			if !pending {
				res, err := svc.Resume(a.asActor(ctx), args[0])
				return a.reportDeletion(ctx, "request "+args[0], res, err)
			}
			done, err := svc.ResumePending(a.asActor(ctx))
			failed := errorLines(err)
			if a.json {
				if jerr := a.printJSON(struct {
					Completed int      `json:"completed"`
					Failed    []string `json:"failed"`
				}{done, failed}); jerr != nil {
					return jerr
				}
			} else {
				a.printf("completed %d requests", done)
				for _, f := range failed {
					a.printf("  %s", f)
				}
			}
			switch {
			case err == nil:
				return nil
			case done > 0:
				return partialError(fmt.Errorf("%d requests not finished; 'steward requests --attention' lists them", len(failed)))
			}
			return errors.New("no request could be finished; 'steward requests --attention' lists them")
		},
	}
	cmd.Flags().BoolVar(&pending, "pending", false, "resume every partial request and every pending one left untouched")
	return cmd
}
