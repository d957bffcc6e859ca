package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Errors of a CursorStore and a Forwarder.
var (
	// ErrCursorHeld is matched when another Forwarder holds the claim on
	// a destination's cursor and it has not expired.
	ErrCursorHeld = errors.New("audit: another forwarder holds the cursor")
	// ErrCursorLost is matched when a Forwarder's claim on a cursor
	// expired and was taken, or released, while it forwarded.
	ErrCursorLost = errors.New("audit: the forwarder lost its claim on the cursor")
)

// CursorStore keeps, per destination, how far a Forwarder has sent the
// chain, and which Forwarder is sending it: a claim with a lease judged
// by the store's clock, so that of several processes forwarding to one
// destination one at a time does, in order. sqlstore's AuditCursors keeps
// them in the database; MemoryCursors in memory (one process).
type CursorStore interface {
	// ClaimCursor takes the destination name for owner for ttl when no
	// other owner holds an unexpired claim (its own claim it renews),
	// and returns the last sequence forwarded there (0 at first). It
	// fails with ErrCursorHeld otherwise.
	ClaimCursor(ctx context.Context, name, owner string, ttl time.Duration) (uint64, error)
	// AdvanceCursor records seq as forwarded (a cursor never moves back)
	// and renews owner's claim for ttl. It fails with ErrCursorLost when
	// owner no longer holds the claim, and then records nothing.
	AdvanceCursor(ctx context.Context, name, owner string, seq uint64, ttl time.Duration) error
	// ReleaseCursor ends owner's claim, keeping the position, so another
	// Forwarder may take over at once. It does nothing when owner does
	// not hold the claim.
	ReleaseCursor(ctx context.Context, name, owner string) error
}

// Forwarder sends the chain stored in a Reader (the SQL sink, say) to
// another Sink (an HTTP collector), in order, at least once, keeping its
// position in a CursorStore under the destination's name. Log never waits
// for it: a collector that is down costs nothing but lag, and when it is
// back, even after the application restarted, it receives every event it
// missed. Run a Forwarder in every instance; they take turns through the
// cursor's claim.
//
// Batches end at multiples of the batch size where the chain allows, so a
// batch sent again after a crash carries the same events and, through the
// HTTP sink, the same Idempotency-Key. A collector should still ignore
// events whose sequence it holds: delivery is at least once.
type Forwarder struct {
	src     Reader
	dst     Sink
	cursors CursorStore
	name    string
	owner   string
	batch   int
	ttl     time.Duration
	every   time.Duration

	mu    sync.Mutex
	stats ForwarderStats

	forwarded atomic.Uint64

	// WithForwardMeterProvider and WithForwardTracerProvider
	// (telemetry.go); nil when not given.
	mp     metric.MeterProvider
	tracer trace.Tracer
	sent   metric.Int64Counter
	dest   []metric.AddOption
}

// ForwarderStats describes a Forwarder's progress, for metrics and
// health checks.
type ForwarderStats struct {
	// Forwarded counts the events this Forwarder sent and recorded.
	Forwarded uint64
	// Cursor is the last sequence known forwarded to the destination,
	// and Head the last sequence in the chain, when last looked at; Lag
	// is Head minus Cursor.
	Cursor, Head, Lag uint64
	// LastError is the error of the last pass that failed (nil once a
	// pass succeeds); Failing reports it is the latest pass's.
	LastError error
	Failing   bool
	// LastSuccess is when a pass last brought the destination up to the
	// head.
	LastSuccess time.Time
}

// ForwarderOption configures a Forwarder.
type ForwarderOption func(*Forwarder) error

// WithForwardBatch sets how many events one Write carries (default 500).
func WithForwardBatch(n int) ForwarderOption {
	return func(f *Forwarder) error {
		if n < 1 {
			return fmt.Errorf("audit: WithForwardBatch: %d is less than 1", n)
		}
		f.batch = n
		return nil
	}
}

// WithForwardOwner names the Forwarder in its claims (default: random,
// unique to this Forwarder).
func WithForwardOwner(owner string) ForwarderOption {
	return func(f *Forwarder) error {
		if owner == "" || len(owner) > 200 {
			return errors.New("audit: WithForwardOwner: owner must be 1 to 200 bytes")
		}
		f.owner = owner
		return nil
	}
}

