package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stewardlabs/steward/audit"
)

// TestNoRawUserIDReachesAnySink searches every byte each sink produced for
// the raw user IDs.
func TestNoRawUserIDReachesAnySink(t *testing.T) {
	const subject, actor = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "user_2admin9QxPzM4kLw8s1TbVu0aD"
	ctx := context.Background()
	mem := audit.NewMemorySink()
	var logs bytes.Buffer
	slogSink := audit.NewSlogSink(slog.New(slog.NewJSONHandler(&logs, nil)))
	c, srv := newCollector(t, fail500)
	httpSink, err := audit.NewHTTPSink(srv.URL, fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	l := newLogger(t, mem, audit.WithSinks(slogSink, httpSink))
	for _, typ := range []audit.Type{audit.DataAccess, audit.DataExport, audit.DataDeletion, audit.ConsentChange,
		audit.AccessDenied, audit.RetentionPurge, audit.RoleChange} {
		if err := l.Log(ctx, audit.Event{Type: typ, Subject: subject, Actor: actor,
			Details: map[string]any{"stores": 3}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := json.Marshal(mem.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	bodies := bytes.Join(c.bodies, nil)
	c.mu.Unlock()
	p, _ := audit.NewPseudonymizer(audit.Key{ID: "k1", Secret: testKey})
	for name, out := range map[string][]byte{"memory sink": stored, "slog lines": logs.Bytes(), "HTTP bodies": bodies} {
		for _, raw := range []string{subject, actor, subject[5:], actor[5:]} {
			if bytes.Contains(out, []byte(raw)) {
				t.Errorf("%s contain the raw ID %q", name, raw)
			}
		}
		if !bytes.Contains(out, []byte(p.Pseudonym(subject))) || !bytes.Contains(out, []byte(p.Pseudonym(actor))) {
			t.Errorf("%s do not contain the pseudonyms", name)
		}
	}
}
