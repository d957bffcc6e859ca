package audit

import (
	"context"
	"time"
)

// Type names what happened. The values are part of the wire format.
type Type string

// Event types. The first four come from the data-handling guide.
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

// Sink is the AuditSink port: where chained, pseudonymised events are
// stored or sent.
//
// Write stores a batch all or nothing: when it returns an error, none of
// the events may be visible to a Reader. Implementations must be safe for
// concurrent use and pass the suite in package audittest.
type Sink interface {
	Write(ctx context.Context, events []Event) error
}
