// Package audit is Steward's tamper-evident, pseudonymous audit trail.
//
// Every data access, export, deletion, consent change, denied access,
// retention purge and role change becomes an Event. A Logger turns the
// caller's event into a record that holds no raw user ID and cannot be
// edited, inserted, removed or reordered without Verify noticing, and
// writes it to one or more sinks (the AuditSink port, Sink):
//
//	sink := audit.NewMemorySink()
//	log, err := audit.NewLogger(sink, audit.WithKey("k1", key))
//	err = log.Log(ctx, audit.Event{Type: audit.DataExport, Subject: userID, Actor: adminID,
//		Details: map[string]any{"stores": 3}})
//	err = audit.Verify(sink.Events(ctx, 0))
//
// # Pseudonyms
//
// Subject and Actor are replaced by keyed HMAC-SHA256 pseudonyms that name
// their algorithm and key: "hmac-sha256:k1:9f86d0…" (64 hex digits). A
// plain hash of a user ID can be reversed by hashing every candidate ID;
// a keyed one cannot without the key. An empty Actor stays empty, and an
// Actor starting with "system:" names a process and is kept as given.
//
// Keys rotate: give the Logger the new key with WithKey and keep the old
// ones. Events keep the KeyID they were made with, so the chain still
// verifies (hashes are not keyed), and NewPseudonymizer(newKey, oldKeys...)
// finds a person's events under every key with Pseudonyms or Lookup to
// answer an access request. The raw ID is never stored.
//
// # Chain
//
// The Logger numbers events 1, 2, 3, ... (Sequence), stamps Time (UTC,
// truncated to the microsecond so every sink stores it exactly), and sets
// PrevHash to the Hash of the event before ("" for the first). Hash is the
// lower-case hex SHA-256 of the event's canonical encoding: one JSON
// object, no white space, with exactly these members in this order
//
//	{"id":…,"type":…,"subject":…,"actor":…,"details":…,"time":…,"sequence":…,"keyId":…,"prevHash":…}
//
// where strings are encoded as described at CanonicalDetails, "details" is
// CanonicalDetails(Details) ("{}" when empty), "time" is Time in
// TimeFormat ("2006-01-02T15:04:05.000000Z") and "sequence" is a decimal
// integer. Event.MarshalJSON writes the same object with "hash" appended;
// that is the wire form of the HTTP sink. Because Details are hashed in
// their canonical form, an event read back from a database column or
// decoded from JSON (numbers as json.Number, see Event.UnmarshalJSON and
// ParseDetails) verifies exactly as logged.
//
// Verify walks a stream from sequence 1 and reports the first position
// where it breaks as a *ChainError. The hash is not keyed: the chain shows
// tampering by anyone who cannot rewrite every later event, and the last
// hash kept in a second, independent sink (an HTTP collector) anchors it
// against that too.
//
// A Logger continues the chain of its first sink when that sink is a
// Reader (memory, SQL), so a restart does not break it; WithResume names
// another Reader. One chain has one writing Logger at a time.
//
// # Writing and failures
//
// Log is synchronous and concurrent calls share writes (group commit):
// when Log returns nil, the event is in at least one sink. The default is
// fail-closed: when no sink accepts a batch, every Log in it returns an
// error matching ErrNotRecorded, the events leave the chain, and the
// caller's operation should fail. WithFailOpen instead queues the batch
// (bounded by WithQueueLimit) and retries it before the sink's next write
// and on Flush; events that overflow the queue are counted in
// Stats().Dropped and reported to WithOnDrop. With several sinks, a batch
// one sink refuses while another accepts is queued for the refusing sink
// in either mode, so each sink receives the chain in order.
//
// An HTTP collector may have stored a batch whose request timed out. The
// HTTP sink sends the same Idempotency-Key on every retry of a batch so
// the collector can drop the copy; but when fail-closed takes such a batch
// out of the chain, its sequence numbers are used again by later events,
// and the collector sees two events with one sequence (Verify on its copy
// reports it).
//
// # Sinks
//
// MemorySink keeps events in memory (and is a Reader). SlogSink writes one
// log/slog record per event. HTTPSink POSTs JSON batches with a timeout
// and retries with exponential backoff. The SQL sink lives in package
// sqlstore. Package audittest holds the suite every Sink and Reader must
// pass.
//
// # Errors
//
//   - ErrNotRecorded: Log could not put the event in any sink (wraps the
//     sinks' errors, or ctx's error).
//   - ErrInvalidEvent: the event cannot be logged or stored as given
//     (bad Type, Details that do not encode as JSON, sequence 0); the
//     message names the field.
//   - ErrDuplicateSequence: a sink already stores one of a batch's
//     sequence numbers, or the batch repeats one.
//   - ErrClosed: Log after Close.
//   - ErrTampered, matched by *ChainError{Sequence, Reason}: Verify found a
//     broken chain.
//
// Errors never contain raw user IDs: only pseudonyms reach the sinks.
package audit
