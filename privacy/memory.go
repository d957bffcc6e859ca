package privacy

import (
	"context"
	"iter"
	"slices"
	"sync"

	"github.com/stewardlabs/steward"
)

// MemoryStore is an in-process DataStore for tests, examples and local
// development. It keeps each user's records grouped by category, in the
// order the categories were first added, and yields them in that order.
//
// Export copies one record at a time under a short read lock, so a slow
// consumer never blocks writers; Erase of the same user during an Export
// ends that Export early. Records come back as deep copies: changing them
// changes nothing stored.
//
// A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	name string

	mu    sync.RWMutex
	users map[string]*memoryUser
}

var (
	_ DataStore     = (*MemoryStore)(nil)
	_ SubjectLister = (*MemoryStore)(nil)
)

// memoryUser holds one user's records, one slice per category.
type memoryUser struct {
	categories []string
	records    map[string][]map[string]any
}

// NewMemoryStore returns an empty MemoryStore called name. The Service
// rejects an empty name.
func NewMemoryStore(name string) *MemoryStore {
	return &MemoryStore{name: name, users: make(map[string]*memoryUser)}
}

// Name returns the name given to NewMemoryStore.
func (s *MemoryStore) Name() string { return s.name }

// Add stores deep copies of recs for userID, after any records the user
// already has. A record whose category the user already has joins that
// category's group.
func (s *MemoryStore) Add(userID string, recs ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		u = &memoryUser{records: make(map[string][]map[string]any)}
		s.users[userID] = u
	}
	for _, r := range recs {
		if _, ok := u.records[r.Category]; !ok {
			u.categories = append(u.categories, r.Category)
		}
		u.records[r.Category] = append(u.records[r.Category], steward.CloneMetadata(r.Data))
	}
}

// Len returns how many records userID has.
func (s *MemoryStore) Len(userID string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[userID]
	if u == nil {
		return 0
	}
	n := 0
	for _, recs := range u.records {
		n += len(recs)
	}
	return n
}

// Export yields userID's records category by category. It yields
// ctx's error, and stops, once ctx is done.
func (s *MemoryStore) Export(ctx context.Context, userID string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for ci := 0; ; ci++ {
			for i := 0; ; i++ {
				if err := ctx.Err(); err != nil {
					yield(Record{}, err)
					return
				}
				rec, ok, next := s.at(userID, ci, i)
				if !ok {
					return
				}
				if !next {
					break
				}
				if !yield(rec, nil) {
					return
				}
			}
		}
	}
}

// at returns a copy of record i of userID's category number ci. ok is
// false when there is no category ci (or no user); next is false when
// the category has fewer than i+1 records.
func (s *MemoryStore) at(userID string, ci, i int) (rec Record, ok, next bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[userID]
	if u == nil || ci >= len(u.categories) {
		return Record{}, false, false
	}
	cat := u.categories[ci]
	recs := u.records[cat]
	if i >= len(recs) {
		return Record{}, true, false
	}
	return Record{Category: cat, Data: steward.CloneMetadata(recs[i])}, true, true
}

// Erase removes all of userID's records and reports how many there were.
// It returns ctx's error, removing nothing, when ctx is done.
func (s *MemoryStore) Erase(ctx context.Context, userID string) (Erased, error) {
	if err := ctx.Err(); err != nil {
		return Erased{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return Erased{}, nil
	}
	n := 0
	for _, recs := range u.records {
		n += len(recs)
	}
	delete(s.users, userID)
	return Erased{Count: n}, nil
}

// Subjects implements SubjectLister: the users holding at least one
// record, in ID order, from a snapshot taken when iteration starts.
func (s *MemoryStore) Subjects(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := ctx.Err(); err != nil {
			yield("", err)
			return
		}
		s.mu.RLock()
		ids := make([]string, 0, len(s.users))
		for id := range s.users {
			ids = append(ids, id)
		}
		s.mu.RUnlock()
		slices.Sort(ids)
		for _, id := range ids {
			if !yield(id, nil) {
				return
			}
		}
	}
}
