package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"time"
)

// Type names what happened. The values are part of the wire format.
type Type string

// Event types: reading, exporting and deleting a user's data, changing
// consent, a denied access, a retention purge, a role change.
const (
	DataAccess     Type = "data_access"
	DataExport     Type = "data_export"
	DataDeletion   Type = "data_deletion"
	ConsentChange  Type = "consent_change"
	AccessDenied   Type = "access_denied"
	RetentionPurge Type = "retention_purge"
	RoleChange     Type = "role_change"
)

// Event is one audit record.
//
// Callers fill Type, Subject, Actor and Details and pass the event to
// Logger.Log, which replaces Subject and Actor with keyed pseudonyms and
// sets ID, Time, Sequence, KeyID, PrevHash and Hash. Events in a Sink
// never hold a raw user ID.
type Event struct {
	ID       string         `json:"id"`
	Type     Type           `json:"type"`
	Subject  string         `json:"subject"`
	Actor    string         `json:"actor,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	Time     time.Time      `json:"time"`
	Sequence uint64         `json:"sequence"`
	KeyID    string         `json:"keyId,omitempty"`
	PrevHash string         `json:"prevHash"`
	Hash     string         `json:"hash"`
}

// LogValue implements slog.LogValuer: an event logs its type, ID,
// sequence and key, never its subject or actor (the raw user IDs before
// Log pseudonymises them) or its details.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("type", string(e.Type)),
		slog.String("id", e.ID),
		slog.Uint64("sequence", e.Sequence),
		slog.String("keyId", e.KeyID),
	)
}

// Sink is the AuditSink port: where chained, pseudonymised events are
// stored or sent.
//
// Write stores a batch all or nothing: when it returns an error, none of
// the events may be visible to a Reader. A sink that keeps events must
// reject a batch holding a sequence number it already stores, or one
// twice, with an error matching ErrDuplicateSequence. Write must not keep
// the slice after it returns, must return promptly with an error when ctx
// is canceled, and must store Time to at least the microsecond and Details
// so that CanonicalDetails gives the same bytes when read back. Sequence
// numbers start at 1; a sink may refuse those above math.MaxInt64 (SQL
// BIGINT) with ErrInvalidEvent.
// Implementations must be safe for concurrent use and pass the suite in
// package audittest.
type Sink interface {
	Write(ctx context.Context, events []Event) error
}

// Reader is implemented by sinks that can stream their events back, in
// order: the memory sink and the SQL sink. A Logger resumes its chain from
// a Reader, and Verify and Pseudonymizer.Lookup consume Events.
type Reader interface {
	// Events yields the stored events with Sequence >= from in increasing
	// sequence order. An error is yielded once, with the zero Event, and
	// ends the sequence; a canceled ctx ends it with ctx's error.
	Events(ctx context.Context, from uint64) iter.Seq2[Event, error]
	// Last returns the stored event with the highest sequence, or the zero
	// Event (Sequence 0) and nil when nothing is stored.
	Last(ctx context.Context) (Event, error)
}

// MarshalJSON encodes e in its wire form: the canonical encoding described
// in the package documentation with "hash" added as the last member. All
// members are always present, Details is canonical JSON and Time has
// microsecond precision, so a collector that stores the bytes as received
// can verify the chain.
func (e Event) MarshalJSON() ([]byte, error) {
	b, err := appendCanonical(make([]byte, 0, 512), &e)
	if err != nil {
		return nil, fmt.Errorf("audit: event %d details: %w", e.Sequence, err)
	}
	b = b[:len(b)-1]
	b = append(b, `,"hash":`...)
	b = appendString(b, e.Hash)
	return append(b, '}'), nil
}

// UnmarshalJSON decodes the wire form. Numbers in Details become
// json.Number, so integers keep every digit and the event verifies as it
// did when it was logged. Members may be missing; unknown members are
// ignored.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		ID       string          `json:"id"`
		Type     Type            `json:"type"`
		Subject  string          `json:"subject"`
		Actor    string          `json:"actor"`
		Details  json.RawMessage `json:"details"`
		Time     time.Time       `json:"time"`
		Sequence uint64          `json:"sequence"`
		KeyID    string          `json:"keyId"`
		PrevHash string          `json:"prevHash"`
		Hash     string          `json:"hash"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("audit: event: %w", err)
	}
	details, err := ParseDetails(w.Details)
	if err != nil {
		return err
	}
	*e = Event{
		ID: w.ID, Type: w.Type, Subject: w.Subject, Actor: w.Actor, Details: details,
		Time: w.Time, Sequence: w.Sequence, KeyID: w.KeyID, PrevHash: w.PrevHash, Hash: w.Hash,
	}
	return nil
}

//go:generate mockgen -destination=mocks/sink.go -package=mocks -typed . Sink,Reader
