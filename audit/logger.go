package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors returned by the Logger and by sinks.
var (
	// ErrNotRecorded is matched by the error Log returns when the event
	// reached no sink (fail-closed, the default). The error also wraps the
	// sinks' errors.
	ErrNotRecorded = errors.New("audit: event not recorded")
	// ErrClosed is returned by Log after Close.
	ErrClosed = errors.New("audit: logger closed")
	// ErrInvalidEvent is matched when an event cannot be logged or stored
	// as given; the message names the field.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrDuplicateSequence is matched when a sink already stores a
	// sequence number of a batch, or the batch repeats one.
	ErrDuplicateSequence = errors.New("audit: duplicate sequence")
)

// Defaults for the Logger's options.
const (
	DefaultBatchSize  = 256
	DefaultQueueLimit = 10_000
)

// Option configures a Logger.
type Option func(*config)

type config struct {
	keys       []Key
	sinks      []Sink
	now        func() time.Time
	failOpen   bool
	queueLimit int
	batchSize  int
	resume     Reader
	noResume   bool
	onDrop     func(n int, err error)
	errs       []error
}

// WithKey sets the active pseudonymisation key (required). To rotate keys,
// give the new key here; keep the old one for look-ups with
// NewPseudonymizer. Events made with it carry id as KeyID.
func WithKey(id string, secret []byte) Option {
	return func(c *config) { c.keys = append(c.keys, Key{ID: id, Secret: secret}) }
}

// WithSinks adds sinks after the one given to NewLogger. Every batch is
// written to every sink.
func WithSinks(sinks ...Sink) Option {
	return func(c *config) {
		for _, s := range sinks {
			if s == nil {
				c.errs = append(c.errs, errors.New("audit: WithSinks: nil sink"))
				continue
			}
			c.sinks = append(c.sinks, s)
		}
	}
}

// WithNow sets the clock (default time.Now). Times are stored in UTC,
// truncated to the microsecond.
func WithNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithFailOpen makes Log succeed even when no sink accepts an event: the
// batch waits in each failing sink's queue (see WithQueueLimit) and is
// retried, in order, before that sink's next batch and on Flush. Events
// that do not fit the queue are dropped for that sink and counted in
// Stats().Dropped and reported to WithOnDrop. The default is fail-closed:
// Log returns an error matching ErrNotRecorded when no sink accepted the
// event, and the event is not part of the chain.
func WithFailOpen() Option {
	return func(c *config) { c.failOpen = true }
}

// WithQueueLimit bounds, per sink, the events waiting to be retried
// (default DefaultQueueLimit). A sink's queue fills in fail-open mode, or
// when another sink accepted a batch this one refused.
func WithQueueLimit(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("audit: WithQueueLimit: %d is negative", n))
		}
		c.queueLimit = n
	}
}

// WithBatchSize bounds how many concurrent Log calls are written to the
// sinks in one batch (default DefaultBatchSize).
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("audit: WithBatchSize: %d is less than 1", n))
		}
		c.batchSize = n
	}
}

// WithResume names the Reader whose last event the chain continues from.
// By default the Logger resumes from its first sink when that sink is a
// Reader; WithResume(nil) starts a new chain at sequence 1 regardless.
// The Reader is read once, during the first write.
func WithResume(r Reader) Option {
	return func(c *config) {
		c.resume = r
		c.noResume = r == nil
	}
}

// WithOnDrop sets a function called with the number of events dropped
// from a sink's full retry queue and the sink's last error. It runs while
// the Logger writes, so it must be quick and must not call the Logger.
func WithOnDrop(f func(n int, err error)) Option {
	return func(c *config) { c.onDrop = f }
}

// Logger pseudonymises, sequences, times and chains events and writes them
// to its sinks. It is safe for concurrent use.
//
// Log is synchronous: when it returns nil the event is stored in at least
// one sink (or, in fail-open mode, stored or queued for retry). Concurrent
// Log calls are grouped into one batch per sink write (group commit), so
// throughput grows with concurrency while each call still learns its own
// outcome.
type Logger struct {
	pseudo     *Pseudonymizer
	now        func() time.Time
	failOpen   bool
	queueLimit int
	batchSize  int
	onDrop     func(int, error)

	mu     sync.Mutex
	queue  []*request // waiting to be written, in arrival order
	busy   bool       // a request is leading a write
	closed bool

	// Owned by the leading request.
	sinks   []*sinkState
	resume  Reader
	seq     uint64
	head    string
	batch   []*request
	events  []Event
	buf     []byte
	sha     hash.Hash
	sum     []byte
	results []error

	recorded atomic.Uint64
	pending  atomic.Int64
	dropped  atomic.Uint64
}

