package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// RoleEnv is the environment variable that makes a re-executed test
// binary play a role instead of running its tests (see RunRole).
const RoleEnv = "STEWARD_FLEET_ROLE"

// RunRole runs the role named by RoleEnv and exits the process with the
// status it returns; without RoleEnv it returns at once. Call it first in
// TestMain:
//
//	func TestMain(m *testing.M) {
//		fleet.RunRole(map[string]func() int{"worker": runWorker})
//		os.Exit(m.Run())
//	}
//
// A role that roles does not hold exits with status 2. A role's process
// exits with status 3 soon after the process that started it has ended
// (a test binary that timed out or was killed), so no worker outlives
// its harness.
func RunRole(roles map[string]func() int) {
	name := os.Getenv(RoleEnv)
	if name == "" {
		return
	}
	run, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "fleet: %s=%q names no role of this binary\n", RoleEnv, name)
		os.Exit(2)
	}
	if parent, err := strconv.Atoi(os.Getenv(parentEnv)); err == nil {
		go orphaned(parent)
	}
	os.Exit(run())
}

// parentEnv holds the pid of the process that ran Command.
const parentEnv = "STEWARD_FLEET_PARENT"

// orphaned exits the process once parent is no longer its parent: it
// has ended, perhaps before this process started, and the process was
// handed to another.
func orphaned(parent int) {
	for {
		if os.Getppid() != parent {
			fmt.Fprintf(os.Stderr, "fleet: the process that started this one (%d) has ended; exiting\n", parent)
			os.Exit(3)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Command returns a command re-executing the running test binary
// (os.Args[0]) in role, with env added to this process's environment.
// It asks the binary to run no test (-test.run=^$), so if RunRole is
// missing from TestMain the child does nothing rather than start the
// harness again. Configure its I/O before passing it to Start.
func Command(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), RoleEnv+"="+role, parentEnv+"="+strconv.Itoa(os.Getpid())), env...)
	return cmd
}

// Process is a started command whose end is watched.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	killed bool
	state  *os.ProcessState
	err    error
}

// Start starts cmd and watches for its end. It waits for the process
// at once, and exec.Cmd.Wait closes the pipes of StdinPipe, StdoutPipe
// and StderrPipe when the process exits, perhaps before they were read:
// give cmd files (os.Pipe, os.Create) instead.
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.state, p.err = cmd.ProcessState, err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL, which the process cannot catch: it stops wherever
// it is. Killing a process that has ended does nothing.
func (p *Process) Kill() error {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	return p.signal(syscall.SIGKILL)
}

// Terminate sends SIGTERM, asking the process to finish its work and
// exit.
func (p *Process) Terminate() error { return p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && err != os.ErrProcessDone {
		return fmt.Errorf("fleet: signalling process %d: %w", p.Pid(), err)
	}
	return nil
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to end, or for ctx, and returns its state.
func (p *Process) Wait(ctx context.Context) (*os.ProcessState, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("fleet: waiting for process %d: %w", p.Pid(), ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, nil
}

// Killed reports whether Kill was called.
func (p *Process) Killed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}
