package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// OutboxDepth is an Outbox that can count its entries (MemoryStore and
// sqlstore's Consent can). A Manager with WithMeterProvider reports the
// count as the gauge steward.consent.outbox.depth when its Outbox has
// this method.
type OutboxDepth interface {
	// Depth returns how many users wait in the outbox for a sync, due
	// or not, claimed or not.
	Depth(ctx context.Context) (int, error)
}

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/stewardlabs/steward/consent"

// Metric and span names and attribute keys; doc.go lists them.
const (
	metricOutboxDepth = "steward.consent.outbox.depth"
	metricSyncs       = "steward.consent.syncs"
	spanSync          = "steward.consent.sync"

	attrOutcome = attribute.Key("steward.consent.outcome")
	attrSynced  = attribute.Key("steward.consent.synced")
	attrFailed  = attribute.Key("steward.consent.failed")
)

// WithMeterProvider records the Manager's metrics with mp: syncs to the
// identity provider by outcome (steward.consent.syncs) and, when the
// Outbox is an OutboxDepth, the users waiting in it
// (steward.consent.outbox.depth, read once per collection). Without it
// nothing is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(m *Manager) error {
		if mp == nil {
			return errors.New("consent: WithMeterProvider: nil provider")
		}
		m.tel.mp = mp
		return nil
	}
}

// WithTracerProvider traces every SyncPending pass (a span
// steward.consent.sync) with tp.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(m *Manager) error {
		if tp == nil {
			return errors.New("consent: WithTracerProvider: nil provider")
		}
		m.tel.tracer = tp.Tracer(instrumentationName)
		return nil
	}
}

// WithLogger logs a line per SyncPending pass that synced or failed
// something to l: counts only, never a user ID or a consent state.
// Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("consent: WithLogger: nil logger")
		}
		m.tel.log = l
		return nil
	}
}

// telemetry is a Manager's metrics, traces and log; the zero value
// records nothing.
type telemetry struct {
	mp             metric.MeterProvider
	tracer         trace.Tracer
	log            *slog.Logger
	syncs          metric.Int64Counter
	synced, failed metric.AddOption
}

func (m *Manager) startTelemetry() error {
	t := &m.tel
	if t.mp == nil {
		return nil
	}
	meter := t.mp.Meter(instrumentationName)
	syncs, err := meter.Int64Counter(metricSyncs, metric.WithUnit("{user}"),
		metric.WithDescription("Users whose consent a SyncPending pass mirrored to the identity provider, or failed to."))
	if err != nil {
		return fmt.Errorf("consent: WithMeterProvider: %w", err)
	}
	t.syncs = syncs
	t.synced = metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("synced")))
	t.failed = metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("failed")))
	if d, ok := m.outbox.(OutboxDepth); ok {
		depth, err := meter.Int64ObservableGauge(metricOutboxDepth, metric.WithUnit("{user}"),
			metric.WithDescription("Users waiting in the consent outbox for a sync to the identity provider."))
		if err != nil {
			return fmt.Errorf("consent: WithMeterProvider: %w", err)
		}
		if _, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			n, err := d.Depth(ctx)
			if err != nil {
				return fmt.Errorf("consent: metrics: counting the outbox: %w", err)
			}
			o.ObserveInt64(depth, int64(n))
			return nil
		}, depth); err != nil {
			return fmt.Errorf("consent: WithMeterProvider: %w", err)
		}
	}
	return nil
}

// startSync opens a SyncPending pass's span, when tracing.
func (t *telemetry) startSync(ctx context.Context) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanSync)
}

// syncDone records a pass that synced n users and failed on failed.
func (t *telemetry) syncDone(ctx context.Context, span trace.Span, n, failed int) {
	if t.syncs != nil {
		if n > 0 {
			t.syncs.Add(ctx, int64(n), t.synced)
		}
		if failed > 0 {
			t.syncs.Add(ctx, int64(failed), t.failed)
		}
	}
	if span != nil {
		span.SetAttributes(attrSynced.Int(n), attrFailed.Int(failed))
		if failed > 0 {
			span.SetStatus(codes.Error, "syncs failed")
		}
		span.End()
	}
	if t.log != nil && n+failed > 0 {
		level := slog.LevelInfo
		if failed > 0 {
			level = slog.LevelWarn
		}
		t.log.LogAttrs(ctx, level, "consent: synced to the identity provider", slog.Int("synced", n), slog.Int("failed", failed))
	}
}
