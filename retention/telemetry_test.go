package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward/retention"
)

func TestRunMetricsSpansAndLog(t *testing.T) {
	w := newWorld(t)
	for range 10 {
		w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-100 * day)})
	}
	w.logs.Add(retention.Row{Subject: "user_a", Time: now.Add(-10 * day)})
	for i := range 3 {
		w.inactiveUser(fmt.Sprintf("user_%02d", i), 400*day, nil)
	}
	w.inactiveUser("user_due", 400*day, notice(now.Add(-40*day)))
	policies := []retention.Policy{
		{Name: "logs", Target: w.logs, MaxAge: 90 * day, Action: retention.Delete, BatchSize: 4},
		{Name: "users", MaxAge: 365 * day, Action: retention.NotifyThenErase, GracePeriod: 30 * day, BatchSize: 4},
	}
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	e, err := retention.NewEngine(policies, retention.WithIdentity(w.idp), retention.WithNotifier(w.notes),
		retention.WithEraser(w.svc), retention.WithNow(w.clock.Now),
		retention.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		retention.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))),
		retention.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Run(ctx, retention.RunOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, retention.RunOptions{}); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = map[string]int64{}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				got[m.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
			}
		}
	}
	want := map[string]map[string]int64{ // the dry run records nothing
		"steward.retention.records": {"steward.retention.action=delete,steward.retention.policy=logs": 10},
		"steward.retention.users": {
			"steward.retention.outcome=notified,steward.retention.policy=users": 3,
			"steward.retention.outcome=erased,steward.retention.policy=users":   1,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}

	type span struct{ Name, Parent, Attrs string }
	names := map[string]string{}
	for _, s := range spans.GetSpans() {
		names[s.SpanContext.SpanID().String()] = s.Name
	}
	var tree []span
	for _, s := range spans.GetSpans() {
		if s.Name == "steward.privacy.erasure" || s.Name == "steward.privacy.erasure.step" {
			continue // the eraser's, traced by its own provider if any
		}
		set := attribute.NewSet(s.Attributes...)
		tree = append(tree, span{s.Name, names[s.Parent.SpanID().String()], set.Encoded(attribute.DefaultEncoder())})
	}
	run := func(dry bool) []span {
		return []span{
			{"steward.retention.policy", "steward.retention.run", fmt.Sprintf("steward.retention.action=delete,steward.retention.batches=%d,steward.retention.policy=logs,steward.retention.purged=10", map[bool]int{true: 3, false: 3}[dry])},
			{"steward.retention.policy", "steward.retention.run", fmt.Sprintf("steward.retention.action=notify_then_erase,steward.retention.batches=%d,steward.retention.policy=users,steward.retention.purged=0", map[bool]int{true: 1, false: 2}[dry])},
			{"steward.retention.run", "", fmt.Sprintf("steward.retention.dry_run=%v", dry)},
		}
	}
	if diff := cmp.Diff(append(run(true), run(false)...), tree); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], `"msg":"retention: policy applied","policy":"logs","action":"delete","purged":10`) {
		t.Errorf("log lines:\n%s", logs.String())
	}
	for _, l := range lines {
		if strings.Contains(l, "user_") {
			t.Errorf("log line names a user: %s", l)
		}
	}
	if _, err := retention.NewEngine(nil, retention.WithMeterProvider(nil)); err == nil || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Errorf("WithMeterProvider(nil): %v", err)
	}
}
