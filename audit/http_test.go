package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stewardlabs/steward/audit"
)

type fault int

const (
	accept    fault = iota
	hangUp          // close the connection without an answer
	slow            // answer (and store) after the client's timeout
	fail500         // answer 500
	reject400       // answer 400
	busy429         // answer 429 with Retry-After: 0
)

// collector is an audit collector that drops batches it has seen, by
// Idempotency-Key, and misbehaves as scripted, one fault per request.
type collector struct {
	t      *testing.T
	mu     sync.Mutex
	script []fault
	calls  int
	seen   map[string]bool
	events []audit.Event
	bodies [][]byte
	header http.Header
}

func newCollector(t *testing.T, script ...fault) (*collector, *httptest.Server) {
	c := &collector{t: t, script: script, seen: map[string]bool{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	f := accept
	if c.calls < len(c.script) {
		f = c.script[c.calls]
	}
	c.calls++
	c.bodies = append(c.bodies, body)
	c.header = r.Header.Clone()
	c.mu.Unlock()
	switch f {
	case hangUp:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case slow:
		time.Sleep(300 * time.Millisecond)
	case fail500:
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case reject400:
		http.Error(w, "bad", http.StatusBadRequest)
		return
	case busy429:
		w.Header().Set("Retry-After", "0")
		http.Error(w, "busy", http.StatusTooManyRequests)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		c.t.Errorf("request %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	key := r.Header.Get(audit.IdempotencyKeyHeader)
	var batch struct{ Events []audit.Event }
	if err := json.Unmarshal(body, &batch); err != nil || key == "" {
		c.t.Errorf("bad batch (key %q): %v", key, err)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	if !c.seen[key] {
		c.seen[key] = true
		c.events = append(c.events, batch.Events...)
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *collector) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func (c *collector) stored() []audit.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]audit.Event(nil), c.events...)
}

func fastRetry() *audit.HTTPOptions {
	return &audit.HTTPOptions{Timeout: 100 * time.Millisecond, InitialInterval: 5 * time.Millisecond,
		MaxInterval: 20 * time.Millisecond, MaxElapsed: 5 * time.Second}
}

func TestHTTPSinkDeliversOnceInOrderThroughFaults(t *testing.T) {
	ctx := context.Background()
	c, srv := newCollector(t,
		hangUp, slow, fail500, accept, // batch 1: stored by the slow attempt and again by the last
		fail500, busy429, accept, // batch 2
	)
	sink, err := audit.NewHTTPSink(srv.URL+"/audit", fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	mem := audit.NewMemorySink()
	l := newLogger(t, mem, audit.WithSinks(sink))
	logN(t, l, 1)
	logN(t, l, 1)
	logN(t, l, 3)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond) // let the slow attempt finish
	got := c.stored()
	if diff := cmp.Diff(sequences(mem.Snapshot()), sequences(got)); diff != "" {
		t.Fatalf("collector sequences (-want +got):\n%s", diff)
	}
	if err := audit.Verify(seqOf(got)); err != nil {
		t.Errorf("the collector's copy must verify: %v", err)
	}
	if c.callCount() < 7 {
		t.Errorf("collector saw %d requests, want at least 7", c.calls)
	}
}

func TestHTTPSinkErrors(t *testing.T) {
	ctx := context.Background()
	events := chainOf(t, 2)
	t.Run("a 4xx answer is not retried", func(t *testing.T) {
		c, srv := newCollector(t, reject400, accept)
		sink, _ := audit.NewHTTPSink(srv.URL, fastRetry())
		err := sink.Write(ctx, events)
		if err == nil || !strings.Contains(err.Error(), "collector answered 400") {
			t.Fatalf("err = %v", err)
		}
		if c.callCount() != 1 {
			t.Errorf("calls = %d, want 1", c.calls)
		}
	})
	t.Run("retries stop at MaxTries", func(t *testing.T) {
		c, srv := newCollector(t, fail500, fail500, fail500, accept)
		o := fastRetry()
		o.MaxTries = 2
		sink, _ := audit.NewHTTPSink(srv.URL, o)
		if err := sink.Write(ctx, events); err == nil {
			t.Fatal("want an error")
		}
		if c.callCount() != 2 {
			t.Errorf("calls = %d, want 2", c.calls)
		}
	})
	t.Run("a canceled context stops the retries", func(t *testing.T) {
		_, srv := newCollector(t, fail500, fail500, fail500, fail500, fail500, fail500, fail500, fail500)
		o := fastRetry()
		o.InitialInterval, o.MaxInterval = time.Second, time.Second
		sink, _ := audit.NewHTTPSink(srv.URL, o)
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := sink.Write(ctx, events); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Write took %v after the context ended", d)
		}
	})
	t.Run("errors do not show the endpoint's credentials or query", func(t *testing.T) {
		o := fastRetry()
		o.MaxTries = 1
		sink, err := audit.NewHTTPSink("http://user:pw-secret@127.0.0.1:1/x?token=tok-secret", o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err = sink.Write(ctx, events)
		if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "127.0.0.1:1/x") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the endpoint must be an http URL", func(t *testing.T) {
		for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
			if _, err := audit.NewHTTPSink(u, nil); err == nil {
				t.Errorf("NewHTTPSink(%q) succeeded", u)
			}
		}
	})
	t.Run("headers are sent and the key is stable", func(t *testing.T) {
		c, srv := newCollector(t, fail500, accept)
		o := fastRetry()
		o.Header = http.Header{"Authorization": {"Bearer t"}}
		sink, _ := audit.NewHTTPSink(srv.URL, o)
		if err := sink.Write(ctx, events); err != nil {
			t.Fatal(err)
		}
		if got := c.header.Get("Authorization"); got != "Bearer t" {
			t.Errorf("Authorization = %q", got)
		}
		if got, want := c.header.Get(audit.IdempotencyKeyHeader), "1-"+events[1].Hash; got != want {
			t.Errorf("Idempotency-Key = %q, want %q", got, want)
		}
		if !bytes.Equal(c.bodies[0], c.bodies[1]) {
			t.Error("a retry must send the same body")
		}
	})
}
