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

	"go.opentelemetry.io/otel/metric"
)

// Errors returned by the Logger and by sinks.
var (
	// ErrNotRecorded is matched by the error Log returns when the first
	// sink did not accept the event (fail-closed, the default). The error
	// also wraps the sink's error.
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
	mp         metric.MeterProvider
	errs       []error
}

// WithKey sets the active pseudonymisation key (required). To rotate keys,
// give the new key here; keep the old one for look-ups with
// NewPseudonymizer. Events made with it carry id as KeyID.
func WithKey(id string, secret []byte) Option {
	return func(c *config) { c.keys = append(c.keys, Key{ID: id, Secret: secret}) }
}

// WithSinks adds sinks after the one given to NewLogger, which receive
// copies of the chain in order, in the background (see Logger): Log does
// not wait for them. Flush does.
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

// WithFailOpen makes Log succeed even when the first sink does not accept
// an event: the batch waits in a queue (see WithQueueLimit) and is
// retried, in order, before the next batch and on Flush. Events that do
// not fit the queue are dropped, counted in Stats().Dropped and reported
// to WithOnDrop. The default is fail-closed: Log returns an error
// matching ErrNotRecorded when the first sink did not accept the event,
// and the event is not part of the chain.
func WithFailOpen() Option {
	return func(c *config) { c.failOpen = true }
}

// WithQueueLimit bounds, per sink, the events waiting to be retried
// (default DefaultQueueLimit). The first sink's queue fills in fail-open
// mode; a copy's (WithSinks) while the copy is slow or down.
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

// WithResume names the Reader whose last event the chain continues from,
// for a Logger that links the chain itself (its first sink is not an
// Appender; an Appender knows its own head and WithResume is ignored).
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
// The first sink is the record: Log is synchronous with it, and when Log
// returns nil the event is stored there (or, in fail-open mode, stored or
// queued for retry). When the first sink is an Appender (MemorySink, the
// SQL sink of package sqlstore) the sink links each batch to its chain in
// its own transaction, so any number of Loggers, in any number of
// processes, share one chain; otherwise the Logger links the events
// itself and must be the chain's only writer. The other sinks (WithSinks)
// receive copies of the chain in order, in the background: a slow or
// unreachable copy never delays Log. Concurrent Log calls are grouped
// into one batch per write (group commit), so throughput grows with
// concurrency while each call still learns its own outcome.
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
	primary  *sinkState
	appender Appender // primary.sink as an Appender, or nil
	held     []heldEvent
	ab       Batch
	resume   Reader
	seq      uint64
	head     string
	batch    []*request
	events   []Event
	buf      []byte
	sha      hash.Hash
	sum      []byte

	copies []*copySink

	recorded atomic.Uint64
	dropped  atomic.Uint64
	pending  atomic.Int64 // held plus primary.queued

	refused atomic.Uint64 // events the first sink did not accept (fail-closed)
	// registration is WithMeterProvider's callback (telemetry.go).
	registration metric.Registration
}

// sinkState is the first sink's retry queue when the Logger links the
// chain itself (fail-open only).
type sinkState struct {
	sink    Sink
	pending [][]Event // accepted by the chain, not yet by this sink
	queued  int       // events in pending
	lastErr error
}

// heldEvent is an event an Appender refused in fail-open mode: not yet
// linked, waiting to be appended before the next batch.
type heldEvent struct {
	ev        Event
	head      []byte
	detailsAt int
	keyed     bool
}

