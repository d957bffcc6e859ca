package privacy

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
)

// MemoryRequestStore is an in-process RequestStore for tests, examples
// and single-process development. It is not durable: requests are lost
// with the process, so use a database store (package sqlstore) in
// production.
//
// A MemoryRequestStore is safe for concurrent use.
type MemoryRequestStore struct {
	mu   sync.Mutex
	reqs map[string]Request
}

var _ RequestStore = (*MemoryRequestStore)(nil)

// NewMemoryRequestStore returns an empty MemoryRequestStore.
func NewMemoryRequestStore() *MemoryRequestStore {
	return &MemoryRequestStore{reqs: make(map[string]Request)}
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
	s.reqs[r.ID] = r
	return nil
}

// checkActive enforces one open erasure request per user.
func (s *MemoryRequestStore) checkActive(r Request) error {
	if r.Kind != KindErasure || !r.Status.Open() {
		return nil
	}
	for _, o := range s.reqs {
		if o.ID != r.ID && o.Kind == KindErasure && o.UserID == r.UserID && o.Status.Open() {
			return fmt.Errorf("%w: request %q", ErrActiveRequest, o.ID)
		}
	}
	return nil
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
	return r.Clone(), nil
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
	r.Version++
	s.reqs[r.ID] = r
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
				out = append(out, r.Clone())
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
