package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func migrateCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or update Steward's tables in the database",
		Long: `migrate applies Steward's embedded migrations that the database does not
have yet, each in its own transaction; running it again does nothing. An
SQLite file is created when missing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			from, err := st.Version(ctx)
			if err != nil {
				return err
			}
			if err := st.Migrate(ctx); err != nil {
				return fmt.Errorf("migrating: %w", err)
			}
			to, err := st.Version(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(struct {
					From int `json:"from"`
					To   int `json:"to"`
				}{from, to})
			}
			if from == to {
				a.printf("schema up to date at version %d", to)
			} else {
				a.printf("schema migrated from version %d to %d", from, to)
			}
			return nil
		},
	}
}
