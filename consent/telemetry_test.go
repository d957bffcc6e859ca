package consent_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
)

func TestSyncMetricsSpansAndLog(t *testing.T) {
	// The provider is down for both users: the syncs Update tries fail,
	// and both wait in the outbox.
	idp := &downIDP{MemoryIdentity: steward.NewMemoryIdentity(), down: map[string]bool{"user_alice": true, "user_bob": true}}
	for _, u := range []string{"user_alice", "user_bob"} {
		idp.Put(steward.User{ID: u, EmailAddresses: []steward.EmailAddress{{Address: u + "@example.com"}}})
	}
	store := &consent.MemoryStore{}
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewInMemoryExporter()
	var logs bytes.Buffer
	m, err := consent.NewManager(store, idp, consent.WithRetry(time.Microsecond, time.Microsecond, 2),
		consent.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		consent.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))),
		consent.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	collect := func() map[string]map[string]int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, mt := range sm.Metrics {
				out[mt.Name] = map[string]int64{}
				switch d := mt.Data.(type) {
				case metricdata.Sum[int64]:
					for _, p := range d.DataPoints {
						out[mt.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
					}
				case metricdata.Gauge[int64]:
					for _, p := range d.DataPoints {
						out[mt.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
					}
				}
			}
		}
		return out
	}
	for _, u := range []string{"user_alice", "user_bob"} {
		if _, err := m.Update(ctx, u, map[consent.Purpose]bool{consent.Marketing: true}, consent.Meta{Source: "banner"}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]map[string]int64{"steward.consent.outbox.depth": {"": 2}}, collect()); diff != "" {
		t.Errorf("metrics before the sync (-want +got):\n%s", diff)
	}
	// The provider is back for alice, not for bob.
	idp.mu.Lock()
	delete(idp.down, "user_alice")
	idp.mu.Unlock()
	time.Sleep(time.Millisecond) // their retries come due
	if n, err := m.SyncPending(ctx); n != 1 || err == nil {
		t.Fatalf("SyncPending: %d, %v; want alice synced and bob failed", n, err)
	}
	want := map[string]map[string]int64{
		"steward.consent.outbox.depth": {"": 1}, // bob waits for a retry
		"steward.consent.syncs":        {"steward.consent.outcome=synced": 1, "steward.consent.outcome=failed": 1},
	}
	if diff := cmp.Diff(want, collect()); diff != "" {
		t.Errorf("metrics after the sync (-want +got):\n%s", diff)
	}
	type span struct {
		Name, Attrs string
		Error       bool
	}
	var got []span
	for _, s := range spans.GetSpans() {
		set := attribute.NewSet(s.Attributes...)
		got = append(got, span{s.Name, set.Encoded(attribute.DefaultEncoder()), s.Status.Code == codes.Error})
	}
	if diff := cmp.Diff([]span{{"steward.consent.sync", "steward.consent.failed=1,steward.consent.synced=1", true}}, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
	if l := logs.String(); !strings.Contains(l, `"msg":"consent: synced to the identity provider","synced":1,"failed":1`) ||
		strings.Contains(l, "user_") || strings.Contains(l, "@example.com") {
		t.Errorf("log lines:\n%s", l)
	}
}

// downIDP fails UpdateMetadata for the users in down.
type downIDP struct {
	*steward.MemoryIdentity
	mu   sync.Mutex
	down map[string]bool
}

func (d *downIDP) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	d.mu.Lock()
	down := d.down[id]
	d.mu.Unlock()
	if down {
		return errors.New("provider unavailable")
	}
	return d.MemoryIdentity.UpdateMetadata(ctx, id, p)
}
