package retention

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

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/stewardlabs/steward/retention"

// Metric and span names and attribute keys; doc.go lists them.
const (
	metricRecords = "steward.retention.records"
	metricUsers   = "steward.retention.users"
	spanRun       = "steward.retention.run"
	spanPolicy    = "steward.retention.policy"

	attrPolicy  = attribute.Key("steward.retention.policy")
	attrAction  = attribute.Key("steward.retention.action")
	attrOutcome = attribute.Key("steward.retention.outcome")
	attrDryRun  = attribute.Key("steward.retention.dry_run")
	attrPurged  = attribute.Key("steward.retention.purged")
	attrBatches = attribute.Key("steward.retention.batches")
)

// WithMeterProvider records what runs do with mp: records deleted or
// anonymised per policy (steward.retention.records), and users notified,
// erased, found active again, skipped for a legal hold or failed per
// NotifyThenErase policy (steward.retention.users). Dry runs record
// nothing. Without it nothing is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(e *Engine) {
		if mp == nil {
			e.optErrs = append(e.optErrs, errors.New("retention: WithMeterProvider: nil provider"))
			return
		}
		e.tel.mp = mp
	}
}

// WithTracerProvider traces every Run (a span steward.retention.run with
// a child steward.retention.policy per policy) with tp.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(e *Engine) {
		if tp == nil {
			e.optErrs = append(e.optErrs, errors.New("retention: WithTracerProvider: nil provider"))
			return
		}
		e.tel.tracer = tp.Tracer(instrumentationName)
	}
}

// WithLogger logs a line per policy applied to l: its name, action and
// counts, never a user ID. Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(e *Engine) {
		if l == nil {
			e.optErrs = append(e.optErrs, errors.New("retention: WithLogger: nil logger"))
			return
		}
		e.tel.log = l
	}
}

// telemetry is an Engine's metrics, traces and log; the zero value
// records nothing.
type telemetry struct {
	mp      metric.MeterProvider
	tracer  trace.Tracer
	log     *slog.Logger
	records metric.Int64Counter
	users   metric.Int64Counter
}

func (t *telemetry) start() error {
	if t.mp == nil {
		return nil
	}
	m := t.mp.Meter(instrumentationName)
	var err, e error
	t.records, e = m.Int64Counter(metricRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Records deleted or anonymised by retention policies, per policy and action."))
	err = errors.Join(err, e)
	t.users, e = m.Int64Counter(metricUsers, metric.WithUnit("{user}"),
		metric.WithDescription("Users a notify_then_erase policy notified, erased, found active again, skipped for a legal hold, or failed on."))
	err = errors.Join(err, e)
	if err != nil {
		t.mp = nil
		return fmt.Errorf("retention: WithMeterProvider: %w", err)
	}
	return nil
}

// startRun opens a Run's span, when tracing.
func (t *telemetry) startRun(ctx context.Context, dryRun bool) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanRun, trace.WithAttributes(attrDryRun.Bool(dryRun)))
}

// startPolicy opens a policy's span, when tracing.
func (t *telemetry) startPolicy(ctx context.Context, p Policy) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanPolicy, trace.WithAttributes(attrPolicy.String(p.Name), attrAction.String(string(p.Action))))
}

// endSpan ends span (nil: not tracing), with an error status when err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "retention run failed")
	}
	span.End()
}

// policyDone records what one policy did.
func (t *telemetry) policyDone(ctx context.Context, span trace.Span, dryRun bool, pr PolicyReport, err error) {
	if span != nil {
		span.SetAttributes(attrPurged.Int(pr.Purged), attrBatches.Int(pr.Batches))
		endSpan(span, err)
	}
	if t.mp != nil && !dryRun {
		policy, action := attrPolicy.String(pr.Name), attrAction.String(string(pr.Action))
		if pr.Action == NotifyThenErase {
			for _, c := range []struct {
				outcome string
				n       int
			}{{"notified", pr.Notified}, {"erased", pr.Erased}, {"reactivated", pr.Reactivated}, {"held", pr.Held}, {"failed", pr.Failed}} {
				if c.n > 0 {
					t.users.Add(ctx, int64(c.n), metric.WithAttributes(policy, attrOutcome.String(c.outcome)))
				}
			}
		} else {
			t.records.Add(ctx, int64(pr.Purged), metric.WithAttributes(policy, action))
		}
	}
	if t.log != nil {
		level, msg := slog.LevelInfo, "retention: policy applied"
		if dryRun {
			msg = "retention: policy planned (dry run)"
		}
		if err != nil {
			level = slog.LevelWarn
		}
		t.log.LogAttrs(ctx, level, msg, slog.String("policy", pr.Name), slog.String("action", string(pr.Action)),
			slog.Int("purged", pr.Purged), slog.Int("batches", pr.Batches), slog.Int("notified", pr.Notified),
			slog.Int("erased", pr.Erased), slog.Int("held", pr.Held), slog.Int("failed", pr.Failed), slog.Bool("ok", err == nil))
	}
}
