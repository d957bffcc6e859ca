package privacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stewardlabs/steward"
)

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/stewardlabs/steward/privacy"

// Metric and span names, and attribute keys; doc.go lists them.
const (
	metricRequests        = "steward.privacy.requests"
	metricRequestsOpen    = "steward.privacy.requests.open"
	metricRequestsOverdue = "steward.privacy.requests.overdue"
	metricErasureDuration = "steward.privacy.erasure.duration"
	metricStepDuration    = "steward.privacy.erasure.step.duration"
	metricStepRetries     = "steward.privacy.erasure.step.retries"
	metricExportRecords   = "steward.privacy.export.records"
	metricExportBytes     = "steward.privacy.export.bytes"
	spanErasure           = "steward.privacy.erasure"
	spanErasureStep       = "steward.privacy.erasure.step"
	spanExport            = "steward.privacy.export"

	attrRequestID     = attribute.Key("steward.request.id")
	attrRequestKind   = attribute.Key("steward.request.kind")
	attrRequestStatus = attribute.Key("steward.request.status")
	attrRequestRegime = attribute.Key("steward.request.regime")
	attrStepName      = attribute.Key("steward.step.name")
	attrStepKind      = attribute.Key("steward.step.kind")
	attrStepStatus    = attribute.Key("steward.step.status")
	attrStepAttempts  = attribute.Key("steward.step.attempts")
	attrStepCode      = attribute.Key("steward.step.code")
	attrExportMode    = attribute.Key("steward.export.mode")
	attrExportRecords = attribute.Key("steward.export.records")
	attrExportBytes   = attribute.Key("steward.export.bytes")
)

// Outcomes of an erasure run that are not a request status.
const (
	outcomeInterrupted = "interrupted"
	outcomeClaimed     = "claimed"
	outcomeScheduled   = "scheduled"
	outcomeFailed      = "failed"
)

// WithMeterProvider records the Service's metrics (see the package
// documentation, "Metrics and traces") with mp. Without it nothing is
// recorded. The gauges of open and overdue requests read the
// RequestStore once per collection.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *Service) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider: nil provider", ErrInvalidConfig)
		}
		s.tel.mp = mp
		return nil
	}
}

// WithTracerProvider traces erasures (a span per run with a child per
// step) and exports with tp. Without it nothing is traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Service) error {
		if tp == nil {
			return fmt.Errorf("%w: WithTracerProvider: nil provider", ErrInvalidConfig)
		}
		s.tel.tracer = tp.Tracer(instrumentationName)
		return nil
	}
}

// WithLogger logs what the Service does on its own (erasure runs and
// their failed steps, exports written, cancellations, replays) to l:
// request IDs, kinds, statuses, step names and error codes, never a user
// ID, an email or what a store or provider said (that stays in the
// request's steps, redacted). Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger: nil logger", ErrInvalidConfig)
		}
		s.tel.log = l
		return nil
	}
}

// telemetry is the Service's metrics, traces and log. Its zero value
// records nothing and costs a nil check per call.
type telemetry struct {
	mp     metric.MeterProvider
	tracer trace.Tracer // nil: no tracing
	log    *slog.Logger // nil: no logging

	metrics      bool
	requests     metric.Int64Counter
	erasureTime  metric.Float64Histogram
	stepTime     metric.Float64Histogram
	stepRetries  metric.Int64Counter
	exportRecs   metric.Int64Counter
	exportBytes  metric.Int64Counter
	registration metric.Registration

	mu   sync.Mutex
	sets map[setKey]*attrSet // attribute sets, built once each
}

// attrSet is one attribute set as the options of Add and Record, built
// once so that recording allocates nothing.
type attrSet struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

// setKey names one attribute set of the Service's metrics.
type setKey struct{ a, b, c, d string }

