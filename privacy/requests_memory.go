package privacy

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
)

// MemoryRequestStore is an in-process RequestStore for tests, examples
// and single-process development. It is not durable: requests are lost
// with the process, so use a database store (package sqlstore) in
// production.
//
// A MemoryRequestStore is safe for concurrent use, and a RequestClaimer
// judged by time.Now: Services in one process sharing it run each request
// once at a time.
//
// It is also a Ledger and a RequestPurger, in the same memory.
type MemoryRequestStore struct {
	mu     sync.Mutex
	reqs   map[string]Request
	active map[activeKey]string // the user's open erasure or pending export → its ID
	claims map[string]memClaim
	ledger map[string]LedgerEntry
}

// activeKey names the one request of a kind a user may have active.
type activeKey struct {
	kind Kind
	user string
}

type memClaim struct {
	owner   string
	expires time.Time
}

var (
	_ RequestStore   = (*MemoryRequestStore)(nil)
	_ RequestClaimer = (*MemoryRequestStore)(nil)
	_ Ledger         = (*MemoryRequestStore)(nil)
	_ RequestPurger  = (*MemoryRequestStore)(nil)
)

// NewMemoryRequestStore returns an empty MemoryRequestStore.
func NewMemoryRequestStore() *MemoryRequestStore {
	return &MemoryRequestStore{reqs: make(map[string]Request), active: make(map[activeKey]string),
		claims: make(map[string]memClaim), ledger: make(map[string]LedgerEntry)}
}

// RecordErased implements Ledger.
func (s *MemoryRequestStore) RecordErased(ctx context.Context, e LedgerEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.ErasedAt = e.ErasedAt.UTC().Truncate(time.Microsecond)
	s.ledger[e.Subject] = e
	return nil
}

