package privacy_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// instrumented are the real SDK providers of the instrumentation
// benchmark: metrics into a ManualReader (collected every round, as a
// periodic reader would), spans into an in-memory exporter (emptied
// every round) through a BatchSpanProcessor, as an application exporting
// to a collector would, or with sync through a SimpleSpanProcessor (the
// export in the ending call); every span sampled.
type instrumented struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	opts   []privacy.Option
}

func newInstrumented(sync bool) *instrumented {
	in := &instrumented{reader: sdkmetric.NewManualReader(), spans: tracetest.NewInMemoryExporter()}
	processor := sdktrace.WithBatcher(in.spans)
	if sync {
		processor = sdktrace.WithSyncer(in.spans)
	}
	in.tp = sdktrace.NewTracerProvider(processor)
	in.opts = []privacy.Option{
		privacy.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(in.reader))),
		privacy.WithTracerProvider(in.tp),
	}
	return in
}

// endRound collects the metrics and drops the exported spans, outside
// the timed calls.
func (in *instrumented) endRound(b *testing.B) {
	if err := in.tp.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	in.spans.Reset()
	var rm metricdata.ResourceMetrics
	if err := in.reader.Collect(context.Background(), &rm); err != nil {
		b.Fatal(err)
	}
}

// compare runs op on the plain Service and on the instrumented one
// alternately, call by call, so that both see the same machine load and
// the same size of their stores, timing each call; it reports the median
// time per call of each and their ratio (x-plain), medians being robust
// to the pauses other work on the machine causes. setup, outside the
// timing, prepares call i of a Service. Every round calls the
// instrumented providers collect their metrics and export their spans,
// also outside the timing.
func compare(b *testing.B, round int, in *instrumented, plain, observed *privacy.Service,
	setup func(svc *privacy.Service, i int), op func(svc *privacy.Service, i int) error) {
	b.Helper()
	var times [2][]time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		which := i % 2
		svc := plain
		if which == 1 {
			svc = observed
		}
		if setup != nil {
			setup(svc, i)
		}
		start := time.Now()
		if err := op(svc, i); err != nil {
			b.Fatal(err)
		}
		times[which] = append(times[which], time.Since(start))
		if i++; i%(2*round) == 0 {
			in.endRound(b)
		}
	}
	if len(times[1]) == 0 {
		return // -benchtime too short for one call of each
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	p, o := median(times[0]), median(times[1])
	b.ReportMetric(p, "plain-ns/call")
	b.ReportMetric(o, "otel-ns/call")
	b.ReportMetric(o/p, "x-plain")
}

// BenchmarkInstrumentation measures what WithMeterProvider and
// WithTracerProvider cost Erase and Export, against the same Service
// without them, in the same run (see compare and instrumented):
//
//   - erase/memory: eight steps (fence, two stores, identity, final
//     pass, ledger, audit) over in-memory stores, identity, requests and
//     audit sink, the cheapest erasure there is (so the largest share
//     for the instrumentation);
//   - erase/sqlite: the same stores, with the requests, ledger and audit
//     chain in SQLite through sqlstore, the embedded default;
//   - erase/clerk: the SQLite erasure with the identity in clerktest,
//     reached over loopback HTTP through clerkadapter (the account
//     locked, then deleted), the shape of a real deployment's erasure;
//   - export/1000: an export of 1,000 generated records, discarded;
//
// each with spans batched (/batch) or exported synchronously (/sync).
func BenchmarkInstrumentation(b *testing.B) {
	ctx := context.Background()
	eraseWorld := func(b *testing.B, requests privacy.RequestStore, sink audit.Sink, extra ...privacy.Option) (*privacy.Service, *steward.MemoryIdentity, []*privacy.MemoryStore) {
		idp := steward.NewMemoryIdentity()
		stores := []*privacy.MemoryStore{privacy.NewMemoryStore("orders"), privacy.NewMemoryStore("preferences")}
		log, err := audit.NewLogger(sink, audit.WithKey("k1", bytes.Repeat([]byte{7}, 32)))
		if err != nil {
			b.Fatal(err)
		}
		svc, err := privacy.NewService(idp, append([]privacy.Option{privacy.WithStores(stores[0], stores[1]),
			privacy.WithRequestStore(requests), privacy.WithAudit(log)}, extra...)...)
		if err != nil {
			b.Fatal(err)
		}
		return svc, idp, stores
	}
	type world struct {
		idp    *steward.MemoryIdentity
		stores []*privacy.MemoryStore
	}
	runErase := func(b *testing.B, round int, sync bool, newRequests func(b *testing.B) (privacy.RequestStore, audit.Sink)) {
		in := newInstrumented(sync)
		worlds := map[*privacy.Service]world{}
		r1, s1 := newRequests(b)
		plain, idp, st := eraseWorld(b, r1, s1)
		worlds[plain] = world{idp, st}
		r2, s2 := newRequests(b)
		observed, idp, st := eraseWorld(b, r2, s2, in.opts...)
		worlds[observed] = world{idp, st}
		setup := func(svc *privacy.Service, i int) {
			w := worlds[svc]
			id := fmt.Sprintf("user_bench%08d", i)
			w.idp.Put(steward.User{ID: id, CreatedAt: t0})
			for _, s := range w.stores {
				s.Add(id, privacy.Record{Category: "orders", Data: map[string]any{"id": i, "total": 42}},
					privacy.Record{Category: "orders", Data: map[string]any{"id": i + 1, "total": 7}})
			}
		}
		compare(b, round, in, plain, observed, setup, func(svc *privacy.Service, i int) error {
			res, err := svc.Erase(ctx, fmt.Sprintf("user_bench%08d", i))
			if err == nil && !res.Success {
				err = fmt.Errorf("erasure not completed: %+v", res)
			}
			return err
		})
	}
	processors := []struct {
		name string
		sync bool
	}{{"batch", false}, {"sync", true}}
	for _, pr := range processors {
		b.Run("erase/memory/"+pr.name, func(b *testing.B) {
			runErase(b, 256, pr.sync, func(*testing.B) (privacy.RequestStore, audit.Sink) {
				return privacy.NewMemoryRequestStore(), audit.NewMemorySink()
			})
		})
		b.Run("erase/sqlite/"+pr.name, func(b *testing.B) {
			runErase(b, 32, pr.sync, func(b *testing.B) (privacy.RequestStore, audit.Sink) {
				st, err := sqlstore.New(sqltest.Open(b, sqlstore.SQLite), sqlstore.SQLite)
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				return st.Requests(), st.AuditSink()
			})
		})
	}
	for _, pr := range processors {
		b.Run("erase/clerk/"+pr.name, func(b *testing.B) { benchEraseClerk(b, pr.sync) })
	}
	for _, pr := range processors {
		b.Run("export/1000/"+pr.name, func(b *testing.B) { benchExport(b, newInstrumented(pr.sync)) })
	}
}

