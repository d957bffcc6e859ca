package audit

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/stewardlabs/steward/audit"

// Metric and span names and attribute keys; doc.go lists them.
const (
	metricEvents        = "steward.audit.events"
	metricEventsPending = "steward.audit.events.pending"
	metricForwarded     = "steward.audit.forwarder.events"
	metricForwarderLag  = "steward.audit.forwarder.lag"
	spanForward         = "steward.audit.forward"

	attrOutcome     = attribute.Key("steward.audit.outcome")
	attrDestination = attribute.Key("steward.audit.destination")
	attrForwarded   = attribute.Key("steward.audit.forwarded")
)

// WithMeterProvider records the Logger's metrics with mp: events put in
// the chain, refused and dropped (steward.audit.events), and events
// waiting for a retry (steward.audit.events.pending). Without it nothing
// is recorded. Both are observed from the Logger's counters (Stats) when
// mp's reader collects, so Log pays nothing for them; give each Logger
// its own MeterProvider, or their observations of one attribute set
// overwrite each other.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.errs = append(c.errs, errors.New("audit: WithMeterProvider: nil provider"))
		}
		c.mp = mp
	}
}

// startMetrics registers l's observations with mp.
func (l *Logger) startMetrics(mp metric.MeterProvider) error {
	m := mp.Meter(instrumentationName)
	events, err := m.Int64ObservableCounter(metricEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Audit events by outcome: recorded (in the chain), refused (not recorded, fail-closed) or dropped (a full retry queue)."))
	if err != nil {
		return fmt.Errorf("audit: WithMeterProvider: %w", err)
	}
	pending, err := m.Int64ObservableGauge(metricEventsPending, metric.WithUnit("{event}"),
		metric.WithDescription("Audit events waiting for a sink to accept them (Stats().Pending)."))
	if err != nil {
		return fmt.Errorf("audit: WithMeterProvider: %w", err)
	}
	recorded := metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("recorded")))
	refused := metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("refused")))
	dropped := metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("dropped")))
	l.registration, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := l.Stats()
		o.ObserveInt64(events, int64(st.Recorded), recorded)
		o.ObserveInt64(events, int64(l.refused.Load()), refused)
		o.ObserveInt64(events, int64(st.Dropped), dropped)
		o.ObserveInt64(pending, int64(st.Pending))
		return nil
	}, events, pending)
	if err != nil {
		return fmt.Errorf("audit: WithMeterProvider: %w", err)
	}
	return nil
}

// WithForwardMeterProvider records the Forwarder's metrics with mp:
// events sent (steward.audit.forwarder.events) and its lag behind the
// chain's head (steward.audit.forwarder.lag), by destination name.
func WithForwardMeterProvider(mp metric.MeterProvider) ForwarderOption {
	return func(f *Forwarder) error {
		if mp == nil {
			return errors.New("audit: WithForwardMeterProvider: nil provider")
		}
		f.mp = mp
		return nil
	}
}

// WithForwardTracerProvider traces every Forward pass (a span
// steward.audit.forward) with tp.
func WithForwardTracerProvider(tp trace.TracerProvider) ForwarderOption {
	return func(f *Forwarder) error {
		if tp == nil {
			return errors.New("audit: WithForwardTracerProvider: nil provider")
		}
		f.tracer = tp.Tracer(instrumentationName)
		return nil
	}
}

// startMetrics creates f's instruments when a MeterProvider was given.
func (f *Forwarder) startMetrics() error {
	if f.mp == nil {
		return nil
	}
	m := f.mp.Meter(instrumentationName)
	sent, err := m.Int64Counter(metricForwarded, metric.WithUnit("{event}"),
		metric.WithDescription("Audit events a Forwarder sent to its destination and recorded in the cursor."))
	if err != nil {
		return fmt.Errorf("audit: WithForwardMeterProvider: %w", err)
	}
	lag, err := m.Int64ObservableGauge(metricForwarderLag, metric.WithUnit("{event}"),
		metric.WithDescription("Events in the chain not yet forwarded to the destination, as this Forwarder last saw the head and cursor."))
	if err != nil {
		return fmt.Errorf("audit: WithForwardMeterProvider: %w", err)
	}
	f.dest = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrDestination.String(f.name)))}
	obs := metric.WithAttributeSet(attribute.NewSet(attrDestination.String(f.name)))
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(lag, int64(f.Stats().Lag), obs)
		return nil
	}, lag); err != nil {
		return fmt.Errorf("audit: WithForwardMeterProvider: %w", err)
	}
	f.sent = sent
	return nil
}

// startPass opens the span of a Forward pass, when tracing.
func (f *Forwarder) startPass(ctx context.Context) (context.Context, trace.Span) {
	if f.tracer == nil {
		return ctx, nil
	}
	return f.tracer.Start(ctx, spanForward, trace.WithAttributes(attrDestination.String(f.name)))
}

// endPass ends a Forward pass's span.
func endPass(span trace.Span, n int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attrForwarded.Int(n))
	if err != nil && !errors.Is(err, ErrCursorHeld) {
		span.SetStatus(codes.Error, "forward failed")
	}
	span.End()
}