// durationBuckets are the histogram bounds, in seconds: from a
// millisecond (a memory store) to ten minutes (a slow provider's
// retries).
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// start creates the instruments when a MeterProvider was given.
func (t *telemetry) start(s *Service) error {
	if t.mp == nil {
		return nil
	}
	m := t.mp.Meter(instrumentationName)
	var err, e error
	t.requests, e = m.Int64Counter(metricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests that entered a status in this process: created (pending), or left completed, partial, held or cancelled by a run."))
	err = errors.Join(err, e)
	t.erasureTime, e = m.Float64Histogram(metricErasureDuration, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of one run of an erasure request, by the status it left the request in."))
	err = errors.Join(err, e)
	t.stepTime, e = m.Float64Histogram(metricStepDuration, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...),
		metric.WithDescription("Duration of one erasure step in one run, its retries included."))
	err = errors.Join(err, e)
	t.stepRetries, e = m.Int64Counter(metricStepRetries, metric.WithUnit("{retry}"),
		metric.WithDescription("Calls of an erasure step beyond the first in a run."))
	err = errors.Join(err, e)
	t.exportRecs, e = m.Int64Counter(metricExportRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Records written into export documents."))
	err = errors.Join(err, e)
	t.exportBytes, e = m.Int64Counter(metricExportBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes of export documents written."))
	err = errors.Join(err, e)
	open, e := m.Int64ObservableGauge(metricRequestsOpen, metric.WithUnit("{request}"),
		metric.WithDescription("Open requests in the RequestStore (pending, partial, held), by kind and status."))
	err = errors.Join(err, e)
	overdue, e := m.Int64ObservableGauge(metricRequestsOverdue, metric.WithUnit("{request}"),
		metric.WithDescription("Pending and partial requests in the RequestStore past their due date, by kind."))
	err = errors.Join(err, e)
	if err != nil {
		return fmt.Errorf("%w: WithMeterProvider: %w", ErrInvalidConfig, err)
	}
	t.registration, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		return s.observeRequests(ctx, o, open, overdue)
	}, open, overdue)
	if err != nil {
		return fmt.Errorf("%w: WithMeterProvider: %w", ErrInvalidConfig, err)
	}
	t.metrics = true
	return nil
}

// stop unregisters the gauges' callback.
func (t *telemetry) stop() {
	if t.registration != nil {
		_ = t.registration.Unregister()
	}
}

// set returns the attribute set of key, built once: the first two, three
// or four keys given name its values.
func (t *telemetry) set(key setKey, keys ...attribute.Key) *attrSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.sets[key]; ok {
		return o
	}
	vals := [...]string{key.a, key.b, key.c, key.d}
	kvs := make([]attribute.KeyValue, len(keys))
	for i, k := range keys {
		kvs[i] = k.String(vals[i])
	}
	m := metric.WithAttributeSet(attribute.NewSet(kvs...))
	o := &attrSet{add: []metric.AddOption{m}, rec: []metric.RecordOption{m}, obs: []metric.ObserveOption{m}}
	if t.sets == nil {
		t.sets = map[setKey]*attrSet{}
	}
	t.sets[key] = o
	return o
}

// observeRequests reports the open and overdue requests.
func (s *Service) observeRequests(ctx context.Context, o metric.Observer, open, overdue metric.Int64Observable) error {
	now := s.clock()
	type ks struct {
		k Kind
		s Status
	}
	counts := map[ks]int64{}
	late := map[Kind]int64{}
	for r, err := range s.requests.List(ctx, RequestFilter{Statuses: openStatuses}) {
		if err != nil {
			return fmt.Errorf("privacy: metrics: listing open requests: %w", err)
		}
		counts[ks{r.Kind, r.Status}]++
		if r.Status != StatusHeld && r.DueAt.Before(now) {
			late[r.Kind]++
		}
	}
	t := &s.tel
	for _, k := range []Kind{KindErasure, KindExport} {
		for _, st := range openStatuses {
			o.ObserveInt64(open, counts[ks{k, st}], t.set(setKey{a: string(k), b: string(st)}, attrRequestKind, attrRequestStatus).obs...)
		}
		o.ObserveInt64(overdue, late[k], t.set(setKey{a: string(k)}, attrRequestKind).obs...)
	}
	return nil
}