// benchEraseClerk compares erasures whose identity lives in clerktest.
func benchEraseClerk(b *testing.B, sync bool) {
	ctx := context.Background()
	in := newInstrumented(sync)
	srv := clerktest.NewServer()
	b.Cleanup(srv.Close)
	prov := clerkadapter.New(srv.ClientConfig())
	stores := map[*privacy.Service][]*privacy.MemoryStore{}
	mk := func(extra ...privacy.Option) *privacy.Service {
		st, err := sqlstore.New(sqltest.Open(b, sqlstore.SQLite), sqlstore.SQLite)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		log, err := audit.NewLogger(st.AuditSink(), audit.WithKey("k1", bytes.Repeat([]byte{7}, 32)))
		if err != nil {
			b.Fatal(err)
		}
		ms := []*privacy.MemoryStore{privacy.NewMemoryStore("orders"), privacy.NewMemoryStore("preferences")}
		svc, err := privacy.NewService(prov, append([]privacy.Option{privacy.WithStores(ms[0], ms[1]),
			privacy.WithRequestStore(st.Requests()), privacy.WithAudit(log)}, extra...)...)
		if err != nil {
			b.Fatal(err)
		}
		stores[svc] = ms
		return svc
	}
	plain, observed := mk(), mk(in.opts...)
	setup := func(svc *privacy.Service, i int) {
		id := fmt.Sprintf("user_bench%08d", i)
		srv.AddUser(steward.User{ID: id, CreatedAt: t0})
		for _, s := range stores[svc] {
			s.Add(id, privacy.Record{Category: "orders", Data: map[string]any{"id": i, "total": 42}})
		}
	}
	compare(b, 32, in, plain, observed, setup, func(svc *privacy.Service, i int) error {
		res, err := svc.Erase(ctx, fmt.Sprintf("user_bench%08d", i))
		if err == nil && !res.Success {
			err = fmt.Errorf("erasure not completed: %+v", res)
		}
		return err
	})
}

// benchExport compares exports of 1,000 generated records.
func benchExport(b *testing.B, in *instrumented) {
	ctx := context.Background()
	{
		plain, _, _ := exportWorld(b, 1000)
		idp := steward.NewMemoryIdentity()
		idp.Put(steward.User{ID: testUser, CreatedAt: t0})
		observed, err := privacy.NewService(idp, append([]privacy.Option{privacy.WithStores(genStore{n: 1000}),
			privacy.WithSanitizer(privacy.Sanitizer{Drop: map[string][]string{"*": {"internalNotes"}}}),
			privacy.WithNow(func() time.Time { return t0 })}, in.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		compare(b, 16, in, plain, observed, nil, func(svc *privacy.Service, _ int) error {
			return svc.Export(ctx, testUser, &countWriter{})
		})
	}
}
