package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/stewardlabs/steward/audit"
)

func fixedClock() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

// A Logger pseudonymises and chains events; Verify checks the chain.
func ExampleNewLogger() {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	key := []byte("an example key of 32 bytes......")
	log, err := audit.NewLogger(sink, audit.WithKey("k1", key), audit.WithNow(fixedClock))
	if err != nil {
		panic(err)
	}
	err = log.Log(ctx, audit.Event{Type: audit.DataExport, Subject: "user_123", Actor: "user_admin",
		Details: map[string]any{"stores": 3}})
	if err != nil {
		panic(err)
	}
	_ = log.Log(ctx, audit.Event{Type: audit.RetentionPurge, Subject: "user_123", Actor: "system:retention"})

	for _, e := range sink.Snapshot() {
		fmt.Println(e.Sequence, e.Type, e.Subject[:30]+"…", e.Actor[:min(len(e.Actor), 30)], e.Time.Format(time.RFC3339))
	}
	fmt.Println("verify:", audit.Verify(sink.Events(ctx, 0)))
	// Output:
	// 1 data_export hmac-sha256:k1:df42e4967dce4fc… hmac-sha256:k1:feb1a11991eaade 2025-03-01T12:00:00Z
	// 2 retention_purge hmac-sha256:k1:df42e4967dce4fc… system:retention 2025-03-01T12:00:00Z
	// verify: <nil>
}

// Verify names the first sequence where a stored chain was changed.
func ExampleVerify() {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	logger, err := audit.NewLogger(sink, audit.WithKey("k1", []byte("an example key of 32 bytes......")))
	if err != nil {
		panic(err)
	}
	for range 3 {
		_ = logger.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_123"})
	}
	events := sink.Snapshot()
	events[1].Details = map[string]any{"note": "edited"}

	err = audit.Verify(func(yield func(audit.Event, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	})
	var ce *audit.ChainError
	fmt.Println(errors.Is(err, audit.ErrTampered), errors.As(err, &ce), ce.Sequence)
	fmt.Println(err)
	// Output:
	// true true 2
	// audit: chain broken at sequence 2: hash does not match the event's contents
}

// A controller holding the keys finds a person's events after a key
// rotation without the raw ID ever being stored.
func ExamplePseudonymizer_Lookup() {
	ctx := context.Background()
	sink := audit.NewMemorySink()
	oldKey := audit.Key{ID: "k1", Secret: []byte("the first key of 32 bytes.......")}
	newKey := audit.Key{ID: "k2", Secret: []byte("the second key of 32 bytes......")}

	before, _ := audit.NewLogger(sink, audit.WithKey(oldKey.ID, oldKey.Secret))
	_ = before.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_123"})
	_ = before.Log(ctx, audit.Event{Type: audit.DataAccess, Subject: "user_456"})
	after, _ := audit.NewLogger(sink, audit.WithKey(newKey.ID, newKey.Secret)) // continues the chain
	_ = after.Log(ctx, audit.Event{Type: audit.DataExport, Subject: "user_123"})

	p, _ := audit.NewPseudonymizer(newKey, oldKey)
	for e, err := range p.Lookup(sink.Events(ctx, 0), "user_123") {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Sequence, e.Type, e.KeyID)
	}
	fmt.Println("verify:", audit.Verify(sink.Events(ctx, 0)))
	// Output:
	// 1 data_access k1
	// 3 data_export k2
	// verify: <nil>
}

// A SlogSink writes one log line per event, already pseudonymised. Here
// the random ID and the hashes are left out of the output.
func ExampleNewSlogSink() {
	handler := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case "id", "prevHash", "hash":
				return slog.Attr{}
			case "subject":
				return slog.String(a.Key, a.Value.String()[:24]+"…")
			}
			return a
		},
	})
	log, err := audit.NewLogger(audit.NewSlogSink(slog.New(handler)),
		audit.WithKey("k1", []byte("an example key of 32 bytes......")), audit.WithNow(fixedClock))
	if err != nil {
		panic(err)
	}
	_ = log.Log(context.Background(), audit.Event{Type: audit.ConsentChange, Subject: "user_123",
		Actor: "system:consent-sync", Details: map[string]any{"purpose": "marketing", "granted": false}})
	// Output:
	// time=2025-03-01T12:00:00.000Z level=INFO msg="audit event" type=consent_change subject=hmac-sha256:k1:df42e4967… actor=system:consent-sync details="map[granted:false purpose:marketing]" sequence=1 keyId=k1
}
