package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/stewardlabs/steward/retention"
)

// expired counts the activity rows the fixture's 90-day policy expires.
func (fx *fixture) expired() int {
	fx.t.Helper()
	var n int
	cutoff := fx.now.Add(-90 * 24 * time.Hour)
	if err := fx.db.QueryRowContext(fx.t.Context(), fx.dialect.Rebind("SELECT count(*) FROM activity_log WHERE created_at < ?"), cutoff).Scan(&n); err != nil {
		fx.t.Fatal(err)
	}
	return n
}

func TestRetentionPlanAndApply(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_ada", 100) // 52 activity rows over 180 days
		fx.addUser("user_erin", 100)
		fx.run("", "hold", "place", "user_erin", "--reason", "litigation")
		want := fx.expired() / 2 // Ada's; Erin is held
		if want < 20 {
			t.Fatalf("only %d expired rows: the fixture is too small", want)
		}

		res := fx.run("", "retention", "plan")
		if res.code != exitOK {
			t.Fatalf("plan: exit %d, %s", res.code, res.stderr)
		}
		golden(t, "retention-plan.golden", res.stdout)
		if fx.expired() != 2*want {
			t.Fatal("plan changed the data")
		}

		res = fx.run("n\n", "retention", "apply")
		if res.code != exitFailure || !strings.Contains(res.stderr, fmt.Sprintf("Delete %d records of activity_logs? [y/N]", want)) || fx.expired() != 2*want {
			t.Errorf("apply, declined: exit %d, stderr %q, %d expired rows left", res.code, res.stderr, fx.expired())
		}

		res = fx.run("y\n", "retention", "apply", "--json")
		var rep retention.Report
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != exitOK {
			t.Fatalf("apply: exit %d, %v, %s %s", res.code, err, res.stdout, res.stderr)
		}
		if len(rep.Policies) != 1 || rep.Policies[0].Purged != want || rep.Policies[0].Batches != (want+9)/10 || rep.DryRun {
			t.Errorf("apply report: %+v, want %d purged in batches of 10", rep, want)
		}
		if fx.expired() != want {
			t.Errorf("%d expired rows left, want Erin's %d", fx.expired(), want)
		}
		// The plain progress lines went to standard error, one per batch.
		if n := strings.Count(res.stderr, "activity_logs: batch of "); n != (want+9)/10 {
			t.Errorf("%d progress lines, want one per batch:\n%s", n, res.stderr)
		}

		res = fx.run("", "retention", "apply")
		if res.code != exitOK || res.stdout != "nothing has expired: no record to purge\n" {
			t.Errorf("apply with nothing to do: exit %d, %q", res.code, res.stdout)
		}
	})
}

// TestRetentionApplyTerminal runs apply in a pseudo-terminal, where it
// draws a progress bar, and through pipes, where it writes plain lines.
func TestRetentionApplyTerminal(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_ada", 400)
		want := fx.expired()

		cmd := exec.Command(binary, "retention", "apply")
		cmd.Env = fx.env()
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var screen lockedBuffer
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(&screen, tty)
			done <- err
		}()
		// Answer the question once it is asked, as a person would.
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(screen.String(), "[y/N]") {
			if time.Now().After(deadline) {
				t.Fatalf("no question on the terminal:\n%s", screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := tty.Write([]byte("y\r")); err != nil {
			t.Fatal(err)
		}
		werr := cmd.Wait()
		<-done // the terminal closes when the command ends (EIO on Linux)
		out := screen.String()
		if werr != nil {
			t.Fatalf("apply in a terminal: %v\n%s", werr, out)
		}
		// A bar: the policy's name, a percentage reaching 100% and the
		// bar itself, redrawn in place after a carriage return; no plain
		// lines.
		for _, s := range []string{"\ractivity_logs 100% |", "█", fmt.Sprintf("(%d/%d)", want, want)} {
			if !strings.Contains(out, s) {
				t.Errorf("terminal output lacks %q:\n%q", s, out)
			}
		}
		if strings.Contains(out, "batch of") {
			t.Errorf("terminal output has plain progress lines:\n%q", out)
		}
		if fx.expired() != 0 {
			t.Errorf("%d of %d expired rows left", fx.expired(), want)
		}
	})
}

// lockedBuffer is a buffer one goroutine writes while another reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestExportTerminal runs export -o in a pseudo-terminal, where it shows
// the bytes written as it goes.
func TestExportTerminal(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		fx.addUser("user_ada", 2000)
		file := t.TempDir() + "/ada.json"
		cmd := exec.Command(binary, "export", "user_ada", "-o", file)
		cmd.Env = fx.env()
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var screen lockedBuffer
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(&screen, tty)
			close(done)
		}()
		werr := cmd.Wait()
		<-done
		out := screen.String()
		if werr != nil || !strings.Contains(out, " exporting (") || !strings.Contains(out, " kB") || !strings.Contains(out, "exported user_ada to "+file) {
			t.Errorf("export in a terminal: %v\n%q", werr, out)
		}
	})
}
