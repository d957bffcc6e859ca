package privacytest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// recorder is a tb that records failures instead of reporting them, so a
// suite can be run on a broken implementation without failing the test.
type recorder struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
	children []*recorder
}

func newRecorder(name string) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	return &recorder{name: name, ctx: ctx, cancel: cancel}
}

func (r *recorder) Helper()                  {}
func (r *recorder) Logf(string, ...any)      {}
func (r *recorder) Context() context.Context { return r.ctx }

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.Errorf("unexpected skip: "+format, args...)
	runtime.Goexit()
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Run runs f on its own goroutine, like testing.T.Run, so that Fatalf can
// end it with runtime.Goexit.
func (r *recorder) Run(name string, f func(t tb)) bool {
	child := newRecorder(r.name + "/" + name)
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
	if child.isFailed() {
		r.mu.Lock()
		r.failed = true
		r.mu.Unlock()
	}
	return !child.isFailed()
}

func (r *recorder) finish() {
	r.cancel()
	r.mu.Lock()
	cleanups := r.cleanups
	r.mu.Unlock()
	for _, f := range slices.Backward(cleanups) {
		f()
	}
}

func (r *recorder) isFailed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// failures maps each failed case's rule to its messages.
func (r *recorder) failures() map[string][]string {
	out := make(map[string][]string)
	for _, c := range r.children {
		if c.isFailed() {
			out[strings.TrimPrefix(c.name, r.name+"/")] = c.msgs
		}
	}
	return out
}