type sinkState struct {
	sink    Sink
	pending [][]Event // accepted by the chain, not yet by this sink
	queued  int       // events in pending
	lastErr error
}

type request struct {
	ctx   context.Context
	ev    Event
	head  []byte // canonical encoding up to the time
	flush bool
	done  chan struct{} // receives once err is set or lead becomes true
	err   error
	lead  bool
}

// requests recycles requests (and their buffers) between Log calls.
var requests = sync.Pool{New: func() any {
	return &request{head: make([]byte, 0, 512), done: make(chan struct{}, 1)}
}}

func newRequest(ctx context.Context) *request {
	r := requests.Get().(*request)
	r.ctx = ctx
	return r
}

// release returns r to the pool; nothing may refer to it any more.
func (r *request) release() {
	*r = request{head: r.head[:0], done: r.done}
	requests.Put(r)
}

// Stats counts what a Logger did.
type Stats struct {
	// Recorded is the number of events chained (sequence numbers used).
	Recorded uint64
	// Pending is the number of events waiting in sink retry queues.
	Pending int
	// Dropped is the number of events a sink lost because its retry
	// queue was full; each such event is missing from that sink.
	Dropped uint64
}

// NewLogger returns a Logger writing to sink and to any sinks added with
// WithSinks. WithKey is required.
func NewLogger(sink Sink, opts ...Option) (*Logger, error) {
	c := config{now: time.Now, queueLimit: DefaultQueueLimit, batchSize: DefaultBatchSize}
	if sink == nil {
		return nil, errors.New("audit: NewLogger: sink is nil")
	}
	c.sinks = []Sink{sink}
	for _, o := range opts {
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	switch len(c.keys) {
	case 0:
		return nil, errors.New("audit: NewLogger: no pseudonymisation key: use WithKey")
	case 1:
	default:
		return nil, errors.New("audit: NewLogger: WithKey given more than once: the Logger uses one active key")
	}
	if c.now == nil {
		return nil, errors.New("audit: WithNow: nil clock")
	}
	p, err := NewPseudonymizer(c.keys[0])
	if err != nil {
		return nil, err
	}
	l := &Logger{
		pseudo:     p,
		now:        c.now,
		failOpen:   c.failOpen,
		queueLimit: c.queueLimit,
		batchSize:  c.batchSize,
		onDrop:     c.onDrop,
		resume:     c.resume,
	}
	if l.resume == nil && !c.noResume {
		l.resume, _ = sink.(Reader)
	}
	for _, s := range c.sinks {
		l.sinks = append(l.sinks, &sinkState{sink: s})
	}
	return l, nil
}

// Pseudonymizer returns the Logger's pseudonymizer (active key only).
func (l *Logger) Pseudonymizer() *Pseudonymizer { return l.pseudo }

// Log records e. The caller sets Type (required; lower-case letters,
// digits and '_'), Subject (the user the event is about), Actor (who did
// it: a user ID, a SystemActorPrefix name, or empty) and Details (values
// that encode as JSON; see CanonicalDetails). Subject and a user Actor are
// replaced by pseudonyms; ID, Time, Sequence, KeyID, PrevHash and Hash are
// assigned, whatever e held. Details is not copied (a copy would cost
// more than the rest of Log): do not modify the map or its values after
// Log, or a sink that keeps events in memory (MemorySink) holds a changed
// event that no longer verifies. Events waiting for a retry are copied.
//
// When Log returns nil the event is in at least one sink (fail-open: or
// queued). Otherwise the error matches ErrNotRecorded (no sink accepted
// it, or ctx ended first), ErrInvalidEvent, or ErrClosed, and the event is
// not in the chain.
func (l *Logger) Log(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	r := newRequest(ctx)
	if err := l.prepare(r, &e); err != nil {
		r.release()
		return err
	}
	err := l.do(r, false)
	r.release()
	return err
}

// Flush retries what waits in the sinks' retry queues and returns nil when
// everything logged before the call is in every sink. Otherwise it returns
// an error saying how many events still wait.
func (l *Logger) Flush(ctx context.Context) error {
	r := newRequest(ctx)
	r.flush = true
	err := l.do(r, false)
	r.release()
	return err
}

// Close flushes and then refuses further events with ErrClosed. It does
// not close the sinks, which belong to the caller. It returns Flush's
// error.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	r := newRequest(ctx)
	r.flush = true
	err := l.do(r, true)
	r.release()
	return err
}

// Stats returns counters; safe to call at any time.
func (l *Logger) Stats() Stats {
	return Stats{
		Recorded: l.recorded.Load(),
		Pending:  int(l.pending.Load()),
		Dropped:  l.dropped.Load(),
	}
}

