package conformance

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRecorder checks the behaviour the suites' self-tests rely on: a
// failing subtest is named with its messages, Fatalf, Skipf and a panic
// end only their own subtest, cleanups run last first after the
// subtest's context is cancelled, and passing subtests are not listed.
func TestRecorder(t *testing.T) {
	r := NewRecorder("suite")
	var order []string
	r.Run("passes", func(t T) { t.Logf("fine") })
	r.Run("errors twice", func(t T) {
		t.Errorf("first %d", 1)
		t.Errorf("second")
	})
	r.Run("fatal", func(t T) {
		t.Cleanup(func() { order = append(order, "registered first") })
		t.Cleanup(func() {
			if t.Context().Err() == nil {
				order = append(order, "context still live")
			}
			order = append(order, "registered second")
		})
		t.Fatalf("stop")
		t.Errorf("not reached")
	})
	r.Run("skip", func(t T) { t.Skipf("no %s", "backend") })
	r.Run("panics", func(t T) { panic("boom") })
	r.Run("nested", func(t T) {
		t.Run("passes", func(T) {})
		t.Run("fails", func(t T) { t.Errorf("deep") })
	})

	want := map[string][]string{
		"errors twice": {"first 1", "second"},
		"fatal":        {"stop"},
		"skip":         {"unexpected skip: no backend"},
		"panics":       {"panic: boom"},
		"nested":       nil,
		"nested/fails": {"deep"},
	}
	if diff := cmp.Diff(want, r.Failures()); diff != "" {
		t.Errorf("Failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"registered second", "registered first"}, order); diff != "" {
		t.Errorf("cleanup order (-want +got):\n%s", diff)
	}
	if !r.Failed() {
		t.Error("the parent does not report its subtests' failures")
	}
}

// TestWrap checks that a wrapped *testing.T unwraps to itself and a
// Recorder to nil.
func TestWrap(t *testing.T) {
	if got := Testing(Wrap(t)); got != t {
		t.Errorf("Testing(Wrap(t)) = %p, want %p", got, t)
	}
	if got := Testing(NewRecorder("x")); got != nil {
		t.Errorf("Testing(recorder) = %v, want nil", got)
	}
	var ran bool
	Wrap(t).Run("sub", func(sub T) { ran = Testing(sub) != nil })
	if !ran {
		t.Error("a subtest of a wrapped T is not a wrapped *testing.T")
	}
}

// TestRunCases checks that every case runs as a subtest named for its
// rule, each in an environment of its own, and that an environment that
// cannot be made fails only its case.
func TestRunCases(t *testing.T) {
	type env struct{ name string }
	var ran []string
	check := func(e *env) { ran = append(ran, e.name) }
	cases := []Case[*env]{
		{Name: "first rule", Run: check},
		{Name: "broken harness", Run: check},
		{Name: "second rule", Run: check},
	}
	made := 0
	r := NewRecorder("suite")
	RunCases(r, cases, func(ctx context.Context, t T) *env {
		made++
		if made == 2 {
			t.Fatalf("making the harness: no backend")
		}
		return &env{name: fmt.Sprintf("env %d", made)}
	})
	if diff := cmp.Diff([]string{"env 1", "env 3"}, ran); diff != "" {
		t.Errorf("cases ran in (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"broken harness": {"making the harness: no backend"}}, r.Failures()); diff != "" {
		t.Errorf("Failures (-want +got):\n%s", diff)
	}
}
