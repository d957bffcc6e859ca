package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Appender is a Sink that links events to its own chain as it stores
// them, inside its storage transaction: it reads the chain's head, gives
// the events the next sequence numbers and hashes, and stores them, all
// while holding the head. Any number of Loggers, in any number of
// processes, can then append to one chain without knowing of each other.
// The SQL sink of package sqlstore is one, and so is MemorySink (within
// one process).
//
// A Logger whose first sink is an Appender leaves linking to it.
type Appender interface {
	Sink
	// Append links the batch after the stored chain's head with
	// Batch.Link and stores the linked events (Batch.Events), all or
	// nothing, holding the head from reading it to storing them. When
	// Append returns an error, nothing of the batch may be stored.
	//
	// Events whose ID is in Batch.Keys and already stored must be passed
	// to Batch.Stored before Link, and are not stored again: a caller
	// that chose an event's ID (an idempotency key) logs it at most once.
	Append(ctx context.Context, b *Batch) error
}

// Batch is a run of events, complete but for Sequence, PrevHash and
// Hash, that an Appender links to its chain. The Logger builds them; a
// sink's own tests can make one with NewBatch.
type Batch struct {
	items []batchItem
	keys  []string
	out   []Event
	outAt []int // index in items of each out event
	buf   []byte
	sum   []byte
}

type batchItem struct {
	ev        Event
	head      []byte // canonical encoding up to the time
	detailsAt int    // where the canonical Details begin in head
	keyed     bool   // the caller chose ev.ID
	stored    bool   // already in the chain (Stored)
}

// NewBatch returns a batch of events (Type, Subject, Actor, Details,
// Time, KeyID and ID as they will be stored); Sequence, PrevHash and Hash
// are ignored and set by Link. keyed IDs are reported by Keys.
func NewBatch(events []Event, keyed ...string) (*Batch, error) {
	b := &Batch{}
	for _, e := range events {
		head := appendCanonicalPrefix(nil, &e)
		at := len(head)
		head, err := appendDetails(head, e.Details)
		if err != nil {
			return nil, fmt.Errorf("%w: Details: %w", ErrInvalidEvent, err)
		}
		k := false
		for _, id := range keyed {
			k = k || id == e.ID
		}
		b.add(e, head, at, k)
	}
	return b, nil
}

func (b *Batch) reset() {
	clear(b.items)
	b.items = b.items[:0]
	b.keys = b.keys[:0]
	clear(b.out)
	b.out = b.out[:0]
	b.outAt = b.outAt[:0]
}

func (b *Batch) add(e Event, head []byte, detailsAt int, keyed bool) {
	b.items = append(b.items, batchItem{ev: e, head: head, detailsAt: detailsAt, keyed: keyed})
	if keyed {
		b.keys = append(b.keys, e.ID)
	}
}

// Len returns the number of events in the batch, stored or not.
func (b *Batch) Len() int { return len(b.items) }

// Keys returns the IDs chosen by the events' callers, which the Appender
// must look up before Link. Usually empty: then there is nothing to look
// up.
func (b *Batch) Keys() []string { return b.keys }

// Stored marks the event with this ID as already in the chain, so Link
// skips it. IDs not in Keys are ignored.
func (b *Batch) Stored(id string) {
	for i := range b.items {
		if b.items[i].keyed && b.items[i].ev.ID == id {
			b.items[i].stored = true
		}
	}
}

// Link numbers the batch's events (but those marked Stored) seq+1,
// seq+2, ... after the chain's head, whose sequence is seq and hash is
// hash (0 and "" for an empty chain), sets their PrevHash and computes
// their Hash. Calling it again relinks them, as after a retry.
func (b *Batch) Link(seq uint64, hash string) {
	h := sha256.New()
	var hx [2 * sha256.Size]byte
	b.out = b.out[:0]
	b.outAt = b.outAt[:0]
	for i := range b.items {
		it := &b.items[i]
		if it.stored {
			continue
		}
		e := it.ev
		seq++
		e.Sequence, e.PrevHash = seq, hash
		b.buf = appendCanonicalTail(b.buf[:0], &e)
		h.Reset()
		h.Write(it.head)
		h.Write(b.buf)
		b.sum = h.Sum(b.sum[:0])
		hex.Encode(hx[:], b.sum)
		e.Hash = string(hx[:])
		hash = e.Hash
		b.out = append(b.out, e)
		b.outAt = append(b.outAt, i)
	}
}

// CanonicalDetails returns CanonicalDetails of the Details of Events()[i],
// already encoded for hashing: what a sink that keeps the canonical text
// stores, without encoding it again. The bytes are the batch's own.
func (b *Batch) CanonicalDetails(i int) []byte {
	it := &b.items[b.outAt[i]]
	return it.head[it.detailsAt:]
}

// Events returns the events Link linked, in chain order: what the
// Appender stores. The slice is the batch's own; copy what is kept.
func (b *Batch) Events() []Event { return b.out }

// String describes the batch for error messages: its size and, once
// linked, its sequence range.
func (b *Batch) String() string {
	if len(b.out) == 0 {
		return strconv.Itoa(len(b.items)) + " events"
	}
	return fmt.Sprintf("sequences %d..%d", b.out[0].Sequence, b.out[len(b.out)-1].Sequence)
}
