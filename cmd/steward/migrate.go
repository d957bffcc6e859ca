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
SQLite file is created when missing. With --ledger-db it migrates that
database too.`,
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
			type versions struct {
				From int `json:"from"`
				To   int `json:"to"`
			}
			var ledger *versions
			ls, err := a.ledgerStore(ctx, true)
			if err != nil {
				return err
			}
			if ls != nil {
				ledger = &versions{}
				if ledger.From, err = ls.Version(ctx); err != nil {
					return err
				}
				if err := ls.Migrate(ctx); err != nil {
					return fmt.Errorf("migrating the ledger database: %w", err)
				}
				if ledger.To, err = ls.Version(ctx); err != nil {
					return err
				}
			}
			if a.json {
				return a.printJSON(struct {
					versions
					Ledger *versions `json:"ledger,omitempty"`
				}{versions{from, to}, ledger})
			}
			say := func(what string, v versions) {
				if v.From == v.To {
					a.printf("%s up to date at version %d", what, v.To)
				} else {
					a.printf("%s migrated from version %d to %d", what, v.From, v.To)
				}
			}
			say("schema", versions{from, to})
			if ledger != nil {
				say("ledger schema", *ledger)
			}
			return nil
		},
	}
}