func validSystemActor(a string) bool {
	if len(a) > 128 || !utf8.ValidString(a) {
		return false
	}
	for _, r := range a {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validType(t Type) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// prepare does the per-event work that needs no ordering, outside the lock.
func (l *Logger) prepare(r *request, e *Event) error {
	if !validType(e.Type) {
		return fmt.Errorf("%w: Type %q: must be 1 to 64 of a-z, 0-9 and '_'", ErrInvalidEvent, e.Type)
	}
	// ID, Subject and Actor share one allocation.
	k := &l.pseudo.keys[0]
	system := strings.HasPrefix(e.Actor, SystemActorPrefix)
	if system && !validSystemActor(e.Actor) {
		return fmt.Errorf("%w: Actor: a system actor must be at most 128 bytes of printable UTF-8", ErrInvalidEvent)
	}
	size := idLen + 2*(len(k.prefix)+2*sha256.Size)
	if system {
		size += len(e.Actor)
	}
	var sb strings.Builder
	sb.Grow(size)
	writeID(&sb)
	if e.Subject != "" {
		k.writePseudonym(&sb, e.Subject)
	}
	subjectEnd := sb.Len()
	switch {
	case system:
		sb.WriteString(e.Actor)
	case e.Actor != "":
		k.writePseudonym(&sb, e.Actor)
	}
	all := sb.String()
	ev := &r.ev
	ev.ID, ev.Subject, ev.Actor = all[:idLen], all[idLen:subjectEnd], all[subjectEnd:]
	ev.Type = e.Type
	ev.KeyID = k.id
	if len(e.Details) > 0 {
		ev.Details = e.Details
	}
	head, err := appendCanonicalHead(r.head[:0], ev)
	if err != nil {
		return fmt.Errorf("%w: Details: %w", ErrInvalidEvent, err)
	}
	r.head = head
	return nil
}

const idLen = 36

// writeID writes a random (version 4) UUID.
func writeID(b *strings.Builder) {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	raw[6] = raw[6]&0x0f | 0x40 // version 4
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	var s [idLen]byte
	hex.Encode(s[0:8], raw[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], raw[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], raw[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], raw[8:10])
	s[23] = '-'
	hex.Encode(s[24:], raw[10:])
	b.Write(s[:])
}

// do queues r and waits for its outcome. The first request to find the
// Logger idle leads (see lead); the others wait to be told their outcome
// or that they lead now.
func (l *Logger) do(r *request, allowClosed bool) error {
	l.mu.Lock()
	if l.closed && !allowClosed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.queue = append(l.queue, r)
	if l.busy {
		l.mu.Unlock()
		<-r.done
		if !r.lead {
			return r.err
		}
	} else {
		l.busy = true
		l.mu.Unlock()
	}
	l.lead(r)
	return r.err
}

// maxRounds bounds how many batches one caller writes before handing the
// lead on, so its own Log call returns in bounded time under load.
const maxRounds = 8

// lead runs on the goroutine of own, the request at the head of the queue.
// It writes batches while requests keep arriving (up to maxRounds), so
// that under concurrency the next batch starts without waiting for a
// sleeping goroutine to wake, then clears busy or hands the lead on.
func (l *Logger) lead(own *request) {
	for round := 0; ; round++ {
		l.mu.Lock()
		if round > 0 {
			if len(l.queue) == 0 {
				l.busy = false
				l.mu.Unlock()
				return
			}
			if round == maxRounds {
				next := l.queue[0]
				l.mu.Unlock()
				next.lead = true
				next.done <- struct{}{}
				return
			}
		}
		n := min(len(l.queue), l.batchSize)
		l.batch = append(l.batch[:0], l.queue[:n]...)
		clear(l.queue[:n])
		if n == len(l.queue) {
			l.queue = l.queue[:0] // keep the array
		} else {
			l.queue = l.queue[n:]
		}
		l.mu.Unlock()

		ctx, cancel := batchContext(l.batch)
		l.write(ctx, l.batch)
		cancel()
		for i, r := range l.batch {
			if r != own {
				r.done <- struct{}{}
			}
			l.batch[i] = nil
		}
	}
}

// batchContext returns a context for writing the batch: canceled only when
// every caller in it has given up, so one caller's cancellation does not
// fail the others.
func batchContext(batch []*request) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		return batch[0].ctx, func() {}
	}
	for _, r := range batch {
		if r.ctx.Done() == nil {
			return context.WithoutCancel(batch[0].ctx), func() {}
		}
	}
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, r := range batch {
		stops[i] = context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel(context.Cause(r.ctx))
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
}

// write chains the batch's events, writes them to every sink and sets each
// request's err.
func (l *Logger) write(ctx context.Context, batch []*request) {
	setAll := func(err error) {
		for _, r := range batch {
			if !r.flush {
				r.err = err
			}
		}
	}
	l.events = l.events[:0]
	for _, r := range batch {
		if !r.flush {
			l.events = append(l.events, r.ev)
		}
	}
	if len(l.events) > 0 {
		if l.resume != nil {
			last, err := l.resume.Last(ctx)
			if err != nil {
				setAll(fmt.Errorf("%w: resuming the chain: %w", ErrNotRecorded, err))
				l.flushResults(ctx, batch)
				return
			}
			l.seq, l.head, l.resume = last.Sequence, last.Hash, nil
		}
		l.chain(batch)
		if err := l.deliver(ctx, l.events); err != nil {
			setAll(err)
		}
	} else {
		l.deliver(ctx, nil)
	}
	l.flushResults(ctx, batch)
}

// chain assigns time, sequence and hashes to l.events.
func (l *Logger) chain(batch []*request) {
	now := l.now().UTC().Truncate(time.Microsecond)
	if l.sha == nil {
		l.sha = sha256.New()
	}
	h := l.sha
	var hx [2 * sha256.Size]byte
	k := 0
	for _, r := range batch {
		if r.flush {
			continue
		}
		e := &l.events[k]
		k++
		l.seq++
		e.Time, e.Sequence, e.PrevHash = now, l.seq, l.head
		l.buf = appendCanonicalTail(l.buf[:0], e)
		h.Reset()
		h.Write(r.head)
		h.Write(l.buf)
		l.sum = h.Sum(l.sum[:0])
		hex.Encode(hx[:], l.sum)
		e.Hash = string(hx[:])
		l.head = e.Hash
	}
}

// flushResults sets the error of the batch's Flush requests.
func (l *Logger) flushResults(_ context.Context, batch []*request) {
	var err error
	for _, r := range batch {
		if !r.flush {
			continue
		}
		if err == nil {
			err = l.pendingError()
		}
		r.err = err
	}
}

func (l *Logger) pendingError() error {
	n := 0
	var errs []error
	for _, s := range l.sinks {
		if s.queued > 0 {
			n += s.queued
			errs = append(errs, s.lastErr)
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("audit: flush: %d events still waiting for a sink: %w", n, errors.Join(errs...))
}

// deliver writes events (possibly none: a flush) to every sink after the
// sink's retry queue, then commits or rolls back the chain. It returns
// the error for the batch's Log calls.
func (l *Logger) deliver(ctx context.Context, events []Event) error {
	defer l.countPending()
	if len(l.results) < len(l.sinks) {
		l.results = make([]error, len(l.sinks))
	}
	results := l.results[:len(l.sinks)]
	if len(l.sinks) == 1 {
		results[0] = l.sinks[0].write(ctx, events)
	} else {
		var wg sync.WaitGroup
		for i, s := range l.sinks {
			wg.Go(func() { results[i] = s.write(ctx, events) })
		}
		wg.Wait()
	}
	if len(events) == 0 {
		return nil
	}
	accepted := 0
	for _, err := range results {
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 && !l.failOpen {
		// Not recorded anywhere: take the events out of the chain.
		first := events[0]
		l.seq, l.head = first.Sequence-1, first.PrevHash
		return fmt.Errorf("%w: %w", ErrNotRecorded, errors.Join(results...))
	}
	l.recorded.Add(uint64(len(events)))
	var copied []Event
	for i, s := range l.sinks {
		if results[i] == nil {
			continue
		}
		s.lastErr = results[i]
		if s.queued+len(events) > l.queueLimit {
			l.dropped.Add(uint64(len(events)))
			if l.onDrop != nil {
				l.onDrop(len(events), results[i])
			}
			continue
		}
		if copied == nil {
			// Queued events outlive the Log calls: copy their Details so
			// a caller reusing its map cannot change what is retried.
			copied = slices.Clone(events)
			for i := range copied {
				copied[i].Details = maps.Clone(copied[i].Details)
			}
		}
		s.pending = append(s.pending, copied)
		s.queued += len(copied)
	}
	return nil
}

func (l *Logger) countPending() {
	n := 0
	for _, s := range l.sinks {
		n += s.queued
	}
	l.pending.Store(int64(n))
}

// write sends the sink's queue, then events. A queued batch the sink
// reports as already stored (ErrDuplicateSequence: an earlier attempt
// landed after all) counts as written.
func (s *sinkState) write(ctx context.Context, events []Event) error {
	for len(s.pending) > 0 {
		b := s.pending[0]
		if err := s.sink.Write(ctx, b); err != nil && !errors.Is(err, ErrDuplicateSequence) {
			s.lastErr = err
			return err
		}
		s.pending[0] = nil
		s.pending = s.pending[1:]
		s.queued -= len(b)
	}
	if len(events) == 0 {
		return nil
	}
	return s.sink.Write(ctx, events)
}