// requestEntered counts a request of kind that entered status.
func (t *telemetry) requestEntered(ctx context.Context, kind Kind, status Status) {
	if !t.metrics {
		return
	}
	t.requests.Add(ctx, 1, t.set(setKey{a: string(kind), b: string(status)}, attrRequestKind, attrRequestStatus).add...)
}

// runOutcome names what a run of an erasure left the request at: its
// status, or what stopped the run.
func runOutcome(ctx context.Context, res DeletionResult, err error) string {
	switch {
	case err == nil && res.Success:
		return string(StatusCompleted)
	case errors.Is(err, ErrLegalHold):
		return string(StatusHeld)
	case errors.Is(err, ErrPartialDeletion):
		return string(StatusPartial)
	case errors.Is(err, ErrCancelled):
		return string(StatusCancelled)
	case errors.Is(err, ErrScheduled):
		return outcomeScheduled
	case errors.Is(err, ErrRequestClaimed), errors.Is(err, ErrClaimLost):
		return outcomeClaimed
	case ctx.Err() != nil:
		return outcomeInterrupted
	}
	return outcomeFailed
}

// erasureRun is one run of an erasure request being observed.
type erasureRun struct {
	t      *telemetry
	span   trace.Span // nil without a tracer
	start  time.Time
	id     string
	regime Regime
}

// startErasure opens the span of one run of req, when tracing.
func (t *telemetry) startErasure(ctx context.Context, req Request) (context.Context, erasureRun) {
	r := erasureRun{t: t, id: req.ID, regime: req.Regime}
	if t.metrics || t.log != nil {
		r.start = time.Now()
	}
	if t.tracer != nil {
		// Attributes are set once, at the end: one allocation.
		ctx, r.span = t.tracer.Start(ctx, spanErasure)
	}
	return ctx, r
}

// end records the run's outcome.
func (r erasureRun) end(ctx context.Context, res DeletionResult, err error) {
	t := r.t
	if !t.metrics && t.log == nil && r.span == nil {
		return
	}
	outcome := runOutcome(ctx, res, err)
	switch outcome {
	case string(StatusCompleted), string(StatusPartial), string(StatusHeld):
		t.requestEntered(ctx, KindErasure, Status(outcome))
	}
	if t.metrics {
		t.erasureTime.Record(ctx, time.Since(r.start).Seconds(), t.set(setKey{a: outcome}, attrRequestStatus).rec...)
	}
	if r.span != nil {
		r.span.SetAttributes(attrRequestID.String(r.id), attrRequestKind.String(string(KindErasure)),
			attrRequestRegime.String(string(r.regime)), attrRequestStatus.String(outcome))
		switch outcome {
		case string(StatusCompleted), string(StatusHeld), string(StatusCancelled), outcomeScheduled, outcomeClaimed:
		default:
			r.span.SetStatus(codes.Error, outcome)
		}
		r.span.End()
	}
	if t.log != nil {
		attrs := []slog.Attr{slog.String("request", r.id), slog.String("status", outcome),
			slog.Duration("took", time.Since(r.start))}
		level := slog.LevelInfo
		if len(res.Errors) > 0 {
			level = slog.LevelWarn
			failed := make([]string, 0, len(res.Errors))
			for _, e := range res.Errors {
				failed = append(failed, e.Step+":"+e.Code)
			}
			attrs = append(attrs, slog.Any("failed", failed))
		}
		t.log.LogAttrs(ctx, level, "privacy: erasure run ended", attrs...)
	}
}

// erasureStep is one step of a run being observed.
type erasureStep struct {
	t        *telemetry
	span     trace.Span
	name     string
	kind     StepKind
	attempts int // the step's attempts before this run
	start    time.Time
	done     bool
}

