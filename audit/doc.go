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
// # Keeping the key
//
// Pseudonyms are only as lasting as the key that makes them: the same
// user gets the same pseudonym only under the same key, and privacy's
// finished requests and ledger of erased users are found again only
// with it. So the key must survive restarts and be shared by every
// instance: keep it in a secret manager or an environment variable
// (ParseKey reads "<id>:<base64 secret>"), or in a file created once
// with LoadKeyFile, which makes a random key the first time and reads it
// ever after. Back it up apart from the database it protects, and never
// make a fresh random key at each start.
//
// To rotate, make a new key the active one (WithKey; the first line of a
// key file) and keep the old ones as retired keys, for the
// Pseudonymizer that finds earlier events and entries
// (NewPseudonymizer(active, retired...), privacy.WithPseudonymizer).
// Retire a key only when nothing made under it is kept any longer.
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
// # Several Loggers, several processes
//
// A real deployment runs several replicas of the application on one
// database, each with its own Logger, restarted at any moment. They share
// one chain when the Logger's first sink is an Appender: the SQL sink of
// package sqlstore (PostgreSQL and SQLite) assigns Sequence and PrevHash
// and computes Hash inside its append transaction, holding the chain's
// head only from reading it to the commit. No Log fails because another
// writer exists, Verify over the table passes, and group commit still
// batches each process's concurrent calls. MemorySink is an Appender too,
// for Loggers in one process: it is memory, so it serves one process.
//
// A Logger whose first sink is not an Appender links the chain itself:
// it continues the chain of that sink when it is a Reader (WithResume
// names another Reader), and it must then be the chain's only writer.
//
// An event whose ID the caller set (EventID makes one from a name) is
// stored by an Appender at most once: logging an outcome again after a
// crash, before the caller could note that it was logged, changes
// nothing.
//
// # Writing and failures
//
// Log is synchronous with the first sink, the record, and concurrent
// calls share writes (group commit): when Log returns nil, the event is
// in the first sink. The default is fail-closed: when the first sink does
// not accept a batch, every Log in it returns an error matching
// ErrNotRecorded, the events are not in the chain, and the caller's
// operation should fail. WithFailOpen instead holds the batch (bounded by
// WithQueueLimit) and retries it before the next write and on Flush; with
// an Appender the held events are linked only when they are stored, so
// the chain has no gap. Events that overflow a queue are counted in
// Stats().Dropped and reported to WithOnDrop: no event Log accepted is
// lost without being counted.
//
// The other sinks (WithSinks) receive the chain's events in order, from a
// bounded queue, on a goroutine of their own: a copy that is slow or down
// never delays Log, and Flush waits for the copies. That queue is in
// memory. To feed a remote collector durably, so that it receives every
// event even after the collector was down across a restart, run a
// Forwarder, which reads the stored chain and keeps its position in a
// CursorStore.
//
// An HTTP collector may have stored a batch whose request timed out. The
// HTTP sink sends the same Idempotency-Key on every retry of a batch so
// the collector can drop the copy.
//
// # Sinks
//
// MemorySink keeps events in memory (and is a Reader). SlogSink writes one
// log/slog record per event. HTTPSink POSTs JSON batches with a timeout
// and retries with exponential backoff. The SQL sink lives in package
// sqlstore. Package audittest holds the suite every Sink and Reader must
// pass.
//
// # Metrics and traces
//
// WithMeterProvider (Logger) and WithForwardMeterProvider and
// WithForwardTracerProvider (Forwarder) record OpenTelemetry metrics and
// spans; without them nothing is recorded. The Logger's are observed
// from its counters (Stats) when the reader collects, so Log costs the
// same with them as without (BenchmarkLoggerMetrics). Attributes never
// hold a subject, an actor or a detail of an event.
//
//	steward.audit.events             observable counter  {event}  steward.audit.outcome (recorded, refused, dropped)
//	steward.audit.events.pending     gauge               {event}  (Stats().Pending)
//	steward.audit.forwarder.events   counter             {event}  steward.audit.destination
//	steward.audit.forwarder.lag      gauge               {event}  steward.audit.destination
//	    head minus cursor, as the Forwarder last saw them
//
// Spans: steward.audit.forward, one per Forward pass
// (steward.audit.destination, steward.audit.forwarded; an error status
// when the pass failed, not when another Forwarder held the cursor).
//
// # Errors
//
//   - ErrNotRecorded: Log could not put the event in the first sink
//     (wraps the sink's error, or ctx's error).
//   - ErrInvalidEvent: the event cannot be logged or stored as given
//     (bad Type, an ID that is not a lower-case UUID, Details that do not
//     encode as JSON, sequence 0); the message names the field.
//   - ErrDuplicateSequence: a sink already stores one of a batch's
//     sequence numbers, or the batch repeats one.
//   - ErrClosed: Log after Close.
//   - ErrTampered, matched by *ChainError{Sequence, Reason}: Verify found a
//     broken chain.
//   - ErrInvalidKey: ParseKey or LoadKeyFile could not read a key (the
//     message says where, never the secret).
//
// Errors never contain raw user IDs: only pseudonyms reach the sinks.
package audit