// FindErased implements Ledger.
func (s *MemoryRequestStore) FindErased(ctx context.Context, subjects ...string) (LedgerEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return LedgerEntry{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range subjects {
		if e, ok := s.ledger[sub]; ok {
			return e, true, nil
		}
	}
	return LedgerEntry{}, false, nil
}

// ListErased implements Ledger, from a snapshot taken when iteration
// starts.
func (s *MemoryRequestStore) ListErased(ctx context.Context) iter.Seq2[LedgerEntry, error] {
	return func(yield func(LedgerEntry, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(LedgerEntry{}, err)
			return
		}
		s.mu.Lock()
		out := make([]LedgerEntry, 0, len(s.ledger))
		for _, e := range s.ledger {
			out = append(out, e)
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b LedgerEntry) int { return cmp.Compare(a.Subject, b.Subject) })
		for _, e := range out {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// CountFinished implements RequestPurger.
func (s *MemoryRequestStore) CountFinished(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if finishedBefore(r, before) {
			n++
		}
	}
	return n, nil
}

// PurgeFinished implements RequestPurger.
func (s *MemoryRequestStore) PurgeFinished(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit < 1 {
		return 0, fmt.Errorf("%w: limit %d is less than 1", ErrInvalidRequest, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, r := range s.reqs {
		if finishedBefore(r, before) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	for _, id := range ids {
		s.remove(id)
		delete(s.claims, id)
	}
	return len(ids), nil
}

// finishedBefore reports whether r finished before t.
func finishedBefore(r Request, t time.Time) bool {
	return r.Status.Finished() && !r.CompletedAt.IsZero() && r.CompletedAt.Before(t)
}

// withClaim returns r with its claim fields from s.claims; s.mu is held.
func (s *MemoryRequestStore) withClaim(r Request) Request {
	r = r.Clone()
	c := s.claims[r.ID]
	r.ClaimedBy, r.ClaimExpires = c.owner, c.expires
	return r
}

// ClaimRequest implements RequestClaimer.
func (s *MemoryRequestStore) ClaimRequest(ctx context.Context, id, owner string, ttl time.Duration) (Request, error) {
	if err := steward.ValidateLease(id, owner, ttl); err != nil {
		return Request{}, err
	}
	if err := ctx.Err(); err != nil {
		return Request{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return Request{}, fmt.Errorf("%w: %q", ErrRequestNotFound, id)
	}
	now := time.Now()
	if c, ok := s.claims[id]; ok && c.owner != "" && now.Before(c.expires) {
		return Request{}, fmt.Errorf("%w: %q", ErrRequestClaimed, id)
	}
	s.claims[id] = memClaim{owner: owner, expires: now.Add(ttl)}
	r.Version++
	s.put(r)
	return s.withClaim(r), nil
}

// RenewClaim implements RequestClaimer.
func (s *MemoryRequestStore) RenewClaim(ctx context.Context, id, owner string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.claims[id]; c.owner != owner || owner == "" {
		return fmt.Errorf("%w: %q", ErrClaimLost, id)
	}
	s.claims[id] = memClaim{owner: owner, expires: time.Now().Add(ttl)}
	return nil
}

// ReleaseClaim implements RequestClaimer.
func (s *MemoryRequestStore) ReleaseClaim(ctx context.Context, id, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.claims[id]; c.owner == owner && owner != "" {
		delete(s.claims, id)
	}
	return nil
}

// Create stores r with Version 1. It returns ErrDuplicateRequest or
// ErrActiveRequest (wrapped) as RequestStore documents, ErrInvalidRequest
// for an empty ID, and ctx's error when ctx is done.
func (s *MemoryRequestStore) Create(ctx context.Context, r Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" {
		return fmt.Errorf("%w: ID is empty", ErrInvalidRequest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.reqs[r.ID]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateRequest, r.ID)
	}
	if err := s.checkActive(r); err != nil {
		return err
	}
	r = r.Clone()
	r.Version = 1
	r.ClaimedBy, r.ClaimExpires = "", time.Time{}
	s.put(r)
	return nil
}

// activeReq reports whether x counts as its user's one open erasure, or
// one pending (or partial) export.
func activeReq(x Request) bool {
	if x.Kind == KindExport {
		return x.Status == StatusPending || x.Status == StatusPartial
	}
	return x.Kind == KindErasure && x.Status.Open()
}

// checkActive enforces one open erasure request and one pending (or
// partial) export per user. s.mu is held.
func (s *MemoryRequestStore) checkActive(r Request) error {
	if !activeReq(r) {
		return nil
	}
	if id, ok := s.active[activeKey{r.Kind, r.UserID}]; ok && id != r.ID {
		return fmt.Errorf("%w: request %q", ErrActiveRequest, id)
	}
	return nil
}

// put stores r, keeping the index of active requests. s.mu is held.
func (s *MemoryRequestStore) put(r Request) {
	s.remove(r.ID)
	s.reqs[r.ID] = r
	if activeReq(r) {
		s.active[activeKey{r.Kind, r.UserID}] = r.ID
	}
}

// remove deletes the request id and its index entry. s.mu is held.
func (s *MemoryRequestStore) remove(id string) {
	if old, ok := s.reqs[id]; ok && activeReq(old) {
		if k := (activeKey{old.Kind, old.UserID}); s.active[k] == id {
			delete(s.active, k)
		}
	}
	delete(s.reqs, id)
}

// Get returns a copy of the request, or ErrRequestNotFound (wrapped).
func (s *MemoryRequestStore) Get(ctx context.Context, id string) (Request, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return Request{}, fmt.Errorf("%w: %q", ErrRequestNotFound, id)
	}
	return s.withClaim(r), nil
}

// Update replaces the request when r.Version matches, as RequestStore
// documents.
func (s *MemoryRequestStore) Update(ctx context.Context, r Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.reqs[r.ID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrRequestNotFound, r.ID)
	}
	if old.Version != r.Version {
		return fmt.Errorf("%w: request %q is at version %d, not %d", ErrConflict, r.ID, old.Version, r.Version)
	}
	if err := s.checkActive(r); err != nil {
		return err
	}
	r = r.Clone()
	r.Kind = old.Kind
	r.Version++
	r.ClaimedBy, r.ClaimExpires = "", time.Time{}
	s.put(r)
	return nil
}

// List yields copies of the matching requests, ordered by ReceivedAt then
// ID, from a snapshot taken when iteration starts.
func (s *MemoryRequestStore) List(ctx context.Context, f RequestFilter) iter.Seq2[Request, error] {
	return func(yield func(Request, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Request{}, err)
			return
		}
		if f.Limit < 0 {
			yield(Request{}, fmt.Errorf("%w: Limit is negative (%d)", ErrInvalidRequest, f.Limit))
			return
		}
		s.mu.Lock()
		var out []Request
		for _, r := range s.reqs {
			if f.Matches(r) {
				out = append(out, s.withClaim(r))
			}
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b Request) int {
			return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
		})
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		for _, r := range out {
			if err := ctx.Err(); err != nil {
				yield(Request{}, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}
