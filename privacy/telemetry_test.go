package privacy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward/privacy"
)

// observed is a Service's telemetry captured in memory by the SDK: a
// manual metric reader, spans exported synchronously, JSON log lines.
type observed struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.InMemoryExporter
	logs   bytes.Buffer
}

func newObserved() *observed {
	return &observed{reader: sdkmetric.NewManualReader(), spans: tracetest.NewInMemoryExporter()}
}

// options are the Service's options over o.
func (o *observed) options() []privacy.Option {
	return []privacy.Option{
		privacy.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))),
		privacy.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(o.spans))),
		privacy.WithLogger(slog.New(slog.NewJSONHandler(&o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
}

// points collects the metrics: per metric name, per attribute set
// (written "k=v,k=v"), the value of a sum or gauge, or a histogram's
// count.
func (o *observed) points(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	add := func(name string, set attribute.Set, v float64) {
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][setString(set)] = v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes, float64(p.Count))
				}
			default:
				t.Fatalf("metric %s has unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func setString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

// noPersonalData fails t when any metric attribute, span attribute or
// event, span status or log line holds one of the given values.
func (o *observed) noPersonalData(t *testing.T, values ...string) {
	t.Helper()
	var all []string
	for name, pts := range o.points(t) {
		for attrs := range pts {
			all = append(all, "metric "+name+" {"+attrs+"}")
		}
	}
	for _, s := range o.spans.GetSpans() {
		text := "span " + s.Name + " " + s.Status.Description
		for _, kv := range s.Attributes {
			text += " " + string(kv.Key) + "=" + kv.Value.Emit()
		}
		for _, ev := range s.Events {
			text += " event " + ev.Name + fmt.Sprint(ev.Attributes)
		}
		all = append(all, text)
	}
	all = append(all, strings.Split(o.logs.String(), "\n")...)
	for _, line := range all {
		for _, v := range values {
			if strings.Contains(line, v) {
				t.Errorf("%q names the user (%s)", line, v)
			}
		}
	}
}

// spanNode is a span as the tree test compares it.
type spanNode struct {
	Name     string
	Attrs    map[string]string
	Error    string // the status description of an error status
	Children []spanNode
}

// tree returns the spans under (and including) root, children in start
// order, with the attributes named by keep.
func tree(spans tracetest.SpanStubs, root tracetest.SpanStub, keep ...string) spanNode {
	n := spanNode{Name: root.Name, Attrs: map[string]string{}}
	for _, kv := range root.Attributes {
		if slices.Contains(keep, string(kv.Key)) {
			n.Attrs[string(kv.Key)] = kv.Value.Emit()
		}
	}
	if root.Status.Code == codes.Error {
		n.Error = root.Status.Description
	}
	var kids tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == root.SpanContext.SpanID() && s.Parent.IsValid() {
			kids = append(kids, s)
		}
	}
	sort.SliceStable(kids, func(i, j int) bool { return kids[i].StartTime.Before(kids[j].StartTime) })
	for _, k := range kids {
		n.Children = append(n.Children, tree(spans, k, keep...))
	}
	return n
}

func TestTelemetryOfAnErasure(t *testing.T) {
	w := newWorld(t)
	o := newObserved()
	svc := w.service(o.options()...)
	ctx := context.Background()

	var doc bytes.Buffer
	if err := svc.Export(ctx, testUser, &doc); err != nil {
		t.Fatal(err)
	}
	// The provider fails the first delete, naming the user: a retry.
	w.idp.failN, w.idp.err = 1, errors.New("provider unavailable for "+testUser)
	res, err := svc.Erase(ctx, testUser)
	if err != nil || !res.Success {
		t.Fatalf("Erase: %+v, %v", res, err)
	}

	step := func(name, kind, attempts string) spanNode {
		return spanNode{Name: "steward.privacy.erasure.step", Attrs: map[string]string{
			"steward.step.name": name, "steward.step.kind": kind, "steward.step.status": "done", "steward.step.attempts": attempts}}
	}
	want := spanNode{Name: "steward.privacy.erasure", Attrs: map[string]string{
		"steward.request.id": res.RequestID, "steward.request.kind": "erasure", "steward.request.regime": "gdpr",
		"steward.request.status": "completed"},
		Children: []spanNode{
			step("fence", "fence", "1"), step("orders", "store", "1"), step("preferences", "store", "1"),
			step("identity", "identity", "2"), step("email", "external", "1"), step("final_pass", "final_pass", "1"),
			step("ledger", "ledger", "1"), step("audit", "audit", "1"),
		}}
	spans := o.spans.GetSpans()
	var roots []spanNode
	for _, s := range spans {
		if s.Name == "steward.privacy.erasure" {
			roots = append(roots, tree(spans, s, "steward.request.id", "steward.request.kind", "steward.request.regime",
				"steward.request.status", "steward.step.name", "steward.step.kind", "steward.step.status", "steward.step.attempts"))
		}
	}
	if diff := cmp.Diff([]spanNode{want}, roots); diff != "" {
		t.Errorf("the erasure's span tree (-want +got):\n%s", diff)
	}
	var exports []string
	for _, s := range spans {
		if s.Name == "steward.privacy.export" {
			exports = append(exports, setString(attribute.NewSet(s.Attributes...)))
		}
	}
	if diff := cmp.Diff([]string{fmt.Sprintf("steward.export.bytes=%d,steward.export.mode=inline,steward.export.records=4", doc.Len())}, exports); diff != "" {
		t.Errorf("export spans (-want +got):\n%s", diff)
	}

	steps := map[string]float64{}
	for _, s := range want.Children {
		steps["steward.step.kind="+s.Attrs["steward.step.kind"]+",steward.step.name="+s.Attrs["steward.step.name"]+",steward.step.status=done"] = 1
	}
	zeroGauges := map[string]float64{}
	for _, k := range []string{"erasure", "export"} {
		for _, st := range []string{"pending", "partial", "held"} {
			zeroGauges["steward.request.kind="+k+",steward.request.status="+st] = 0
		}
	}
	wantMetrics := map[string]map[string]float64{
		"steward.privacy.requests": {
			"steward.request.kind=erasure,steward.request.status=pending":   1,
			"steward.request.kind=erasure,steward.request.status=completed": 1,
		},
		"steward.privacy.erasure.duration":      {"steward.request.status=completed": 1},
		"steward.privacy.erasure.step.duration": steps,
		"steward.privacy.erasure.step.retries":  {"steward.step.kind=identity,steward.step.name=identity": 1},
		"steward.privacy.export.records":        {"steward.export.mode=inline": 4},
		"steward.privacy.export.bytes":          {"steward.export.mode=inline": float64(doc.Len())},
		"steward.privacy.requests.open":         zeroGauges,
		"steward.privacy.requests.overdue":      {"steward.request.kind=erasure": 0, "steward.request.kind=export": 0},
	}
	if diff := cmp.Diff(wantMetrics, o.points(t)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}

	logs := o.logs.String()
	if !strings.Contains(logs, `"msg":"privacy: erasure run ended","request":"`+res.RequestID+`","status":"completed"`) ||
		!strings.Contains(logs, `"msg":"privacy: export written","mode":"inline","records":4`) {
		t.Errorf("log lines:\n%s", logs)
	}
	o.noPersonalData(t, testUser, "ada@example.com", "Lovelace")
}

func TestTelemetryOfAPartialErasureAndTheGauges(t *testing.T) {
	w := newWorld(t)
	o := newObserved()
	svc := w.service(o.options()...)
	ctx := context.Background()

	// An overdue request another process left pending, and a partial
	// erasure: the provider keeps failing.
	late := privacy.Request{ID: "req_late", Kind: privacy.KindErasure, UserID: "user_late", Regime: privacy.GDPR,
		Status: privacy.StatusPending, ReceivedAt: t0.AddDate(0, -2, 0), DueAt: t0.AddDate(0, -1, 0), UpdatedAt: t0.AddDate(0, -2, 0)}
	if err := w.reqs.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	w.idp.failN, w.idp.err = -1, errors.New("provider unavailable for "+testUser)
	res, err := svc.Erase(ctx, testUser)
	if !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase: %+v, %v; want a partial deletion", res, err)
	}

	got := o.points(t)
	for _, c := range []struct {
		metric, attrs string
		want          float64
	}{
		{"steward.privacy.requests", "steward.request.kind=erasure,steward.request.status=partial", 1},
		{"steward.privacy.requests.open", "steward.request.kind=erasure,steward.request.status=pending", 1},
		{"steward.privacy.requests.open", "steward.request.kind=erasure,steward.request.status=partial", 1},
		{"steward.privacy.requests.overdue", "steward.request.kind=erasure", 1},
		{"steward.privacy.erasure.duration", "steward.request.status=partial", 1},
		{"steward.privacy.erasure.step.duration", "steward.step.kind=identity,steward.step.name=identity,steward.step.status=failed", 1},
		{"steward.privacy.erasure.step.retries", "steward.step.kind=identity,steward.step.name=identity", float64(fastRetry.MaxAttempts - 1)},
	} {
		if v, ok := got[c.metric][c.attrs]; !ok || v != c.want {
			t.Errorf("%s {%s} = %v (recorded %v), want %v; all: %v", c.metric, c.attrs, v, ok, c.want, got[c.metric])
		}
	}

	var failed []spanNode
	for _, s := range o.spans.GetSpans() {
		if s.Status.Code == codes.Error {
			failed = append(failed, tree(nil, s, "steward.step.name", "steward.step.code"))
		}
	}
	wantFailed := []spanNode{
		{Name: "steward.privacy.erasure.step", Attrs: map[string]string{"steward.step.name": "identity", "steward.step.code": "identity_failed"}, Error: "identity_failed"},
		{Name: "steward.privacy.erasure", Attrs: map[string]string{}, Error: "partial"},
	}
	if diff := cmp.Diff(wantFailed, failed); diff != "" {
		t.Errorf("spans with an error status (-want +got):\n%s", diff)
	}
	if logs := o.logs.String(); !strings.Contains(logs, `"msg":"privacy: erasure step failed","request":"`+res.RequestID+`","step":"identity","kind":"identity","attempts":3,"code":"identity_failed"`) {
		t.Errorf("log lines:\n%s", logs)
	}
	// The provider's words named the user: they stay in the request's
	// steps (redacted), out of spans, metrics and logs.
	o.noPersonalData(t, testUser, "ada@example.com", "provider unavailable", "user_late")
}

func TestTelemetryIsOffWithoutProviders(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  privacy.Option
	}{
		{"WithMeterProvider", privacy.WithMeterProvider(nil)},
		{"WithTracerProvider", privacy.WithTracerProvider(nil)},
		{"WithLogger", privacy.WithLogger(nil)},
	} {
		_, err := privacy.NewService(newWorld(t).idp, tc.opt)
		if !errors.Is(err, privacy.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s(nil): %v, want ErrInvalidConfig naming the option", tc.name, err)
		}
	}
}
