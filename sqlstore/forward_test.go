package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/audit/audittest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestAuditCursorsConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		t.Parallel()
		audittest.RunCursorConformance(t, func(t *testing.T) audittest.CursorHarness {
			return audittest.CursorHarness{Store: migrated(t, d).AuditCursors(), TTL: 300 * time.Millisecond, Wait: time.Sleep}
		})
	})
}

// collector is an HTTP audit collector that can be down, storing each
// event by sequence (a resent one replaces the first copy).
type collector struct {
	down atomic.Bool
	mu   sync.Mutex
	seqs map[uint64]audit.Event
	got  []uint64 // sequences in arrival order, resends included
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var body struct{ Events []audit.Event }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range body.Events {
		c.seqs[e.Sequence] = e
		c.got = append(c.got, e.Sequence)
	}
}

// TestForwarderFeedsACollectorFromTheStoredChain runs the Forwarder as an
// application would: events logged by two Loggers (two processes) into
// the SQL chain reach an HTTP collector; while the collector is down Log
// goes on and the lag shows; after it is back and the application
// restarted (a new Forwarder), the collector holds the whole chain.
func TestForwarderFeedsACollectorFromTheStoredChain(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		store, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		c := &collector{seqs: map[uint64]audit.Event{}}
		srv := httptest.NewServer(c)
		defer srv.Close()
		dst, err := audit.NewHTTPSink(srv.URL, &audit.HTTPOptions{MaxTries: 2, InitialInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		key := []byte("forward test key of 32 bytes....")
		var loggers []*audit.Logger
		for range 2 {
			l, err := audit.NewLogger(store.AuditSink(), audit.WithKey("k1", key))
			if err != nil {
				t.Fatal(err)
			}
			loggers = append(loggers, l)
		}
		logSome := func(n int) {
			t.Helper()
			for i := range n {
				if err := loggers[i%2].Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_1", Details: map[string]any{"i": i}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		f, err := audit.NewForwarder(store.AuditSink(), dst, store.AuditCursors(), "collector", audit.WithForwardBatch(4))
		if err != nil {
			t.Fatal(err)
		}
		logSome(6)
		if n, err := f.Forward(ctx); err != nil || n != 6 {
			t.Fatalf("Forward = %d, %v; want 6", n, err)
		}
		c.down.Store(true)
		logSome(5)
		if _, err := f.Forward(ctx); err == nil {
			t.Fatal("Forward while the collector is down succeeded")
		}
		if s := f.Stats(); !s.Failing || s.Lag != 5 {
			t.Errorf("Stats while down = %+v, want Failing and a lag of 5", s)
		}
		c.down.Store(false)
		restarted, err := audit.NewForwarder(store.AuditSink(), dst, store.AuditCursors(), "collector", audit.WithForwardBatch(4))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := restarted.Forward(ctx); err != nil || n != 5 {
			t.Fatalf("Forward after the restart = %d, %v; want the 5 missed events", n, err)
		}
		c.mu.Lock()
		got := append([]uint64(nil), c.got...)
		events := make([]audit.Event, 0, len(c.seqs))
		for seq := uint64(1); seq <= uint64(len(c.seqs)); seq++ {
			events = append(events, c.seqs[seq])
		}
		c.mu.Unlock()
		if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, got); diff != "" {
			t.Errorf("collector received (-want +got):\n%s", diff)
		}
		if err := audit.Verify(func(yield func(audit.Event, error) bool) {
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
		}); err != nil {
			t.Errorf("the collector's copy does not verify: %v", err)
		}
		if _, err := restarted.Forward(ctx); errors.Is(err, audit.ErrCursorHeld) {
			t.Error("a finished Forward left its claim held")
		}
	})
}
