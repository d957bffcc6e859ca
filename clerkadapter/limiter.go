package clerkadapter

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limiter admits at most n calls in any window of length per: a sliding
// log of the last n admission times. Clerk counts requests in a window
// (100 per 10 s on development instances), and a token bucket refilling
// at n/per with a burst of n would admit up to 2n in one window; the log
// never admits more than n.
type limiter struct {
	n     int
	per   time.Duration
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool

	mu    sync.Mutex
	times []time.Time // ring of the last admissions, len ≤ n
	head  int         // index of the oldest entry once the ring is full
}

func newLimiter(n int, per time.Duration) *limiter {
	return &limiter{n: n, per: per, now: time.Now, sleep: sleep, times: make([]time.Time, 0, n)}
}

// wait blocks until a call may go, or ctx is done. When the wait would
// outlast ctx's deadline it returns at once, with an error wrapping
// context.DeadlineExceeded.
func (l *limiter) wait(ctx context.Context) error {
	for {
		d, ok := l.reserve()
		if ok {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return fmt.Errorf("the next free slot, in %v, comes after the context's deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		if !l.sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// reserve admits a call now, or says how long until the oldest admission
// leaves the window.
func (l *limiter) reserve() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.times) < l.n {
		l.times = append(l.times, now)
		return 0, true
	}
	oldest := l.times[l.head]
	if free := oldest.Add(l.per); now.Before(free) {
		return free.Sub(now), false
	}
	l.times[l.head] = now
	l.head = (l.head + 1) % l.n
	return 0, true
}
