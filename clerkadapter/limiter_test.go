package clerkadapter

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock is a clock whose sleeps advance it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	c.t = c.t.Add(d)
	return true
}

func TestLimiterNeverAdmitsMoreThanNPerWindow(t *testing.T) {
	for _, tt := range []struct {
		n   int
		per time.Duration
		gap time.Duration // time between calls
	}{
		{3, 10 * time.Second, 0},
		{3, 10 * time.Second, 4 * time.Second},
		{100, 10 * time.Second, 7 * time.Millisecond},
		{1, time.Second, 0},
	} {
		clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		l := newLimiter(tt.n, tt.per)
		l.now, l.sleep = clock.now, clock.sleep
		var admitted []time.Time
		for range 10 * tt.n {
			if err := l.wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			admitted = append(admitted, clock.t)
			clock.t = clock.t.Add(tt.gap)
		}
		// Any n+1 consecutive admissions span at least per.
		for i := tt.n; i < len(admitted); i++ {
			if span := admitted[i].Sub(admitted[i-tt.n]); span < tt.per {
				t.Errorf("n=%d per=%v gap=%v: admissions %d and %d are %v apart: %d calls in one window",
					tt.n, tt.per, tt.gap, i-tt.n, i, span, tt.n+1)
			}
		}
		// With no gap, the limiter is not slower than it must be.
		if tt.gap == 0 {
			if total := admitted[len(admitted)-1].Sub(admitted[0]); total != 9*tt.per {
				t.Errorf("n=%d per=%v: %d back-to-back calls took %v, want %v", tt.n, tt.per, len(admitted), total, 9*tt.per)
			}
		}
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	l := newLimiter(1, time.Hour)
	if err := l.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait on a full limiter: %v, want context.DeadlineExceeded", err)
	}
	// A wait longer than the time left returns at once, not at the
	// deadline.
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.wait(ctx); !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Errorf("wait of an hour with a minute left: %v (context %v), want DeadlineExceeded before the deadline", err, ctx.Err())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 0 ", 0},
		{"-1", 0},
		{"soon", 0},
		{"Mon, 01 Jan 2024 00:00:30 GMT", 30 * time.Second},
		{"Sun, 31 Dec 2023 23:00:00 GMT", 0},
	} {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
