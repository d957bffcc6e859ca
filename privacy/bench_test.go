package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"iter"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// genStore is a streaming DataStore that makes n records on the fly, as a
// database cursor would: each record is a fresh map, in four categories
// of equal size. Its name is "app" unless name says otherwise.
type genStore struct {
	n    int
	name string
}

func (g genStore) Name() string {
	if g.name == "" {
		return "app"
	}
	return g.name
}

func (g genStore) Erase(context.Context, string) (privacy.Erased, error) {
	return privacy.Erased{Count: g.n}, nil
}

var genCategories = [...]string{"profile", "orders", "preferences", "activityLog"}

func (g genStore) record(i int) privacy.Record {
	return privacy.Record{
		Category: genCategories[i*len(genCategories)/g.n],
		Data: map[string]any{
			"id":            i,
			"sku":           "sku-" + strconv.Itoa(100000+i%1000),
			"total":         float64(i%10000) / 100,
			"createdAt":     "2025-01-31T10:00:00Z",
			"internalNotes": "dropped by the sanitizer",
		},
	}
}

func (g genStore) Export(ctx context.Context, _ string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		for i := range g.n {
			if i%4096 == 0 && ctx.Err() != nil {
				yield(privacy.Record{}, ctx.Err())
				return
			}
			if !yield(g.record(i), nil) {
				return
			}
		}
	}
}

// naiveExport is the data-handling guide's approach: load everything,
// build one value, marshal it, write it.
func naiveExport(ctx context.Context, idp steward.IdentityProvider, st privacy.DataStore, userID string, w io.Writer) (int, error) {
	u, err := idp.GetUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	byCat := map[string][]map[string]any{}
	n := 0
	for r, err := range st.Export(ctx, userID) {
		if err != nil {
			return n, err
		}
		delete(r.Data, "internalNotes")
		byCat[r.Category] = append(byCat[r.Category], r.Data)
		n++
	}
	doc := map[string]any{
		"formatVersion": 1,
		"exportedAt":    time.Now().UTC(),
		"identity":      map[string]any{"id": u.ID, "createdAt": u.CreatedAt},
		"data":          map[string]any{st.Name(): byCat},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return n, err
	}
	_, err = w.Write(b)
	return n, err
}

// heapPeak samples the heap's object bytes while f runs and returns the
// highest value above the level before f, and f's duration.
func heapPeak(f func()) (growth uint64, elapsed time.Duration) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	f()
	elapsed = time.Since(start)
	close(stop)
	wg.Wait() // the sampler owns sample and peak until it has stopped
	if v := read(); v > peak {
		peak = v
	}
	if peak < base {
		return 0, elapsed
	}
	return peak - base, elapsed
}

// exportWorld is a Service over one user with n generated records.
func exportWorld(tb testing.TB, n int) (*privacy.Service, steward.IdentityProvider, privacy.DataStore) {
	tb.Helper()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: testUser, CreatedAt: t0})
	st := genStore{n: n}
	svc, err := privacy.NewService(idp, privacy.WithStores(st),
		privacy.WithSanitizer(privacy.Sanitizer{Drop: map[string][]string{"*": {"internalNotes"}}}),
		privacy.WithNow(func() time.Time { return t0 }))
	if err != nil {
		tb.Fatal(err)
	}
	return svc, idp, st
}

// countWriter counts bytes and discards them.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type exportRun struct {
	peak    uint64
	elapsed time.Duration
	bytes   int64
}

func runStreamed(tb testing.TB, svc *privacy.Service) exportRun {
	var w countWriter
	var err error
	peak, d := heapPeak(func() { err = svc.Export(context.Background(), testUser, &w) })
	if err != nil {
		tb.Fatal(err)
	}
	return exportRun{peak, d, w.n}
}

func runNaive(tb testing.TB, idp steward.IdentityProvider, st privacy.DataStore) exportRun {
	var w countWriter
	var err error
	peak, d := heapPeak(func() { _, err = naiveExport(context.Background(), idp, st, testUser, &w) })
	if err != nil {
		tb.Fatal(err)
	}
	return exportRun{peak, d, w.n}
}

// BenchmarkExportVsNaive exports one user with a million records, streamed
// by Service.Export and by loading everything and marshalling it, in the
// same run, and reports peak heap growth and records per second of both
// and their ratios.
//
//	go test -run '^$' -bench ExportVsNaive -benchtime 1x ./privacy/
func BenchmarkExportVsNaive(b *testing.B) {
	const n = 1_000_000
	svc, idp, st := exportWorld(b, n)
	var streamed, naive exportRun
	for b.Loop() {
		s := runStreamed(b, svc)
		nv := runNaive(b, idp, st)
		streamed.peak = max(streamed.peak, s.peak)
		naive.peak = max(naive.peak, nv.peak)
		streamed.elapsed += s.elapsed
		naive.elapsed += nv.elapsed
	}
	const mb = 1 << 20
	iters := float64(b.N)
	b.ReportMetric(float64(streamed.peak)/mb, "streamed-peak-MB")
	b.ReportMetric(float64(naive.peak)/mb, "naive-peak-MB")
	b.ReportMetric(float64(naive.peak)/float64(max(streamed.peak, 1)), "peak-ratio")
	b.ReportMetric(n*iters/streamed.elapsed.Seconds(), "streamed-records/s")
	b.ReportMetric(n*iters/naive.elapsed.Seconds(), "naive-records/s")
	b.ReportMetric(naive.elapsed.Seconds()/streamed.elapsed.Seconds(), "speed-ratio")
}

// TestExportMemoryIsFlat checks, without timing anything, that the
// streamed export's peak heap does not grow with the number of records
// while the naive one's does.
func TestExportMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB for the naive baseline")
	}
	small, _, _ := exportWorld(t, 10_000)
	bigSvc, idp, st := exportWorld(t, 100_000)
	s10k := runStreamed(t, small)
	s100k := runStreamed(t, bigSvc)
	n100k := runNaive(t, idp, st)
	t.Logf("peak heap growth: streamed 10k %d KB, streamed 100k %d KB, naive 100k %d KB; %d bytes written",
		s10k.peak>>10, s100k.peak>>10, n100k.peak>>10, s100k.bytes)
	const slack = 8 << 20 // the GC's pacing, not the records
	if s100k.peak > 2*s10k.peak+slack {
		t.Errorf("streamed peak grew from %d KB to %d KB with 10x the records", s10k.peak>>10, s100k.peak>>10)
	}
	if n100k.peak < 4*s100k.peak {
		t.Errorf("the naive baseline peaked at %d KB, not well above streaming's %d KB: the measurement is broken",
			n100k.peak>>10, s100k.peak>>10)
	}
}

// TestLargeExportIsValid decodes a 10,000-record export in full.
func TestLargeExportIsValid(t *testing.T) {
	const n = 10_000
	svc, _, _ := exportWorld(t, n)
	var buf bytes.Buffer
	if err := svc.Export(context.Background(), testUser, &buf); err != nil {
		t.Fatal(err)
	}
	doc := decodeDoc(t, buf.Bytes())
	got := 0
	for _, g := range doc.Data["app"] {
		got += len(g.Records)
		for _, r := range g.Records {
			if _, ok := r["internalNotes"]; ok {
				t.Fatalf("a sanitized field was exported: %v", r)
			}
		}
	}
	if got != n || len(doc.Data["app"]) != len(genCategories) || !doc.Complete {
		t.Errorf("decoded %d records in %d groups (complete %v); want %d in %d", got, len(doc.Data["app"]), doc.Complete, n, len(genCategories))
	}
}
