package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/audit"
)

func TestSlogSinkWritesOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	sink := audit.NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	mem := audit.NewMemorySink()
	l := newLogger(t, mem, audit.WithSinks(sink))
	if err := l.Log(context.Background(), audit.Event{Type: audit.ConsentChange, Subject: "user_1", Actor: "user_1",
		Details: map[string]any{"purpose": "marketing", "granted": true}}); err != nil {
		t.Fatal(err)
	}
	logN(t, l, 1)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	e := mem.Snapshot()[0]
	want := map[string]any{
		"time": "2025-03-01T11:00:00.123456Z", "level": "INFO", "msg": "audit event",
		"id": e.ID, "type": "consent_change", "subject": e.Subject, "actor": e.Actor,
		"details":  map[string]any{"purpose": "marketing", "granted": true},
		"sequence": 1.0, "keyId": "k1", "prevHash": "", "hash": e.Hash,
	}
	for k, v := range want {
		if got := rec[k]; !equalJSON(got, v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestSlogSinkHonoursContextAndLevel(t *testing.T) {
	var buf bytes.Buffer
	events := chainOf(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sink := audit.NewSlogSink(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := sink.Write(ctx, events); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context: %v", err)
	}
	quiet := audit.NewSlogSink(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := quiet.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q", buf.String())
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
