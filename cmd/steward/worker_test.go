package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
)

// queueErasure stores a pending erasure of user, received and last
// touched a day before the fixture's now: left by a process that died,
// so that a worker picks it up at its first pass.
func (fx *fixture) queueErasure(id, user string) {
	fx.t.Helper()
	at := fx.now.AddDate(0, 0, -1)
	r := privacy.Request{ID: id, Kind: privacy.KindErasure, UserID: user, Actor: "system:privacy", Regime: privacy.GDPR,
		Status: privacy.StatusPending, ReceivedAt: at, DueAt: privacy.GDPR.Deadline(at), UpdatedAt: at, Steps: erasureSteps()}
	if err := fx.store.Requests().Create(fx.t.Context(), r); err != nil {
		fx.t.Fatal(err)
	}
}

// worker is a steward worker running as a process.
type worker struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startWorker starts `steward worker args...` in the fixture's
// environment, but on the real clock: a worker's passes and leases run
// on time.
func (fx *fixture) startWorker(args ...string) *worker {
	fx.t.Helper()
	var env []string
	for _, kv := range fx.env() {
		if !strings.HasPrefix(kv, envNow+"=") {
			env = append(env, kv)
		}
	}
	w := &worker{cmd: exec.Command(binary, append([]string{"worker"}, args...)...)}
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = &w.stdout, &w.stderr
	if err := w.cmd.Start(); err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	})
	return w
}

// stop sends SIGTERM and returns the exit code.
func (w *worker) stop(t *testing.T) int {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = w.cmd.Process.Kill()
		<-done
		t.Fatalf("the worker did not stop within a minute of SIGTERM; stderr:\n%s", w.stderr.String())
	}
	return w.cmd.ProcessState.ExitCode()
}

// waitCompleted waits until request id is completed, or fails t.
func (fx *fixture) waitCompleted(t *testing.T, w *worker, id string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, err := fx.store.Requests().Get(t.Context(), id)
		if err == nil && r.Status == privacy.StatusCompleted {
			return
		}
		if w.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("request %s is %s (%v); worker stderr:\n%s", id, r.Status, err, w.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWorkerCompletesAQueuedErasure(t *testing.T) {
	t.Parallel()
	engines := func(d sqlstore.Dialect) []string {
		if d == sqlstore.Postgres {
			return []string{engineInProcess, engineRiver}
		}
		return []string{engineInProcess}
	}
	eachDialect(t, func(t *testing.T, fx *fixture) {
		for i, engine := range engines(fx.dialect) {
			user, id := "user_w"+string(rune('a'+i)), "req_worker_"+engine
			fx.addUser(user, 12)
			fx.queueErasure(id, user)
			interval := "200ms"
			if engine == engineRiver {
				interval = "1s"
			}
			w := fx.startWorker("--engine", engine, "--interval", interval, "--json")
			fx.waitCompleted(t, w, id)
			if code := w.stop(t); code != exitOK {
				t.Fatalf("%s worker exited %d on SIGTERM; stderr:\n%s", engine, code, w.stderr.String())
			}
			if _, ok := fx.clerk.User(user); ok || fx.rowsOf(user) != 0 {
				t.Errorf("%s worker: the user is still in Clerk (%v) or has %d rows", engine, ok, fx.rowsOf(user))
			}
			var got struct {
				Engine string   `json:"engine"`
				Duties []string `json:"duties"`
			}
			if err := json.Unmarshal(w.stdout.Bytes(), &got); err != nil {
				t.Fatalf("%s worker: %v in %q", engine, err, w.stdout.String())
			}
			want := struct {
				Engine string   `json:"engine"`
				Duties []string `json:"duties"`
			}{engine, []string{"requests", "consent_sync", "retention", "export_expiry"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("worker --json (-want +got):\n%s", diff)
			}
			logs := w.stderr.String()
			if !strings.Contains(logs, "worker started") || !strings.Contains(logs, "worker stopped") {
				t.Errorf("%s worker's log lacks its start or stop:\n%s", engine, logs)
			}
			if strings.Contains(logs, user) || strings.Contains(logs, "@example.com") {
				t.Errorf("%s worker's log names the user:\n%s", engine, logs)
			}
		}
	})
}

func TestWorkerUsage(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, fx *fixture) {
		cases := []struct {
			args []string
			says string
		}{
			{[]string{"worker", "--engine", "cron"}, `--engine "cron"`},
			{[]string{"worker", "--interval", "1us"}, "at least 1ms"},
			{[]string{"worker", "--engine", "river", "--interval", "10ms"}, "at least a second"},
			{[]string{"worker", "--job-timeout", "1m"}, "--job-timeout is for --engine river"},
			{[]string{"worker", "extra"}, "takes no arguments"},
		}
		if fx.dialect == sqlstore.SQLite {
			cases = append(cases, struct {
				args []string
				says string
			}{[]string{"worker", "--engine", "river"}, "PostgreSQL only"})
		}
		for _, tc := range cases {
			res := fx.run("", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.says) {
				t.Errorf("steward %v: exit %d, stderr %q; want %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.says)
			}
		}
		res := runCLI(t, withoutKey(fx.env()), "", "worker")
		if res.code != exitUsage || !strings.Contains(res.stderr, "worker writes audit events") {
			t.Errorf("worker without the audit key: exit %d, %q", res.code, res.stderr)
		}
	})
}
