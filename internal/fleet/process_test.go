package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/internal/fleet"
)

type line struct {
	N int    `json:"n"`
	S string `json:"s"`
}

func TestJournal(t *testing.T) {
	for _, tt := range []struct {
		name    string
		records []line
		after   string // bytes appended after the records, as a killed writer leaves them
		want    []line
		wantErr string
	}{
		{name: "records come back in the order they were appended",
			records: []line{{1, "a"}, {2, "b"}, {3, "c"}}, want: []line{{1, "a"}, {2, "b"}, {3, "c"}}},
		{name: "a last record cut short by a kill is skipped",
			records: []line{{1, "a"}}, after: `{"n":2,"s":"b`, want: []line{{1, "a"}}},
		{name: "a journal holding only a cut-short record is empty",
			after: `{"n":1`, want: nil},
		{name: "a complete line that does not decode is an error naming its line",
			records: []line{{1, "a"}}, after: "not json\n", wantErr: "line 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.jsonl")
			j, err := fleet.CreateJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.records {
				if err := j.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tt.after); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := fleet.ReadJournal[line](path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadJournal = %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a value that does not encode writes nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "j.jsonl")
		j, err := fleet.CreateJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if err := j.Append(func() {}); err == nil {
			t.Fatal("Append of a func succeeded")
		}
		if b, _ := os.ReadFile(path); len(b) != 0 {
			t.Errorf("the journal holds %q, want nothing", b)
		}
	})
}

// startSleeper starts the sleeper role and waits until it has journalled
// its pid, so a signal reaches it after it set up its handler.
func startSleeper(t *testing.T) *fleet.Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sleeper.jsonl")
	p, err := fleet.Start(fleet.Command("sleeper", "STEWARD_FLEET_SLEEPER_JOURNAL="+path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if recs, err := fleet.ReadJournal[line](path); err == nil && len(recs) > 0 {
			if recs[0].N != p.Pid() {
				t.Fatalf("the sleeper journalled pid %d, Pid is %d", recs[0].N, p.Pid())
			}
			return p
		}
	}
	t.Fatal("the sleeper did not start within 30 s")
	return nil
}

func TestProcess(t *testing.T) {
	ctx := context.Background()
	t.Run("Kill stops the process with SIGKILL wherever it is", func(t *testing.T) {
		p := startSleeper(t)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		state, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws, _ := state.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL || !p.Killed() {
			t.Errorf("state %v, Killed %v; want killed by SIGKILL", state, p.Killed())
		}
		if err := p.Kill(); err != nil {
			t.Errorf("killing an ended process: %v", err)
		}
	})
	t.Run("Terminate lets the role finish and exit", func(t *testing.T) {
		p := startSleeper(t)
		if err := p.Terminate(); err != nil {
			t.Fatal(err)
		}
		state, err := p.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if state.ExitCode() != 0 || p.Killed() {
			t.Errorf("state %v, Killed %v; want exit 0", state, p.Killed())
		}
	})
	for _, tt := range []struct {
		role string
		want int
	}{
		{"exit7", 7},        // RunRole exits with the role's status
		{"no-such-role", 2}, // an unknown role is refused
	} {
		t.Run("role "+tt.role+" exits with its status", func(t *testing.T) {
			p, err := fleet.Start(fleet.Command(tt.role))
			if err != nil {
				t.Fatal(err)
			}
			state, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if state.ExitCode() != tt.want {
				t.Errorf("exit status %d, want %d", state.ExitCode(), tt.want)
			}
		})
	}
	t.Run("a role's process exits once the process that started it has ended", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sleeper.jsonl")
		p, err := fleet.Start(fleet.Command("spawner", "STEWARD_FLEET_SLEEPER_JOURNAL="+path))
		if err != nil {
			t.Fatal(err)
		}
		if state, err := p.Wait(ctx); err != nil || state.ExitCode() != 0 {
			t.Fatalf("the spawner ended with %v (%v)", state, err)
		}
		var pid int
		for deadline := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if recs, err := fleet.ReadJournal[line](path); err == nil && len(recs) > 0 {
				pid = recs[0].N
			}
		}
		if pid == 0 {
			t.Fatal("the spawner's sleeper did not start within 30 s")
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
				return
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the orphaned sleeper (pid %d) still runs 10 s after its parent ended", pid)
			}
		}
	})
	t.Run("Wait gives up when its context ends", func(t *testing.T) {
		p := startSleeper(t)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := p.Wait(wctx); err == nil {
			t.Error("Wait returned before the process ended")
		}
	})
}

// runSleeper is a role for the tests of Process: it journals its pid and
// sleeps until killed, or exits 0 on SIGTERM.
func runSleeper() int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	j, err := fleet.CreateJournal(os.Getenv("STEWARD_FLEET_SLEEPER_JOURNAL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := j.Append(line{N: os.Getpid(), S: "up"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	select {
	case <-term:
		return 0
	case <-time.After(time.Minute):
		return 1
	}
}

// runSpawner is a role for the tests of RunRole: it starts a sleeper and
// exits once the sleeper has journalled its pid, orphaning it.
func runSpawner() int {
	if _, err := fleet.Start(fleet.Command("sleeper")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if recs, err := fleet.ReadJournal[line](os.Getenv("STEWARD_FLEET_SLEEPER_JOURNAL")); err == nil && len(recs) > 0 {
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "the sleeper did not start within 30 s")
	return 1
}
