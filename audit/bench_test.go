package audit_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/stewardlabs/steward/audit"
)

// The benchmark event: what privacy.Service logs for an export.
func benchEvent() audit.Event {
	return audit.Event{Type: audit.DataExport, Subject: "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
		Actor: "user_2admin9QxPzM4kLw8s1TbVu0aD", Details: map[string]any{"stores": 3}}
}

// floorEvent is the work no implementation can skip: two HMAC-SHA256
// (subject, actor) and one SHA-256 over a canonical record of the same
// size as the Logger hashes.
type floor struct {
	mac  hash.Hash
	sha  hash.Hash
	rec  []byte
	sum  [sha256.Size]byte
	subj []byte
	act  []byte
}

func newFloor(b *testing.B) *floor {
	sink := audit.NewMemorySink()
	l := newLogger(b, sink)
	if err := l.Log(context.Background(), benchEvent()); err != nil {
		b.Fatal(err)
	}
	rec, err := sink.Snapshot()[0].MarshalJSON() // canonical + hash: a little longer than hashed
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	return &floor{mac: hmac.New(sha256.New, testKey), sha: sha256.New(), rec: rec, subj: []byte(e.Subject), act: []byte(e.Actor)}
}

func (f *floor) event() {
	f.mac.Reset()
	f.mac.Write(f.subj)
	f.mac.Sum(f.sum[:0])
	f.mac.Reset()
	f.mac.Write(f.act)
	f.mac.Sum(f.sum[:0])
	f.sha.Reset()
	f.sha.Write(f.rec)
	f.sha.Sum(f.sum[:0])
}

func reportRate(b *testing.B) float64 {
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(1e9/perEvent, "events/s")
	return perEvent
}

func runFloor(b *testing.B, parallel bool) float64 {
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			f := newFloor(b)
			for pb.Next() {
				f.event()
			}
		})
	} else {
		f := newFloor(b)
		for b.Loop() {
			f.event()
		}
	}
	return reportRate(b)
}

// BenchmarkFloor is HMAC-SHA256 twice and SHA-256 once per event.
func BenchmarkFloor(b *testing.B) {
	b.Run("serial", func(b *testing.B) { runFloor(b, false) })
	b.Run("parallel", func(b *testing.B) { runFloor(b, true) })
}

// BenchmarkLogger logs to a MemorySink (replaced every 1<<16 events to
// bound memory) and reports events/s and x-floor: the Logger's time per
// event divided by the floor's (HMAC-SHA256 twice and SHA-256 once per
// event) measured in the same run. In serial mode the floor runs in
// rounds interleaved with the Logger's, so both see the same machine load;
// in parallel mode it runs just before, as floor-parallel.
func BenchmarkLogger(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		ctx := context.Background()
		e := benchEvent()
		f := newFloor(b)
		const round = 1024
		var l *audit.Logger
		var floorTime time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i%round == 0 {
				b.StopTimer()
				if i%(64*round) == 0 {
					l = newBenchLogger(b)
				}
				start := time.Now()
				for range min(round, b.N-i) {
					f.event()
				}
				floorTime += time.Since(start)
				b.StartTimer()
			}
			if err := l.Log(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		perEvent := reportRate(b)
		b.ReportMetric(perEvent/(float64(floorTime.Nanoseconds())/float64(b.N)), "x-floor")
	})
	var floorNs float64
	b.Run("floor-parallel", func(b *testing.B) { floorNs = runFloor(b, true) })
	b.Run("parallel", func(b *testing.B) {
		ctx := context.Background()
		e := benchEvent()
		var mu sync.Mutex
		l := newBenchLogger(b)
		n := 0
		logger := func() *audit.Logger {
			mu.Lock()
			defer mu.Unlock()
			if n++; n%(1<<16) == 0 {
				l = newBenchLogger(b)
			}
			return l
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := logger().Log(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if perEvent := reportRate(b); floorNs > 0 {
			b.ReportMetric(perEvent/floorNs, "x-floor")
		}
	})
}

func newBenchLogger(b *testing.B) *audit.Logger {
	l, err := audit.NewLogger(audit.NewMemorySink(), audit.WithKey("k1", testKey))
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func BenchmarkVerify(b *testing.B) {
	sink := audit.NewMemorySink()
	l := newLogger(b, sink)
	for range 1000 {
		if err := l.Log(context.Background(), benchEvent()); err != nil {
			b.Fatal(err)
		}
	}
	events := sink.Snapshot()
	b.ResetTimer()
	for b.Loop() {
		if err := audit.Verify(seqOf(events)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLoggerMetrics measures what WithMeterProvider costs Log: it
// alternates rounds of 1024 events between a Logger without metrics and
// one recording into the OpenTelemetry SDK (a ManualReader, as an
// exporter's periodic reader would hold them), each over a MemorySink,
// and reports both times per event and their ratio, x-plain.
func BenchmarkLoggerMetrics(b *testing.B) {
	ctx := context.Background()
	e := benchEvent()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	fresh := func(opts ...audit.Option) *audit.Logger {
		l, err := audit.NewLogger(audit.NewMemorySink(), append([]audit.Option{audit.WithKey("k1", testKey)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	const round = 1024
	var plain, metered *audit.Logger
	var plainTime, meteredTime time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(64*round) == 0 {
			plain, metered = fresh(), fresh(audit.WithMeterProvider(mp))
		}
		l, acc := plain, &plainTime
		if (i/round)%2 == 1 {
			l, acc = metered, &meteredTime
		}
		start := time.Now()
		if err := l.Log(ctx, e); err != nil {
			b.Fatal(err)
		}
		*acc += time.Since(start)
	}
	half := float64(b.N) / 2
	b.ReportMetric(float64(plainTime.Nanoseconds())/half, "plain-ns/event")
	b.ReportMetric(float64(meteredTime.Nanoseconds())/half, "metered-ns/event")
	b.ReportMetric(float64(meteredTime)/float64(plainTime), "x-plain")
}