// WithForwardLease sets the claim's duration (default 30s); the claim is
// renewed every third of it while a Write is under way.
func WithForwardLease(ttl time.Duration) ForwarderOption {
	return func(f *Forwarder) error {
		if ttl < time.Millisecond {
			return fmt.Errorf("audit: WithForwardLease: %v is under a millisecond", ttl)
		}
		f.ttl = ttl
		return nil
	}
}

// WithForwardInterval sets how often Run looks for new events (default 1s).
func WithForwardInterval(d time.Duration) ForwarderOption {
	return func(f *Forwarder) error {
		if d <= 0 {
			return fmt.Errorf("audit: WithForwardInterval: %v is not positive", d)
		}
		f.every = d
		return nil
	}
}

// NewForwarder returns a Forwarder of src's chain to dst, its position
// kept in cursors under name (one name per destination, such as
// "collector").
func NewForwarder(src Reader, dst Sink, cursors CursorStore, name string, opts ...ForwarderOption) (*Forwarder, error) {
	switch {
	case src == nil:
		return nil, errors.New("audit: NewForwarder: src is nil")
	case dst == nil:
		return nil, errors.New("audit: NewForwarder: dst is nil")
	case cursors == nil:
		return nil, errors.New("audit: NewForwarder: cursors is nil")
	case name == "" || len(name) > 200:
		return nil, errors.New("audit: NewForwarder: name must be 1 to 200 bytes")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	f := &Forwarder{src: src, dst: dst, cursors: cursors, name: name, owner: "forwarder/" + hex.EncodeToString(b[:]),
		batch: 500, ttl: 30 * time.Second, every: time.Second}
	for _, o := range opts {
		if err := o(f); err != nil {
			return nil, err
		}
	}
	if err := f.startMetrics(); err != nil {
		return nil, err
	}
	return f, nil
}

// Name returns the destination's name, under which the cursor is kept.
func (f *Forwarder) Name() string { return f.name }

// Stats returns the Forwarder's progress; safe to call at any time.
func (f *Forwarder) Stats() ForwarderStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Forwarded = f.forwarded.Load()
	if s.Head > s.Cursor {
		s.Lag = s.Head - s.Cursor
	}
	return s
}

// Forward sends every event stored past the destination's cursor, batch
// by batch, recording the cursor after each batch the destination
// accepted, and returns how many events it sent. It fails with
// ErrCursorHeld when another Forwarder is at it (nothing to do here),
// with ErrCursorLost when its claim was taken midway, and otherwise with
// the first error of the source, the destination or the cursor store;
// what was sent before stays recorded.
func (f *Forwarder) Forward(ctx context.Context) (int, error) {
	ctx, span := f.startPass(ctx)
	n, err := f.forward(ctx)
	endPass(span, n, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		f.stats.LastError, f.stats.Failing, f.stats.LastSuccess = nil, false, time.Now()
	case errors.Is(err, ErrCursorHeld):
	default:
		f.stats.LastError, f.stats.Failing = err, true
	}
	return n, err
}

func (f *Forwarder) forward(ctx context.Context) (int, error) {
	cursor, err := f.cursors.ClaimCursor(ctx, f.name, f.owner, f.ttl)
	if err != nil {
		return 0, fmt.Errorf("audit: forward to %q: %w", f.name, err)
	}
	defer func() { _ = f.cursors.ReleaseCursor(context.WithoutCancel(ctx), f.name, f.owner) }()
	last, err := f.src.Last(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: forward to %q: reading the chain's head: %w", f.name, err)
	}
	f.note(cursor, last.Sequence)
	sent := 0
	events := make([]Event, 0, f.batch)
	for cursor < last.Sequence {
		end := (cursor/uint64(f.batch) + 1) * uint64(f.batch)
		events = events[:0]
		for e, err := range f.src.Events(ctx, cursor+1) {
			if err != nil {
				return sent, fmt.Errorf("audit: forward to %q: reading events after %d: %w", f.name, cursor, err)
			}
			if e.Sequence > end {
				break
			}
			events = append(events, e)
			if e.Sequence == end {
				break
			}
		}
		if len(events) == 0 {
			break
		}
		if err := f.write(ctx, cursor, events); err != nil {
			return sent, err
		}
		cursor = events[len(events)-1].Sequence
		sent += len(events)
		f.forwarded.Add(uint64(len(events)))
		if f.sent != nil {
			f.sent.Add(ctx, int64(len(events)), f.dest...)
		}
		f.note(cursor, last.Sequence)
	}
	return sent, nil
}

