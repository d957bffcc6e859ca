package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func extendCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "extend ID --reason TEXT",
		Short: "Extend a request's deadline once, as its regime allows (GDPR two months, CCPA 45 days)",
		Long: `extend records the one extension the request's regime allows, when and
why. The data subject must be told of it and of the reason within the
first period (GDPR Art. 12(3)). The reason must not hold personal data.`,
		Args: oneArg("request ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason is empty: say why the deadline is extended")
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			log, err := a.optionalLogger(st)
			if err != nil {
				return err
			}
			svc, err := a.privacyService(ctx, st, noIdentity{}, log)
			if err != nil {
				return err
			}
			r, err := svc.Extend(ctx, args[0], reason)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(a.view(r, nil))
			}
			a.printf("request %s: due %s (extended %s: %s)", r.ID, date(r.DueAt), date(r.ExtendedAt), r.ExtensionReason)
			a.printf("tell the data subject of the extension and why")
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the deadline is extended (required; no personal data)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
