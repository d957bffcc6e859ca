package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward/audit"
)

// RequestPurger is an optional capability of a RequestStore: deleting
// finished requests (completed, cancelled or expired) once their proof
// period is over. MemoryRequestStore and sqlstore's Requests implement
// it; the Ledger is never touched.
type RequestPurger interface {
	// CountFinished returns how many requests finished (CompletedAt)
	// strictly before t.
	CountFinished(ctx context.Context, before time.Time) (int, error)
	// PurgeFinished deletes up to limit (at least 1) of them, in one
	// short transaction, and returns how many it deleted.
	PurgeFinished(ctx context.Context, before time.Time, limit int) (int, error)
}

// DefaultProofPeriod is how long a finished request is kept as proof
// that the request was answered: three years, the usual limitation
// period for a claim about it. Package retention's RequestsPolicy uses
// it.
const DefaultProofPeriod = 3 * 365 * 24 * time.Hour

// errInvalidEntry is wrapped by LedgerEntry.Validate's errors.
var errInvalidEntry = errors.New("privacy: invalid ledger entry")

// Validate reports a missing field of a LedgerEntry, or a Subject that is
// not a pseudonym (a Ledger must never hold a user ID), wrapping
// ErrInvalidRequest.
func (e LedgerEntry) Validate() error {
	switch {
	case len(e.Subject) <= len(audit.PseudonymPrefix) || e.Subject[:len(audit.PseudonymPrefix)] != audit.PseudonymPrefix:
		return fmt.Errorf("%w: %w: Subject is not a keyed pseudonym (%s...)", ErrInvalidRequest, errInvalidEntry, audit.PseudonymPrefix)
	case e.KeyID == "":
		return fmt.Errorf("%w: %w: KeyID is empty", ErrInvalidRequest, errInvalidEntry)
	case e.RequestID == "":
		return fmt.Errorf("%w: %w: RequestID is empty", ErrInvalidRequest, errInvalidEntry)
	case e.ErasedAt.IsZero():
		return fmt.Errorf("%w: %w: ErasedAt is zero", ErrInvalidRequest, errInvalidEntry)
	}
	return nil
}

// FinishedRequests is the Service's finished requests as a retention
// target (the shape of retention.Target): Count and Purge delete
// completed, cancelled and expired requests that finished before a
// cutoff, never open ones and never the Ledger. Get it with
// Service.FinishedRequests and give it to retention.RequestsPolicy.
type FinishedRequests struct {
	p RequestPurger
}

// FinishedRequests returns the target over the RequestStore, which must
// be a RequestPurger; it fails with ErrInvalidConfig otherwise.
func (s *Service) FinishedRequests() (*FinishedRequests, error) {
	p, ok := s.requests.(RequestPurger)
	if !ok {
		return nil, fmt.Errorf("%w: the RequestStore %T cannot purge finished requests (RequestPurger)", ErrInvalidConfig, s.requests)
	}
	return &FinishedRequests{p: p}, nil
}

// Count returns how many requests finished before olderThan. Finished
// requests name nobody in the clear, so exclude (users under legal hold)
// cannot match them and is ignored.
func (f *FinishedRequests) Count(ctx context.Context, olderThan time.Time, exclude []string) (int, error) {
	return f.p.CountFinished(ctx, olderThan)
}

// Purge deletes up to limit requests that finished before olderThan; see
// Count about exclude.
func (f *FinishedRequests) Purge(ctx context.Context, olderThan time.Time, limit int, exclude []string) (int, error) {
	return f.p.PurgeFinished(ctx, olderThan, limit)
}