type request struct {
	ctx  context.Context
	ev   Event
	head []byte // canonical encoding up to the time
	// detailsAt is where the canonical Details begin in head.
	detailsAt int
	keyed     bool // the caller chose ev.ID
	flush     bool
	done      chan struct{} // receives once err is set or lead becomes true
	err       error
	lead      bool
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
	// Recorded is the number of events this Logger put in the chain.
	Recorded uint64
	// Pending is the number of events waiting to be retried: in
	// fail-open mode for the first sink, and for the other sinks (see
	// WithSinks) until they accept their copies.
	Pending int
	// Dropped is the number of events lost because a retry queue was
	// full (WithQueueLimit): missing from the chain when the first sink's
	// queue overflowed, missing from a copy when another's did. Every
	// event Log accepted and no sink will receive is counted here.
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
		primary:    &sinkState{sink: sink},
	}
	l.appender, _ = sink.(Appender)
	if l.appender == nil {
		l.resume = c.resume
		if l.resume == nil && !c.noResume {
			l.resume, _ = sink.(Reader)
		}
	}
	for _, s := range c.sinks[1:] {
		l.copies = append(l.copies, newCopySink(l, s))
	}
	if c.mp != nil {
		if err := l.startMetrics(c.mp); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Pseudonymizer returns the Logger's pseudonymizer (active key only).
func (l *Logger) Pseudonymizer() *Pseudonymizer { return l.pseudo }

// Log records e. The caller sets Type (required; lower-case letters,
// digits and '_'), Subject (the user the event is about), Actor (who did
// it: a user ID, a SystemActorPrefix name, or empty) and Details (values
// that encode as JSON; see CanonicalDetails). Subject and a user Actor are
// replaced by pseudonyms; Time, Sequence, KeyID, PrevHash and Hash are
// assigned, whatever e held. Details is not copied (a copy would cost
// more than the rest of Log): do not modify the map or its values after
// Log, or a sink that keeps events in memory (MemorySink) holds a changed
// event that no longer verifies. Events waiting for a retry are copied.
//
// ID is assigned too, unless the caller sets it (see EventID): an
// Appender then stores the event at most once, however often it is
// logged, so an outcome recorded again after a crash is not recorded
// twice. A Logger that links the chain itself does not look IDs up.
//
// When Log returns nil the event is in the first sink (fail-open: or
// queued for it). Otherwise the error matches ErrNotRecorded (the first
// sink did not accept it, or ctx ended first), ErrInvalidEvent, or
// ErrClosed, and the event is not in the chain.
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

// Flush retries what waits in the retry queues, the first sink's and the
// copies', and returns nil when everything logged before the call is in
// every sink. Otherwise it returns an error saying how many events still
// wait.
func (l *Logger) Flush(ctx context.Context) error {
	r := newRequest(ctx)
	r.flush = true
	err := l.do(r, false)
	r.release()
	return err
}

// Close flushes and then refuses further events with ErrClosed, and stops
// feeding the copies (WithSinks) in the background. It does not close the
// sinks, which belong to the caller. It returns Flush's error.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	r := newRequest(ctx)
	r.flush = true
	err := l.do(r, true)
	r.release()
	for _, c := range l.copies {
		c.stop()
	}
	if l.registration != nil {
		_ = l.registration.Unregister()
	}
	return err
}

