package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/spf13/cobra"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/riverjobs"
	"github.com/stewardlabs/steward/sqlstore"
)

// Engines of the worker command.
const (
	engineInProcess = "inprocess"
	engineRiver     = "river"
)

// workerStopTimeout bounds how long a stopping River client waits for
// the jobs it is working before it cancels them.
const workerStopTimeout = 30 * time.Second

func workerCommand(a *app) *cobra.Command {
	var (
		engine     string
		interval   time.Duration
		jobTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "worker [--engine inprocess|river]",
		Short: "Run the background duties until stopped: erasures and exports, consent sync, retention, audit forwarding",
		Long: `worker runs the application's background duties (package background) in
this process until SIGINT or SIGTERM: pending and partial requests are
driven forward, consent changes mirrored to Clerk, the declared retention
policies applied, the audit chain forwarded to STEWARD_AUDIT_FORWARD_URL
when it is set, and finished exports expired. Every duty works under
claims and leases in the database, so any number of workers and
application replicas can run at once.

--engine inprocess (the default) runs them as goroutines (Runner.Run);
--engine river as River jobs (package riverjobs) worked by a River client
in this process, on PostgreSQL only; River's tables are migrated first.
It logs to standard error (log/slog, text), never a user ID. On a signal
it stops taking work, lets what runs finish (a River job for up to 30s)
and exits 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if engine != engineInProcess && engine != engineRiver {
				return usageErrorf("--engine %q: want %s or %s", engine, engineInProcess, engineRiver)
			}
			if interval < 0 || interval > 0 && interval < time.Millisecond {
				return usageErrorf("--interval %v: want at least 1ms", interval)
			}
			if engine == engineRiver && interval > 0 && interval < time.Second {
				return usageErrorf("--interval %v: River's periodic jobs need at least a second", interval)
			}
			if jobTimeout != 0 && (engine != engineRiver || jobTimeout < time.Second) {
				return usageErrorf("--job-timeout is for --engine river, and at least a second")
			}
			dsn := a.setting(a.dsn, envDB, defaultDB)
			if engine == engineRiver && !isPostgres(dsn) {
				return usageErrorf("--engine river runs on PostgreSQL only: --db must be a postgres:// URL")
			}
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(a.err, nil))
			runner, err := a.runner(ctx, st, logger, interval)
			if err != nil {
				return err
			}
			var names []string
			for _, t := range runner.Tasks() {
				names = append(names, t.Name)
			}
			logger.Info("worker started", slog.String("engine", engine), slog.String("duties", strings.Join(names, ",")))
			if engine == engineRiver {
				// River's own lines: warnings and errors only, as its
				// information lines come at every election and maintenance pass.
				riverLogger := slog.New(slog.NewTextHandler(a.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
				err = runRiver(ctx, st, runner, dsn, jobTimeout, riverLogger)
			} else if rerr := runner.Run(ctx); !errors.Is(rerr, context.Canceled) {
				err = rerr
			}
			if err != nil {
				return err
			}
			logger.Info("worker stopped", slog.String("engine", engine))
			if a.json {
				return a.printJSON(struct {
					Engine string   `json:"engine"`
					Duties []string `json:"duties"`
				}{engine, names})
			}
			a.printf("worker stopped (%s engine; duties: %s)", engine, strings.Join(names, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&engine, "engine", engineInProcess, "what runs the duties: inprocess, or river (PostgreSQL)")
	f.DurationVar(&interval, "interval", 0, "time between two passes of every duty (default: each duty's own, from a minute for requests to an hour for retention)")
	f.DurationVar(&jobTimeout, "job-timeout", 0, "with --engine river: how long an erasure or export job may run (default: riverjobs' defaults); a job whose process died is rescued after twice that")
	return cmd
}

// isPostgres reports whether dsn names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// runner builds the background.Runner of the application's duties over
// st: requests and exports (privacy), consent sync, the declared
// retention policies, and audit forwarding when STEWARD_AUDIT_FORWARD_URL
// is set, the runner and the services logging to logger. every, when not
// 0, is the interval of every duty.
func (a *app) runner(ctx context.Context, st *sqlstore.Store, logger *slog.Logger, every time.Duration) (*background.Runner, error) {
	log, err := a.logger(st, "worker")
	if err != nil {
		return nil, err
	}
	idp, err := a.identity("worker")
	if err != nil {
		return nil, err
	}
	svc, err := a.privacyService(ctx, st, idp, log, privacy.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	consents, err := consent.NewManager(st.Consent(), idp, consent.WithAudit(log), consent.WithFence(svc), consent.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	opts := []background.Option{background.WithPrivacy(svc), background.WithConsent(consents), background.WithLogger(logger)}
	decl, err := a.declarations()
	if err != nil {
		return nil, err
	}
	if len(decl.Retention) > 0 {
		e, err := a.retentionEngine(ctx, st, log, retention.WithLogger(logger))
		if err != nil {
			return nil, err
		}
		opts = append(opts, background.WithRetention(e))
	}
	if to := a.getenv(envForwardURL); to != "" {
		if _, err := checkedURL(envForwardURL, to); err != nil {
			return nil, err
		}
		hopts := &audit.HTTPOptions{}
		if tok := a.getenv(envForwardToken); tok != "" {
			hopts.Header = http.Header{"Authorization": {"Bearer " + tok}}
		}
		dst, err := audit.NewHTTPSink(to, hopts)
		if err != nil {
			return nil, usageErrorf("%s: %w", envForwardURL, err)
		}
		f, err := audit.NewForwarder(st.AuditSink(), dst, st.AuditCursors(), "collector")
		if err != nil {
			return nil, err
		}
		opts = append(opts, background.WithForwarders(f))
	}
	if every > 0 {
		for _, d := range []background.Duty{background.Requests, background.ConsentSync, background.Retention, background.AuditForward, background.ExportExpiry} {
			opts = append(opts, background.WithInterval(d, every))
		}
	}
	r, err := background.New(opts...)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return r, nil
}

// runRiver runs runner's duties as River jobs until ctx ends, then stops
// the River client, waiting up to workerStopTimeout for the jobs under
// way. The wiring is the one package riverjobs documents: periodic
// sweeps on the elected leader, a job per request.
// riverLogger receives River's own lines.
func runRiver(ctx context.Context, st *sqlstore.Store, runner *background.Runner, dsn string, jobTimeout time.Duration, riverLogger *slog.Logger) error {
	if err := riverjobs.Migrate(ctx, st.DB()); err != nil {
		return err
	}
	var opts []riverjobs.Option
	// A job still running when its process died is picked up again once
	// it has been running this long (River's default is an hour): above
	// both job timeouts.
	rescue, other := riverjobs.DefaultExportTimeout+time.Minute, time.Duration(0)
	if jobTimeout > 0 {
		opts = append(opts, riverjobs.WithErasureTimeout(jobTimeout), riverjobs.WithExportTimeout(jobTimeout))
		rescue, other = 2*jobTimeout, jobTimeout
	}
	jobs, err := riverjobs.New(runner, st.DB(), opts...)
	if err != nil {
		return usageErrorf("%w", err)
	}
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return usageErrorf("--db: %w", err)
	}
	defer pool.Close()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers:              workers,
		Queues:               jobs.Queues(),
		PeriodicJobs:         jobs.PeriodicJobs(),
		RescueStuckJobsAfter: rescue,
		JobTimeout:           other, // the periodic sweeps'; 0 is River's default
		Logger:               riverLogger,
	})
	if err != nil {
		return err
	}
	// The client's own context outlives ctx, so that jobs under way are
	// left to finish by Stop rather than cut off by the signal.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), workerStopTimeout)
	defer cancel()
	if err := client.Stop(stop); err != nil {
		hard, cancelHard := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelHard()
		if herr := client.StopAndCancel(hard); herr != nil {
			return fmt.Errorf("stopping River: %w", errors.Join(err, herr))
		}
	}
	return nil
}
