package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
)

// ErrTampered is matched (errors.Is) by every *ChainError.
var ErrTampered = errors.New("audit: chain tampered")

// ChainError reports where a chain first breaks.
//
// Sequence is the first position that does not hold the expected event:
// the edited event for an edit, the position of the inserted event for an
// insertion, the missing number for a deletion, the first displaced number
// for a reordering.
type ChainError struct {
	Sequence uint64
	Reason   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at sequence %d: %s", e.Sequence, e.Reason)
}

// Unwrap returns ErrTampered.
func (e *ChainError) Unwrap() error { return ErrTampered }

// Hash returns the hex SHA-256 of e's canonical encoding, the value the
// Logger stores in e.Hash. e.Hash itself is not part of the input.
func Hash(e Event) (string, error) {
	b, err := appendCanonical(make([]byte, 0, 512), &e)
	if err != nil {
		return "", fmt.Errorf("audit: event %d details: %w", e.Sequence, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Verify walks a chain from its first event and returns nil when every
// event is intact and in place. The chain must start at sequence 1 with an
// empty PrevHash, number its events 1, 2, 3, ... and link each event to
// the hash of the one before; each Hash must match the event's contents.
//
// A broken chain gives a *ChainError (errors.Is ErrTampered) naming the
// first bad sequence; an error from events is returned wrapped, as is a
// Details value that cannot be encoded. Verify cannot notice events cut
// off the end of a chain: compare the last Sequence and Hash with a copy
// kept elsewhere (another sink) for that.
func Verify(events iter.Seq2[Event, error]) error {
	var (
		want uint64 = 1
		prev string
		buf  = make([]byte, 0, 512)
		hx   [2 * sha256.Size]byte
	)
	for e, err := range events {
		if err != nil {
			return fmt.Errorf("audit: verify: reading event after sequence %d: %w", want-1, err)
		}
		if e.Sequence != want {
			reason := fmt.Sprintf("expected sequence %d, found %d", want, e.Sequence)
			if e.Sequence > want {
				reason += " (events missing)"
			}
			return &ChainError{Sequence: want, Reason: reason}
		}
		if e.PrevHash != prev {
			if want == 1 {
				return &ChainError{Sequence: want, Reason: "first event has a previous hash: the chain does not start here"}
			}
			return &ChainError{Sequence: want, Reason: fmt.Sprintf("previous hash does not match the hash of event %d", want-1)}
		}
		var encErr error
		buf, encErr = appendCanonical(buf[:0], &e)
		if encErr != nil {
			return &ChainError{Sequence: want, Reason: "details cannot be encoded: " + encErr.Error()}
		}
		sum := sha256.Sum256(buf)
		hex.Encode(hx[:], sum[:])
		if string(hx[:]) != e.Hash {
			return &ChainError{Sequence: want, Reason: "hash does not match the event's contents"}
		}
		prev = e.Hash
		want++
	}
	return nil
}
