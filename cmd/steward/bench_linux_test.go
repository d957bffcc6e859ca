//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// recordsEnv overrides how many records BenchmarkExportPeakRSS gives its
// user (default a million).
const recordsEnv = "STEWARD_BENCH_EXPORT_RECORDS"

// platformRoles are the helper roles that only work on Linux.
var platformRoles = map[string]helperRole{"maxrss": maxRSS}

// childRoleEnv is the role maxRSS gives the command it runs.
const childRoleEnv = "STEWARD_CLI_TEST_CHILD_ROLE"

// BenchmarkExportPeakRSS exports one user with a million records twice
// per iteration, each time as a child process: with the steward command
// (export -o), and with the library alone (libraryExport: the test binary
// calling privacy.Service.Export over the same stores, Clerk and
// database). It reports each child's peak resident set size (the maxrss
// of its ProcessState.SysUsage) and their ratio; the command's promise is
// a ratio within 2.
//
// Each child is started by a small launcher process (maxRSS), not by the
// benchmark: on Linux a child started with vfork, as Go starts every
// child, has its maxrss raised at exec to the parent's own peak, so a
// child of the benchmark, which has just seeded a million rows, would
// report the benchmark's memory. floor-MiB is what the launcher reports
// for /bin/true: below it no number means anything.
//
//	go test -run '^$' -bench ExportPeakRSS -benchtime 3x ./cmd/steward/
func BenchmarkExportPeakRSS(b *testing.B) {
	records := 1_000_000
	if v := os.Getenv(recordsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", recordsEnv, v)
		}
		records = n
	}
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			fx := newFixture(b, sqltest.Open(b, d), d)
			start := time.Now()
			fx.addUser("user_big", records)
			b.Logf("seeded %d records in %v", records, time.Since(start).Round(time.Millisecond))
			dir := b.TempDir()
			var cliKB, libKB, floorKB, size int64
			b.ResetTimer()
			for b.Loop() {
				out := filepath.Join(dir, "cli.json")
				os.Remove(out)
				cliKB = max(cliKB, measure(b, fx.env(), binary, "export", "user_big", "-o", out))
				info, err := os.Stat(out)
				if err != nil {
					b.Fatal(err)
				}
				size = info.Size()
				libKB = max(libKB, measure(b, fx.env(childRoleEnv+"=library-export", "STEWARD_CLI_TEST_USER=user_big",
					exportOutEnv+"="+filepath.Join(dir, "lib.json")), os.Args[0]))
				floorKB = max(floorKB, measure(b, nil, "/bin/true"))
			}
			b.ReportMetric(float64(cliKB)/1024, "cli-peak-MiB")
			b.ReportMetric(float64(libKB)/1024, "library-peak-MiB")
			b.ReportMetric(float64(cliKB)/float64(libKB), "cli/library")
			b.ReportMetric(float64(floorKB)/1024, "floor-MiB")
			b.ReportMetric(float64(size)/(1<<20), "export-MiB")
		})
	}
}

// measure runs argv through the maxRSS launcher with env and returns
// the peak resident set size of argv's process in KiB.
func measure(b *testing.B, env []string, argv ...string) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, os.Args[0], argv...)
	c.Env = append(env, roleEnv+"=maxrss")
	var errOut strings.Builder
	c.Stderr = &errOut
	out, err := c.Output()
	if err != nil {
		b.Fatalf("%s: %v\n%s", argv, err, errOut.String())
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatalf("%s: launcher printed %q", argv, out)
	}
	return kb
}

// maxRSS is the launcher of BenchmarkExportPeakRSS: it runs args (with
// the role in STEWARD_CLI_TEST_CHILD_ROLE, if any), its output going to
// standard error, and prints its peak resident set size in KiB (Linux's
// ru_maxrss) on standard output. Being small, it lends its children a
// small floor (see the benchmark).
func maxRSS(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command to run")
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, roleEnv+"=") && !strings.HasPrefix(kv, childRoleEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if role := os.Getenv(childRoleEnv); role != "" {
		cmd.Env = append(cmd.Env, roleEnv+"="+role)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	return err
}
