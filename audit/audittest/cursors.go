package audittest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/internal/conformance"
)

// CursorHarness is one audit.CursorStore under test.
type CursorHarness struct {
	// Store is the implementation under test, with no cursors.
	Store audit.CursorStore
	// TTL is the claim duration the suite uses; Wait lets d pass on the
	// store's clock (advance a fake clock, or sleep).
	TTL  time.Duration
	Wait func(d time.Duration)
}

// RunCursorConformance runs the CursorStore rules, each on a fresh
// harness.
func RunCursorConformance(t *testing.T, newHarness func(t *testing.T) CursorHarness) {
	t.Helper()
	runCursors(conformance.Wrap(t), func(t tb) CursorHarness { return newHarness(conformance.Testing(t)) })
}

func runCursors(t tb, newHarness func(t tb) CursorHarness) {
	for _, c := range cursorCases {
		t.Run(c.rule, func(t tb) { c.run(t, newHarness(t)) })
	}
}

var cursorCases = []struct {
	rule string
	run  func(t tb, h CursorHarness)
}{
	{"a new destination starts at sequence 0 and is claimed by the first owner", func(t tb, h CursorHarness) {
		if seq, err := h.Store.ClaimCursor(t.Context(), "collector", "a", h.TTL); err != nil || seq != 0 {
			t.Errorf("ClaimCursor = %d, %v; want 0, nil", seq, err)
		}
	}},
	{"a claimed cursor is refused to another owner with ErrCursorHeld", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		if _, err := h.Store.ClaimCursor(t.Context(), "collector", "b", h.TTL); !errors.Is(err, audit.ErrCursorHeld) {
			t.Errorf("ClaimCursor by another owner = %v, want ErrCursorHeld", err)
		}
	}},
	{"the holder may claim again and gets its position", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		advance(t, h, "collector", "a", 7)
		if got := claim(t, h, "collector", "a"); got != 7 {
			t.Errorf("second ClaimCursor = %d, want 7", got)
		}
	}},
	{"AdvanceCursor records the position, which never moves back", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		advance(t, h, "collector", "a", 10)
		advance(t, h, "collector", "a", 4)
		if err := h.Store.ReleaseCursor(t.Context(), "collector", "a"); err != nil {
			t.Fatalf("%v", err)
		}
		if got := claim(t, h, "collector", "b"); got != 10 {
			t.Errorf("position = %d, want 10", got)
		}
	}},
	{"AdvanceCursor by an owner that does not hold the claim fails with ErrCursorLost and records nothing", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		if err := h.Store.AdvanceCursor(t.Context(), "collector", "b", 5, h.TTL); !errors.Is(err, audit.ErrCursorLost) {
			t.Errorf("AdvanceCursor by a non-holder = %v, want ErrCursorLost", err)
		}
		if got := claim(t, h, "collector", "a"); got != 0 {
			t.Errorf("position = %d, want 0", got)
		}
	}},
	{"an expired claim is taken by another owner at the recorded position, and the old holder can no longer advance", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		advance(t, h, "collector", "a", 3)
		h.Wait(h.TTL + h.TTL/2)
		if got := claim(t, h, "collector", "b"); got != 3 {
			t.Errorf("takeover position = %d, want 3", got)
		}
		if err := h.Store.AdvanceCursor(t.Context(), "collector", "a", 9, h.TTL); !errors.Is(err, audit.ErrCursorLost) {
			t.Errorf("AdvanceCursor by the old holder = %v, want ErrCursorLost", err)
		}
	}},
	{"AdvanceCursor renews the claim", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		h.Wait(h.TTL * 2 / 3)
		advance(t, h, "collector", "a", 1)
		h.Wait(h.TTL * 2 / 3)
		if _, err := h.Store.ClaimCursor(t.Context(), "collector", "b", h.TTL); !errors.Is(err, audit.ErrCursorHeld) {
			t.Errorf("ClaimCursor past the first expiry of a renewed claim = %v, want ErrCursorHeld", err)
		}
	}},
	{"ReleaseCursor frees the claim at once and keeps the position", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		advance(t, h, "collector", "a", 2)
		if err := h.Store.ReleaseCursor(t.Context(), "collector", "a"); err != nil {
			t.Fatalf("%v", err)
		}
		if got := claim(t, h, "collector", "b"); got != 2 {
			t.Errorf("position after release = %d, want 2", got)
		}
		if err := h.Store.ReleaseCursor(t.Context(), "collector", "a"); err != nil {
			t.Errorf("ReleaseCursor by a non-holder = %v, want nil", err)
		}
		if _, err := h.Store.ClaimCursor(t.Context(), "collector", "c", h.TTL); !errors.Is(err, audit.ErrCursorHeld) {
			t.Errorf("a non-holder's release freed b's claim: ClaimCursor = %v", err)
		}
	}},
	{"destinations are independent", func(t tb, h CursorHarness) {
		claim(t, h, "collector", "a")
		advance(t, h, "collector", "a", 5)
		if got := claim(t, h, "archive", "b"); got != 0 {
			t.Errorf("another destination starts at %d, want 0", got)
		}
		got := []uint64{claim(t, h, "collector", "a"), claim(t, h, "archive", "b")}
		if diff := cmp.Diff([]uint64{5, 0}, got); diff != "" {
			t.Errorf("positions (-want +got):\n%s", diff)
		}
	}},
}

func claim(t tb, h CursorHarness, name, owner string) uint64 {
	t.Helper()
	seq, err := h.Store.ClaimCursor(t.Context(), name, owner, h.TTL)
	if err != nil {
		t.Fatalf("ClaimCursor(%q, %q) = %v", name, owner, err)
	}
	return seq
}

func advance(t tb, h CursorHarness, name, owner string, seq uint64) {
	t.Helper()
	if err := h.Store.AdvanceCursor(t.Context(), name, owner, seq, h.TTL); err != nil {
		t.Fatalf("AdvanceCursor(%q, %q, %d) = %v", name, owner, seq, err)
	}
}
