package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/privacy"
)

func eraseCommand(a *app) *cobra.Command {
	var (
		yes      bool
		regime   string
		received string
	)
	cmd := &cobra.Command{
		Use:   "erase USER",
		Short: "Erase USER everywhere, as a durable request (GDPR Art. 17, CCPA right to delete)",
		Long: `erase records an erasure request for the user and runs it: every declared
store, then the identity provider, then the data_deletion audit event, each
step checkpointed and retried. A step that still fails leaves the request
partial (exit code 3); 'steward resume ID' finishes it. A user under legal
hold is not erased. If the user already has an open request, erase resumes
it. It asks for confirmation unless --yes.`,
		Args: oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			user := args[0]
			opts := []privacy.EraseOption{privacy.RequestedBy(a.actor)}
			if regime != "" {
				g := privacy.Regime(regime)
				if err := g.Validate(); err != nil {
					return usageErrorf("--regime: %w", err)
				}
				opts = append(opts, privacy.ForRegime(g))
			}
			if received != "" {
				t, err := parseDay(received)
				if err != nil {
					return usageErrorf("--received: %w", err)
				}
				opts = append(opts, privacy.ReceivedAt(t))
			}
			svc, err := a.commandService(ctx, "erase")
			if err != nil {
				return err
			}
			question := fmt.Sprintf("Erase %s from %s? This cannot be undone.", user, strings.Join(a.stepNames(), ", "))
			if err := a.confirm(question, yes); err != nil {
				return err
			}
			res, err := svc.Erase(a.asActor(ctx), user, opts...)
			return a.reportDeletion(ctx, "erasure of "+user, res, err)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	f.StringVar(&regime, "regime", "", "law whose deadline the request follows: gdpr or ccpa (default: the configuration's, else gdpr)")
	f.StringVar(&received, "received", "", "when the request was received, if earlier (`DATE`, YYYY-MM-DD or RFC 3339); the deadline runs from it")
	return cmd
}

// parseDay reads a day (YYYY-MM-DD, midnight UTC) or an RFC 3339 time.
func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", s)
	}
	return t, nil
}

// reportDeletion writes the outcome of an erasure run, what naming it,
// and returns the error that sets the exit code: none when it completed,
// a partial error (3) when steps are left, a failure (1) when the user is
// held, the run was interrupted or nothing could be run.
func (a *app) reportDeletion(ctx context.Context, what string, res privacy.DeletionResult, err error) error {
	var status string
	switch {
	case err == nil:
		status = "completed"
	case errors.Is(err, privacy.ErrLegalHold):
		status = "held"
	case errors.Is(err, privacy.ErrPartialDeletion):
		status = "partial"
	case ctx.Err() != nil && res.RequestID != "":
		status = "interrupted"
	default:
		return err // nothing ran: the error says why
	}
	if a.json {
		if jerr := a.printJSON(res); jerr != nil {
			return jerr
		}
	} else {
		if strings.Contains(what, res.RequestID) {
			a.printf("%s: %s", what, status)
		} else {
			a.printf("%s: %s (request %s)", what, status, res.RequestID)
		}
		if len(res.DeletedFrom) > 0 {
			a.printf("deleted from: %s", strings.Join(res.DeletedFrom, ", "))
		}
		for _, e := range res.Errors {
			if e.Attempts > 0 {
				a.printf("  %s: %s (%d attempts)", e.Step, e.Message, e.Attempts)
			} else {
				a.printf("  %s: %s", e.Step, e.Message)
			}
		}
	}
	switch status {
	case "held":
		return errors.New("the user is under a legal hold: nothing was erased ('steward hold list' shows holds)")
	case "partial":
		return partialError(fmt.Errorf("request %s is partial: finish it with 'steward resume %s' once the cause is fixed", res.RequestID, res.RequestID))
	case "interrupted":
		return fmt.Errorf("interrupted: request %s stays pending; finish it with 'steward resume %s'", res.RequestID, res.RequestID)
	}
	return nil
}
