package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

func cancelCommand(a *app) *cobra.Command {
	var (
		reason string
		yes    bool
	)
	cmd := &cobra.Command{
		Use:   "cancel ID --reason TEXT",
		Short: "Close an open request for good: an erasure is never carried out, a queued export never written",
		Long: `cancel closes the open request ID (pending, partial or held) for good,
recording why and who cancelled (--actor). The cancellation is audited
before it takes effect: when the audit record cannot be written nothing
changes. A worker running the request stops before its next step; what
it erased stays erased. The request then names the user by pseudonym
only, the user is no longer fenced, and an account the erasure locked at
the identity provider is unlocked (when CLERK_SECRET_KEY is set). The
reason must not hold personal data. It asks for confirmation unless
--yes.`,
		Args: oneArg("request ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason is empty: say why the request is cancelled")
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			log, err := a.logger(st, "cancel")
			if err != nil {
				return err
			}
			idp, err := a.optionalIdentity("cancel")
			if err != nil {
				return err
			}
			// The operator acts with the database's rights: the command's
			// actor may cancel any request.
			svc, err := a.privacyService(ctx, st, idp, log, privacy.WithAuthorizer(operator{}))
			if err != nil {
				return err
			}
			r, err := svc.Request(ctx, args[0])
			if err != nil {
				return err
			}
			if !r.Status.Open() {
				return fmt.Errorf("request %s is %s: only open requests (pending, partial, held) can be cancelled", r.ID, r.Status)
			}
			question := fmt.Sprintf("Cancel the %s request %s (%s)? It will never be carried out.", r.Kind, r.ID, r.Status)
			if err := a.confirm(question, yes); err != nil {
				return err
			}
			r, err = svc.Cancel(a.asActor(ctx), args[0], reason)
			if errors.Is(err, privacy.ErrInvalidRequest) {
				return fmt.Errorf("request %s was finished meanwhile: %w", args[0], err)
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(a.view(r, nil))
			}
			a.printf("request %s: cancelled (%s)", r.ID, r.Reason)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why the request is cancelled (required; no personal data)")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// operator is the Authorizer of the command's Service: whoever runs the
// command holds the database and may act on any request.
type operator struct{}

var _ privacy.Authorizer = operator{}

func (operator) Allowed(rbac.Principal, rbac.Permission) bool { return true }
