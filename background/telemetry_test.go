package background_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/privacy"
)

// TestPassMetricsAndSpans: every pass of every task is counted, timed
// and traced, whichever engine calls Task.Do, and a duty's own spans (an
// erasure's) are children of its pass.
func TestPassMetricsAndSpans(t *testing.T) {
	w := newWorld(t)
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	svc, err := privacy.NewService(w.idp, privacy.WithRequestStore(w.requests), privacy.WithResumeAfter(0), privacy.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.QueueErasure(ctx, "user_1"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := background.New(background.WithPrivacy(svc), background.WithRetention(w.engine),
		background.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		background.WithTracerProvider(tp),
		background.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range r.Tasks() {
		r.Pass(ctx, task)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = map[string]int64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[m.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = int64(p.Count)
				}
			}
		}
	}
	pass := func(task string) string { return "steward.duty=" + task + ",steward.task=" + task }
	want := map[string]map[string]int64{
		"steward.background.passes": {
			"steward.duty=requests,steward.outcome=ok,steward.task=requests":           1,
			"steward.duty=retention,steward.outcome=ok,steward.task=retention":         1,
			"steward.duty=export_expiry,steward.outcome=ok,steward.task=export_expiry": 1,
		},
		"steward.background.pass.duration": {pass("requests"): 1, pass("retention"): 1, pass("export_expiry"): 1},
		"steward.background.pass.work":     {pass("requests"): 1, pass("retention"): 1}, // one erasure, one record purged
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}

	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byID[s.SpanContext.SpanID().String()] = s
	}
	var erasureParent string
	var passes []string
	for _, s := range spans.GetSpans() {
		switch s.Name {
		case "steward.privacy.erasure":
			erasureParent = byID[s.Parent.SpanID().String()].Name
		case "steward.background.pass":
			set := attribute.NewSet(s.Attributes...)
			passes = append(passes, set.Encoded(attribute.DefaultEncoder()))
		}
	}
	if erasureParent != "steward.background.pass" {
		t.Errorf("the erasure's span has parent %q, want the pass's", erasureParent)
	}
	wantPasses := []string{"steward.done=1," + pass("requests"), "steward.done=1," + pass("retention"), "steward.done=0," + pass("export_expiry")}
	if diff := cmp.Diff(wantPasses, passes); diff != "" {
		t.Errorf("pass spans (-want +got):\n%s", diff)
	}
	if l := logs.String(); !strings.Contains(l, `"msg":"background pass","task":"requests","done":1`) || strings.Contains(l, "user_") {
		t.Errorf("log lines:\n%s", l)
	}
}
