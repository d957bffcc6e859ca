package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func replayCommand(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Erase again every erased user a restored backup brought back",
		Long: `replay reads the ledger of erased users (pseudonyms only) and erases again
each of them that a declared store or the identity provider knows: run it
after every restore of a backup, which brings erased people back. Each
gets a new erasure request, without grace period, checkpointed and
audited as usual; its data_deletion events name the request that erased
the user before. Users the ledger does not hold are never touched. It
says how many users it erased; when some could not be, exit code 3 (or 1
when none could), and 'steward requests --attention' lists them. It asks
for confirmation unless --yes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, err := a.commandService(ctx, "replay")
			if err != nil {
				return err
			}
			if err := a.confirm("Erase again every erased user found in the stores or at the identity provider?", yes); err != nil {
				return err
			}
			n, err := svc.Replay(ctx)
			failed := errorLines(err)
			if a.json {
				if jerr := a.printJSON(struct {
					Erased int      `json:"erased"`
					Failed []string `json:"failed"`
				}{n, failed}); jerr != nil {
					return jerr
				}
			} else {
				a.printf("erased again %d %s a restore brought back", n, plural(n, "user", "users"))
				for _, f := range failed {
					a.printf("  %s", f)
				}
			}
			switch {
			case err == nil:
				return nil
			case n > 0:
				return partialError(fmt.Errorf("%d users not erased again; 'steward requests --attention' lists them", len(failed)))
			}
			return errors.New("no user could be erased again; the messages above say why")
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