// Stats returns counters; safe to call at any time.
func (l *Logger) Stats() Stats {
	n := int(l.pending.Load())
	for _, c := range l.copies {
		n += c.queuedEvents()
	}
	return Stats{
		Recorded: l.recorded.Load(),
		Pending:  n,
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
	if e.ID != "" {
		if !validID(e.ID) {
			return fmt.Errorf("%w: ID: a caller's ID must be a lower-case UUID (see EventID)", ErrInvalidEvent)
		}
		r.keyed = true
	}
	var sb strings.Builder
	sb.Grow(size)
	if r.keyed {
		sb.WriteString(e.ID)
	} else {
		writeID(&sb)
	}
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
	head := appendCanonicalPrefix(r.head[:0], ev)
	r.detailsAt = len(head)
	head, err := appendDetails(head, ev.Details)
	if err != nil {
		return fmt.Errorf("%w: Details: %w", ErrInvalidEvent, err)
	}
	r.head = head
	return nil
}

const idLen = 36

// validID reports whether id is a UUID in lower-case hex.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < idLen; i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// EventID returns a UUID (version 8, from SHA-256) determined by name, to
// use as an Event's ID when an outcome must be logged at most once: an
// Appender stores one event per ID, so logging it again after a crash
// (before the caller could note that it was logged) changes nothing.
// Build name from identifiers that carry no personal data, such as a
// request ID and a step: "erasure/<request ID>/completed".
func EventID(name string) string {
	sum := sha256.Sum256([]byte("steward-audit-event-id:" + name))
	raw := [16]byte(sum[:16])
	raw[6] = raw[6]&0x0f | 0x80 // version 8
	raw[8] = raw[8]&0x3f | 0x80 // RFC 9562 variant
	s := formatUUID(raw)
	return string(s[:])
}

// writeID writes a random (version 4) UUID.
func writeID(b *strings.Builder) {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	raw[6] = raw[6]&0x0f | 0x40 // version 4
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	s := formatUUID(raw)
	b.Write(s[:])
}

// formatUUID writes raw in the 8-4-4-4-12 hex form.
func formatUUID(raw [16]byte) [idLen]byte {
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
	return s
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

// write puts the batch's events in the chain through the first sink, sets
// each request's err, and hands the linked events to the copies.
func (l *Logger) write(ctx context.Context, batch []*request) {
	var linked []Event
	if l.appender != nil {
		linked = l.append(ctx, batch)
	} else {
		linked = l.link(ctx, batch)
	}
	if len(linked) > 0 {
		for _, c := range l.copies {
			c.enqueue(linked)
		}
	}
	l.pending.Store(int64(len(l.held) + l.primary.queued))
	var err error
	flushed := false
	for _, r := range batch {
		if !r.flush {
			continue
		}
		if !flushed {
			err, flushed = l.flushCopies(r.ctx), true
		}
		r.err = err
	}
}

// stamp returns the batch's time: UTC, to the microsecond.
func (l *Logger) stamp() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// append writes the held events and the batch's through the Appender and
// returns what it linked.
func (l *Logger) append(ctx context.Context, batch []*request) []Event {
	b := &l.ab
	b.reset()
	for _, h := range l.held {
		b.add(h.ev, h.head, h.detailsAt, h.keyed)
	}
	now := l.stamp()
	fresh := 0
	for _, r := range batch {
		if !r.flush {
			r.ev.Time = now
			b.add(r.ev, r.head, r.detailsAt, r.keyed)
			fresh++
		}
	}
	if b.Len() == 0 {
		return nil
	}
	err := l.appender.Append(ctx, b)
	if err == nil {
		l.held = l.held[:0]
		l.recorded.Add(uint64(len(b.Events())))
		for _, r := range batch {
			r.err = nil
		}
		return b.Events()
	}
	l.primary.lastErr = err
	if !l.failOpen {
		for _, r := range batch {
			if !r.flush {
				r.err = fmt.Errorf("%w: %w", ErrNotRecorded, err)
			}
		}
		l.refused.Add(uint64(fresh))
		return nil
	}
	// Fail-open: hold the new events, unlinked, for the next write.
	if fresh == 0 {
		return nil
	}
	if len(l.held)+fresh > l.queueLimit {
		l.drop(fresh, err)
		return nil
	}
	for _, r := range batch {
		if r.flush {
			continue
		}
		ev := r.ev
		ev.Details = maps.Clone(ev.Details)
		l.held = append(l.held, heldEvent{ev: ev, head: slices.Clone(r.head), detailsAt: r.detailsAt, keyed: r.keyed})
	}
	return nil
}

func (l *Logger) drop(n int, err error) {
	l.dropped.Add(uint64(n))
	if l.onDrop != nil {
		l.onDrop(n, err)
	}
}

// link chains the batch's events itself, continuing from the resume
// Reader the first time, writes them to the first sink after its retry
// queue, and returns them when they joined the chain.
func (l *Logger) link(ctx context.Context, batch []*request) []Event {
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
	if len(l.events) == 0 {
		_ = l.primary.write(ctx, nil) // a flush: retry the queue
		return nil
	}
	if l.resume != nil {
		last, err := l.resume.Last(ctx)
		if err != nil {
			setAll(fmt.Errorf("%w: resuming the chain: %w", ErrNotRecorded, err))
			l.refused.Add(uint64(len(l.events)))
			return nil
		}
		l.seq, l.head, l.resume = last.Sequence, last.Hash, nil
	}
	l.chain(batch)
	err := l.primary.write(ctx, l.events)
	switch {
	case err == nil:
	case !l.failOpen:
		// Not recorded: take the events out of the chain.
		first := l.events[0]
		l.seq, l.head = first.Sequence-1, first.PrevHash
		setAll(fmt.Errorf("%w: %w", ErrNotRecorded, err))
		l.refused.Add(uint64(len(l.events)))
		return nil
	case l.primary.queued+len(l.events) > l.queueLimit:
		l.primary.lastErr = err
		l.drop(len(l.events), err)
	default:
		l.primary.lastErr = err
		l.primary.pending = append(l.primary.pending, cloneEvents(l.events))
		l.primary.queued += len(l.events)
	}
	l.recorded.Add(uint64(len(l.events)))
	setAll(nil)
	return l.events
}

// cloneEvents copies events and their Details maps, so that a caller
// reusing its map cannot change what is retried.
func cloneEvents(events []Event) []Event {
	out := slices.Clone(events)
	for i := range out {
		out[i].Details = maps.Clone(out[i].Details)
	}
	return out
}

// chain assigns time, sequence and hashes to l.events.
func (l *Logger) chain(batch []*request) {
	now := l.stamp()
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

// flushCopies writes what waits for each copy now, and reports what still
// waits anywhere.
func (l *Logger) flushCopies(ctx context.Context) error {
	n := len(l.held) + l.primary.queued
	var errs []error
	if n > 0 {
		errs = append(errs, l.primary.lastErr)
	}
	for _, c := range l.copies {
		if err := c.drain(ctx); err != nil {
			n += c.queuedEvents()
			errs = append(errs, err)
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("audit: flush: %d events still waiting for a sink: %w", n, errors.Join(errs...))
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
