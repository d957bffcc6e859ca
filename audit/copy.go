package audit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// copySink feeds one of a Logger's other sinks (WithSinks) with the
// chain, in order, from a bounded in-memory queue, on a goroutine of its
// own: a sink that is slow or down delays nobody's Log. The queue does
// not survive a restart; a Forwarder, which reads the stored chain, does.
type copySink struct {
	sink   Sink
	logger *Logger

	mu      sync.Mutex
	pending [][]Event
	queued  int
	lastErr error
	started bool
	wake    chan struct{}
	ctx     context.Context // canceled by stop
	cancel  context.CancelFunc
	exited  chan struct{}
	stopped bool

	writing chan struct{} // holds a token while someone writes to the sink
}

// copyRetryMin and copyRetryMax bound the wait after a failed write
// before the background goroutine tries again.
const (
	copyRetryMin = 100 * time.Millisecond
	copyRetryMax = 30 * time.Second
)

func newCopySink(l *Logger, s Sink) *copySink {
	ctx, cancel := context.WithCancel(context.Background())
	return &copySink{sink: s, logger: l, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		exited: make(chan struct{}), writing: make(chan struct{}, 1)}
}

// enqueue adds a copy of events to the queue, or drops and counts them
// when the queue is full, and wakes the goroutine.
func (c *copySink) enqueue(events []Event) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	if c.queued+len(events) > c.logger.queueLimit {
		err := c.lastErr
		c.mu.Unlock()
		if err == nil {
			err = errors.New("audit: the sink has not accepted the earlier events yet")
		}
		c.logger.drop(len(events), err)
		return
	}
	c.pending = append(c.pending, cloneEvents(events))
	c.queued += len(events)
	if !c.started {
		c.started = true
		go c.run()
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *copySink) queuedEvents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// run drains the queue whenever woken, backing off after failures.
func (c *copySink) run() {
	defer close(c.exited)
	wait := copyRetryMin
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		for c.drain(c.ctx) != nil {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, copyRetryMax)
		}
		wait = copyRetryMin
	}
}

// drain writes the queue to the sink, oldest batch first, until it is
// empty or a write fails. A batch the sink reports as already stored
// (ErrDuplicateSequence) counts as written.
func (c *copySink) drain(ctx context.Context) error {
	select {
	case c.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.writing }()
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return nil
		}
		b := c.pending[0]
		c.mu.Unlock()
		err := c.sink.Write(ctx, b)
		c.mu.Lock()
		if err != nil && !errors.Is(err, ErrDuplicateSequence) {
			c.lastErr = err
			c.mu.Unlock()
			return err
		}
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.queued -= len(b)
		c.mu.Unlock()
	}
}

// stop ends the goroutine; what is still queued stays unsent.
func (c *copySink) stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	started := c.started
	c.mu.Unlock()
	c.cancel()
	if started {
		<-c.exited
	}
}
