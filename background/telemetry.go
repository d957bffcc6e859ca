package background

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the package's meter and tracer.
const instrumentationName = "github.com/stewardlabs/steward/background"

// Metric and span names and attribute keys; doc.go lists them.
const (
	metricPasses       = "steward.background.passes"
	metricPassDuration = "steward.background.pass.duration"
	metricPassWork     = "steward.background.pass.work"
	spanPass           = "steward.background.pass"

	attrDuty    = attribute.Key("steward.duty")
	attrTask    = attribute.Key("steward.task")
	attrOutcome = attribute.Key("steward.outcome")
	attrDone    = attribute.Key("steward.done")
)

// WithMeterProvider records every pass of every task with mp, whichever
// engine runs it (the instrumentation is in Task.Do): passes by duty and
// outcome (steward.background.passes), their duration
// (steward.background.pass.duration) and how much they did
// (steward.background.pass.work). Without it nothing is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(r *Runner) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider: nil provider", ErrInvalidConfig)
		}
		r.mp = mp
		return nil
	}
}

// WithTracerProvider traces every pass (a span steward.background.pass,
// parent of the spans the duty makes, such as privacy's erasures) with
// tp, whichever engine runs it.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(r *Runner) error {
		if tp == nil {
			return fmt.Errorf("%w: WithTracerProvider: nil provider", ErrInvalidConfig)
		}
		r.tracer = tp.Tracer(instrumentationName)
		return nil
	}
}

// passMetrics are a Runner's instruments; nil when no MeterProvider was
// given.
type passMetrics struct {
	passes   metric.Int64Counter
	duration metric.Float64Histogram
	work     metric.Int64Counter
}

func (r *Runner) startMetrics() error {
	if r.mp == nil {
		return nil
	}
	m := r.mp.Meter(instrumentationName)
	pm := &passMetrics{}
	var err, e error
	pm.passes, e = m.Int64Counter(metricPasses, metric.WithUnit("{pass}"),
		metric.WithDescription("Passes of background tasks, by duty, task and outcome (ok, or failed; another instance holding the work is ok)."))
	err = errors.Join(err, e)
	pm.duration, e = m.Float64Histogram(metricPassDuration, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800),
		metric.WithDescription("Duration of one pass of a background task."))
	err = errors.Join(err, e)
	pm.work, e = m.Int64Counter(metricPassWork, metric.WithUnit("{item}"),
		metric.WithDescription("What passes did: requests driven, users synced, records purged, events forwarded, exports expired."))
	err = errors.Join(err, e)
	if err != nil {
		return fmt.Errorf("%w: WithMeterProvider: %w", ErrInvalidConfig, err)
	}
	r.metrics = pm
	return nil
}

// observe wraps a task's Do with the Runner's metrics, span and log
// line, so both engines report passes alike. do's error is returned as
// it is; normal outcomes (nil after normal) count as "ok".
func (r *Runner) observe(d Duty, name string, do func(context.Context) (int, error)) func(context.Context) (int, error) {
	if r.metrics == nil && r.tracer == nil {
		return do
	}
	duty, task := attrDuty.String(string(d)), attrTask.String(name)
	base := attribute.NewSet(duty, task)
	ok := attribute.NewSet(duty, task, attrOutcome.String("ok"))
	failed := attribute.NewSet(duty, task, attrOutcome.String("failed"))
	return func(ctx context.Context) (int, error) {
		start := time.Now()
		var span trace.Span
		if r.tracer != nil {
			ctx, span = r.tracer.Start(ctx, spanPass, trace.WithAttributes(duty, task))
		}
		n, err := do(ctx)
		if m := r.metrics; m != nil {
			outcome := ok
			if err != nil {
				outcome = failed
			}
			m.passes.Add(ctx, 1, metric.WithAttributeSet(outcome))
			m.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributeSet(base))
			if n > 0 {
				m.work.Add(ctx, int64(n), metric.WithAttributeSet(base))
			}
		}
		if span != nil {
			span.SetAttributes(attrDone.Int(n))
			if err != nil {
				span.SetStatus(codes.Error, "pass failed")
			}
			span.End()
		}
		return n, err
	}
}

// logPass logs a pass that did something, at debug level.
func (r *Runner) logPass(ctx context.Context, t Task, n int, took time.Duration) {
	if n > 0 {
		r.logger.LogAttrs(ctx, slog.LevelDebug, "background pass", slog.String("task", t.Name), slog.Int("done", n), slog.Duration("took", took))
	}
}
