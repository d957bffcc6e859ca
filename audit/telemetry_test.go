package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward/audit"
)

// collectMetrics reads the metrics of reader: per metric name, per attribute
// set ("k=v,k=v"), the value of a sum or gauge.
func collectMetrics(t *testing.T, reader *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var pts []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				pts = d.DataPoints
			case metricdata.Gauge[int64]:
				pts = d.DataPoints
			default:
				t.Fatalf("metric %s has unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = map[string]int64{}
			for _, p := range pts {
				var kv []string
				for _, a := range p.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.Emit())
				}
				out[m.Name][strings.Join(kv, ",")] = p.Value
			}
		}
	}
	return out
}

func TestLoggerMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ctx := context.Background()

	// Fail-closed over an Appender: recorded, then refused.
	app := &failingAppender{MemorySink: audit.NewMemorySink()}
	l := newLogger(t, app, audit.WithMeterProvider(mp))
	logN(t, l, 3)
	app.down = true
	if err := l.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_1"}); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("Log to a sink that is down: %v", err)
	}

	// Fail-open, linking the chain itself, with a queue of two: one
	// event waits, the next overflows and is dropped.
	flaky := newFlaky()
	flaky.down.Store(true)
	open := newLogger(t, flaky, audit.WithMeterProvider(mp), audit.WithFailOpen(), audit.WithQueueLimit(1))
	logN(t, open, 2)

	want := map[string]map[string]int64{
		"steward.audit.events": {
			"steward.audit.outcome=recorded": 3 + 2, // the fail-open Logger puts both in its chain
			"steward.audit.outcome=refused":  1,
			"steward.audit.outcome=dropped":  1,
		},
		// One gauge per Logger, both without attributes: the SDK keeps
		// the last observation of the set.
		"steward.audit.events.pending": {"": 1},
	}
	if diff := cmp.Diff(want, collectMetrics(t, reader)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if _, err := audit.NewLogger(audit.NewMemorySink(), audit.WithKey("k1", testKey), audit.WithMeterProvider(nil)); err == nil ||
		!strings.Contains(err.Error(), "WithMeterProvider") {
		t.Errorf("WithMeterProvider(nil): %v", err)
	}
}

// failingAppender is a MemorySink whose Append fails while down.
type failingAppender struct {
	*audit.MemorySink
	down bool
}

func (f *failingAppender) Append(ctx context.Context, b *audit.Batch) error {
	if f.down {
		return errDown
	}
	return f.MemorySink.Append(ctx, b)
}

func TestForwarderMetricsAndSpans(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewInMemoryExporter()
	src := audit.NewMemorySink()
	logN(t, newLogger(t, src), 5)
	dst := &recordingSink{}
	f := newForwarder(t, src, dst, audit.NewMemoryCursors(nil),
		audit.WithForwardMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		audit.WithForwardTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))),
		audit.WithForwardBatch(2))
	ctx := context.Background()
	if n, err := f.Forward(ctx); n != 5 || err != nil {
		t.Fatalf("Forward: %d, %v", n, err)
	}
	logN(t, newLogger(t, src), 2)
	dst.down.Store(true)
	if _, err := f.Forward(ctx); err == nil {
		t.Fatal("Forward to a collector that is down succeeded")
	}
	want := map[string]map[string]int64{
		"steward.audit.forwarder.events": {"steward.audit.destination=collector": 5},
		"steward.audit.forwarder.lag":    {"steward.audit.destination=collector": 2},
	}
	if diff := cmp.Diff(want, collectMetrics(t, reader)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	type pass struct {
		Name  string
		Attrs string
		Error bool
	}
	var got []pass
	for _, s := range spans.GetSpans() {
		set := attribute.NewSet(s.Attributes...)
		got = append(got, pass{s.Name, set.Encoded(attribute.DefaultEncoder()), s.Status.Code == codes.Error})
	}
	wantSpans := []pass{
		{"steward.audit.forward", "steward.audit.destination=collector,steward.audit.forwarded=5", false},
		{"steward.audit.forward", "steward.audit.destination=collector,steward.audit.forwarded=0", true},
	}
	if diff := cmp.Diff(wantSpans, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}
