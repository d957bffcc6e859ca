package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes; doc.go lists them for operators.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitPartial = 3
)

// exitError is a command's error with the exit code it ends the process
// with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in the command line or the configuration
// (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// partialError reports work that was done in part (exit code 3).
func partialError(err error) error { return &exitError{code: exitPartial, err: err} }

// streams are the standard streams a run reads and writes.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// app is one run of the command: its streams, its environment and the
// global flags. Commands open what they need through its methods
// (setup.go) and register closers that run when the command ends.
type app struct {
	streams
	getenv func(string) string
	now    func() time.Time

	// Global flags; empty means the environment variable, then the
	// default (see setting).
	dsn          string
	ledgerDSN    string
	configFile   string
	actor        string
	auditKeyFile string
	auditKeyID   string
	clerkURL     string
	json         bool

	decl    *declarations // the --config file, once read
	answers *lineReader   // stdin, for confirmations
	closers []func()
}

// commands lists the subcommands, each built by a constructor in a file
// of its own: adding a command is adding its file and its constructor
// here.
func commands() []func(*app) *cobra.Command {
	return []func(*app) *cobra.Command{
		migrateCommand,
		exportCommand,
		eraseCommand,
		requestsCommand,
		showCommand,
		resumeCommand,
		extendCommand,
		cancelCommand,
		holdCommand,
		retentionCommand,
		auditCommand,
		replayCommand,
		workerCommand,
	}
}

// newRoot builds the command tree over a.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "steward",
		Short: "Operate Steward: privacy requests, legal holds, retention and the audit trail",
		Long: `steward operates the records a Steward application keeps in its database:
data-subject requests (export, erasure, deadlines), legal holds, retention
sweeps and the audit chain. See 'go doc github.com/stewardlabs/steward/cmd/steward'
for every command, flag, environment variable and exit code.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return a.init()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&a.dsn, "db", "", "database: an SQLite file or a postgres:// URL (env STEWARD_DB, default steward.db)")
	pf.StringVar(&a.ledgerDSN, "ledger-db", "", "the database holding the ledger of erased users when the application keeps it apart, as privacy.WithLedger (env STEWARD_LEDGER_DB, default --db)")
	pf.StringVar(&a.configFile, "config", "", "JSON file declaring the application's tables and retention policies (env STEWARD_CONFIG)")
	pf.StringVar(&a.actor, "actor", "", "who acts, as audit events and holds record it: a user ID or system:NAME (env STEWARD_ACTOR, default system:cli)")
	pf.StringVar(&a.auditKeyFile, "audit-key-file", "", "the application's audit key file (audit.LoadKeyFile's form, or a hex or base64 secret), mode 0600 (env STEWARD_AUDIT_KEY_FILE)")
	pf.StringVar(&a.auditKeyID, "audit-key-id", "", "the audit key's ID, as the application's audit.WithKey names it, for a bare secret (env STEWARD_AUDIT_KEY_ID)")
	pf.StringVar(&a.clerkURL, "clerk-api-url", "", "Clerk Backend API URL, such as a clerktest server's (env STEWARD_CLERK_API_URL, default Clerk's)")
	pf.BoolVar(&a.json, "json", false, "write results as JSON on standard output, for scripts")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s: %w", c.CommandPath(), err)
	})
	for _, mk := range commands() {
		root.AddCommand(mk(a))
	}
	markRunErrors(root)
	return root
}

// markRunErrors makes every error a command's RunE returns a failure
// (exit code 1) unless it already carries a code, so that the errors left
// unmarked are cobra's own: usage errors.
func markRunErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				err = &exitError{code: exitFailure, err: err}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, s streams, getenv func(string) string) int {
	a := &app{streams: s, getenv: getenv, now: time.Now}
	root := newRoot(a)
	root.SetArgs(args)
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	err := root.ExecuteContext(ctx)
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintln(s.err, "steward:", err)
	if code == exitUsage {
		fmt.Fprintln(s.err, "run 'steward help' for usage")
	}
	return code
}

// noArgs accepts no positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

// oneArg accepts exactly one positional argument, called name in errors.
func oneArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s needs one %s, got %d arguments", cmd.CommandPath(), name, len(args))
		}
		return nil
	}
}

// needSubcommand is the RunE of a command that only groups subcommands.
func needSubcommand(cmd *cobra.Command, _ []string) error {
	names := ""
	for i, c := range cmd.Commands() {
		if i > 0 {
			names += ", "
		}
		names += c.Name()
	}
	return usageErrorf("%s needs a subcommand: %s", cmd.CommandPath(), names)
}