// startStep opens the span of step st, when observing; it reuses e, a
// step of the same run already ended, when not nil.
func (t *telemetry) startStep(ctx context.Context, st Step, e *erasureStep) (context.Context, *erasureStep) {
	if !t.metrics && t.tracer == nil && t.log == nil {
		return ctx, nil
	}
	if e == nil {
		e = &erasureStep{}
	}
	*e = erasureStep{t: t, name: st.Name, kind: st.Kind, attempts: st.Attempts, start: time.Now()}
	if t.tracer != nil {
		// Attributes are set once, at the end: one allocation.
		ctx, e.span = t.tracer.Start(ctx, spanErasureStep)
	}
	return ctx, e
}

// end records the step as req now holds it (its status and attempts as
// checkpointed) and errs, the run's step errors. It does nothing on a nil
// step or a second call.
func (e *erasureStep) end(ctx context.Context, req *Request, errs []StepError) {
	if e == nil || e.done {
		return
	}
	e.done = true
	status, attempts := StepPending, 0
	if p := req.Step(e.name); p != nil {
		status, attempts = p.Status, p.Attempts-e.attempts
	}
	code := ""
	if status != StepDone {
		for _, se := range errs {
			if se.Step == e.name {
				code = se.Code
			}
		}
	}
	t := e.t
	if t.metrics {
		t.stepTime.Record(ctx, time.Since(e.start).Seconds(),
			t.set(setKey{a: e.name, b: string(e.kind), c: string(status)}, attrStepName, attrStepKind, attrStepStatus).rec...)
		if attempts > 1 {
			t.stepRetries.Add(ctx, int64(attempts-1), t.set(setKey{a: e.name, b: string(e.kind)}, attrStepName, attrStepKind).add...)
		}
	}
	if e.span != nil {
		name, kind := attrStepName.String(e.name), attrStepKind.String(string(e.kind))
		st, n := attrStepStatus.String(string(status)), attrStepAttempts.Int(attempts)
		if code != "" {
			e.span.SetAttributes(name, kind, st, n, attrStepCode.String(code))
			e.span.SetStatus(codes.Error, code)
		} else {
			e.span.SetAttributes(name, kind, st, n)
		}
		e.span.End()
	}
	if t.log != nil && status == StepFailed {
		t.log.LogAttrs(ctx, slog.LevelWarn, "privacy: erasure step failed", slog.String("request", req.ID),
			slog.String("step", e.name), slog.String("kind", string(e.kind)), slog.Int("attempts", attempts), slog.String("code", code))
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeExport writes u's export document to w (writeDocument), in mode
// "inline" or "queued" (request id), inside the export's span, and
// records its records and bytes when it was written whole.
func (s *Service) writeExport(ctx context.Context, mode, id string, u steward.User, w io.Writer) (int, error) {
	t := &s.tel
	if !t.metrics && t.tracer == nil && t.log == nil {
		return s.writeDocument(ctx, u, w)
	}
	var span trace.Span
	if t.tracer != nil {
		attrs := []attribute.KeyValue{attrExportMode.String(mode)}
		if id != "" {
			attrs = append(attrs, attrRequestID.String(id))
		}
		ctx, span = t.tracer.Start(ctx, spanExport, trace.WithAttributes(attrs...))
	}
	cw := &countingWriter{w: w}
	n, err := s.writeDocument(ctx, u, cw)
	if err == nil && t.metrics {
		o := t.set(setKey{a: mode}, attrExportMode)
		t.exportRecs.Add(ctx, int64(n), o.add...)
		t.exportBytes.Add(ctx, cw.n, o.add...)
	}
	if span != nil {
		span.SetAttributes(attrExportRecords.Int(n), attrExportBytes.Int64(cw.n))
		if err != nil {
			span.SetStatus(codes.Error, "export failed")
		}
		span.End()
	}
	if t.log != nil && err == nil {
		attrs := []slog.Attr{slog.String("mode", mode), slog.Int("records", n), slog.Int64("bytes", cw.n)}
		if id != "" {
			attrs = append(attrs, slog.String("request", id))
		}
		t.log.LogAttrs(ctx, slog.LevelInfo, "privacy: export written", attrs...)
	}
	return n, err
}
