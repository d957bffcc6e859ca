package conformance

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// T is the part of *testing.T the suites use. Run takes a func(T), so a
// suite runs the same on a *testing.T (through Wrap) and on a Recorder.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Context() context.Context
	Run(name string, f func(t T)) bool
}

// Wrap adapts t to T.
func Wrap(t *testing.T) T { return realT{t} }

// Testing returns the *testing.T that t wraps, or nil when t is not a
// wrapped *testing.T (a Recorder, say).
func Testing(t T) *testing.T {
	if rt, ok := t.(realT); ok {
		return rt.T
	}
	return nil
}

type realT struct{ *testing.T }

func (t realT) Run(name string, f func(t T)) bool {
	return t.T.Run(name, func(t *testing.T) { f(realT{t}) })
}

// Recorder is a T that records failures instead of reporting them.
// Fatalf and Skipf end the running case with runtime.Goexit, as on a
// *testing.T; a skip counts as a failure, since a suite under test should
// not skip.
type Recorder struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
	children []*Recorder
}

// NewRecorder returns a Recorder for a test named name.
func NewRecorder(name string) *Recorder {
	ctx, cancel := context.WithCancel(context.Background())
	return &Recorder{name: name, ctx: ctx, cancel: cancel}
}

// Helper does nothing.
func (r *Recorder) Helper() {}

// Logf discards the message.
func (r *Recorder) Logf(string, ...any) {}

// Context is cancelled when the test ends, before its cleanups run.
func (r *Recorder) Context() context.Context { return r.ctx }

// Errorf records a failure.
func (r *Recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the test.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Skipf records an unexpected skip as a failure and ends the test.
func (r *Recorder) Skipf(format string, args ...any) {
	r.Errorf("unexpected skip: "+format, args...)
	runtime.Goexit()
}

// Cleanup registers f to run, last registered first, when the test ends.
func (r *Recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Run runs f as a subtest on its own goroutine, like testing.T.Run, so
// that Fatalf can end it with runtime.Goexit; a panic in f is recorded as
// a failure. It reports whether the subtest passed.
func (r *Recorder) Run(name string, f func(t T)) bool {
	child := NewRecorder(r.name + "/" + name)
	r.mu.Lock()
	r.children = append(r.children, child)
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer child.finish()
		defer func() {
			if p := recover(); p != nil {
				child.Errorf("panic: %v", p)
			}
		}()
		f(child)
	}()
	<-done
	if child.Failed() {
		r.mu.Lock()
		r.failed = true
		r.mu.Unlock()
	}
	return !child.Failed()
}

func (r *Recorder) finish() {
	r.cancel()
	r.mu.Lock()
	cleanups := r.cleanups
	r.mu.Unlock()
	for _, f := range slices.Backward(cleanups) {
		f()
	}
}

// Failed reports whether the test or any of its subtests failed.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Failures maps each failed subtest's name to its messages. Nested
// subtests that failed are listed too, named by their path below r, such
// as "Outbox/Due returns only entries due by now".
func (r *Recorder) Failures() map[string][]string {
	out := make(map[string][]string)
	r.collect(r.name+"/", out)
	return out
}

func (r *Recorder) collect(prefix string, out map[string][]string) {
	r.mu.Lock()
	children := slices.Clone(r.children)
	r.mu.Unlock()
	for _, c := range children {
		if c.Failed() {
			c.mu.Lock()
			out[strings.TrimPrefix(c.name, prefix)] = c.msgs
			c.mu.Unlock()
			c.collect(prefix, out)
		}
	}
}

// Case is one rule of a suite: Name states the rule and Run checks it in
// the environment E the suite makes for each case.
type Case[E any] struct {
	Name string
	Run  func(e E)
}

// RunCases runs each case as a subtest of t named for its rule, in a
// fresh environment from env, which may end the subtest with Fatalf when
// it cannot make one.
func RunCases[E any](t T, cases []Case[E], env func(ctx context.Context, t T) E) {
	for _, c := range cases {
		t.Run(c.Name, func(t T) { c.Run(env(t.Context(), t)) })
	}
}