// write sends one batch, renewing the claim while the destination takes
// its time, then records the cursor.
func (f *Forwarder) write(ctx context.Context, cursor uint64, events []Event) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(max(f.ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if err := f.cursors.AdvanceCursor(wctx, f.name, f.owner, cursor, f.ttl); errors.Is(err, ErrCursorLost) {
				cancel(err)
				return
			}
		}
	}()
	err := f.dst.Write(wctx, events)
	close(stop)
	<-renewed
	if cause := context.Cause(wctx); errors.Is(cause, ErrCursorLost) {
		return fmt.Errorf("audit: forward to %q: %w", f.name, cause)
	}
	if err != nil {
		return fmt.Errorf("audit: forward to %q: sending %d..%d: %w", f.name, events[0].Sequence, events[len(events)-1].Sequence, err)
	}
	last := events[len(events)-1].Sequence
	if err := f.cursors.AdvanceCursor(ctx, f.name, f.owner, last, f.ttl); err != nil {
		return fmt.Errorf("audit: forward to %q: recording the cursor at %d: %w", f.name, last, err)
	}
	return nil
}

func (f *Forwarder) note(cursor, head uint64) {
	f.mu.Lock()
	f.stats.Cursor, f.stats.Head = cursor, max(head, f.stats.Head)
	f.mu.Unlock()
}

// Run calls Forward at once and then every interval (WithForwardInterval)
// until ctx ends, and returns ctx's error. A pass that fails is retried
// after a backoff that doubles up to a minute; another Forwarder holding
// the cursor is not a failure. Errors go to onError when it is not nil.
func (f *Forwarder) Run(ctx context.Context, onError func(error)) error {
	wait := f.every
	for {
		_, err := f.Forward(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil || errors.Is(err, ErrCursorHeld):
			wait = f.every
		default:
			if onError != nil {
				onError(err)
			}
			wait = min(2*wait, max(time.Minute, f.every))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// MemoryCursors is a CursorStore in memory, for tests and single-process
// applications. Its clock is time.Now unless NewMemoryCursors is given
// another.
type MemoryCursors struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*memCursor
}

type memCursor struct {
	seq     uint64
	owner   string
	expires time.Time
}

var _ CursorStore = (*MemoryCursors)(nil)

// NewMemoryCursors returns an empty MemoryCursors using clock now (nil:
// time.Now).
func NewMemoryCursors(now func() time.Time) *MemoryCursors {
	if now == nil {
		now = time.Now
	}
	return &MemoryCursors{now: now, m: map[string]*memCursor{}}
}

// ClaimCursor implements CursorStore.
func (m *MemoryCursors) ClaimCursor(ctx context.Context, name, owner string, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.m[name]
	if c == nil {
		c = &memCursor{}
		m.m[name] = c
	}
	now := m.now()
	if c.owner != "" && c.owner != owner && now.Before(c.expires) {
		return 0, fmt.Errorf("%w: %q", ErrCursorHeld, name)
	}
	c.owner, c.expires = owner, now.Add(ttl)
	return c.seq, nil
}

// AdvanceCursor implements CursorStore.
func (m *MemoryCursors) AdvanceCursor(ctx context.Context, name, owner string, seq uint64, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.m[name]
	if c == nil || c.owner != owner {
		return fmt.Errorf("%w: %q", ErrCursorLost, name)
	}
	c.seq, c.expires = max(c.seq, seq), m.now().Add(ttl)
	return nil
}

// ReleaseCursor implements CursorStore.
func (m *MemoryCursors) ReleaseCursor(ctx context.Context, name, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.m[name]; c != nil && c.owner == owner {
		c.owner = ""
	}
	return nil
}
