package steward

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// Page sizes used by MemoryIdentity.ListUsers when UserQuery.PageSize is
// zero or larger than the Clerk Backend API allows.
const (
	defaultPageSize = 100
	maxPageSize     = 500
)

// MemoryIdentity is an in-process IdentityProvider for tests, examples and
// local development. It behaves like the Clerk adapter: metadata is stored
// as JSON would store it (numbers come back as float64, structs as maps),
// patches deep-merge, deleting a missing user is not an error, and
// ListUsers yields users oldest first, page by page.
//
// A MemoryIdentity is safe for concurrent use. The zero value is an empty
// provider that reads the system clock; NewMemoryIdentity accepts options.
type MemoryIdentity struct {
	now func() time.Time

	mu    sync.RWMutex
	users map[string]User
	order []orderKey // sorted by (CreatedAt, ID), one entry per user
}

var _ IdentityProvider = (*MemoryIdentity)(nil)

// orderKey is a user's position in ListUsers order.
type orderKey struct {
	created time.Time
	id      string
}

func compareKeys(a, b orderKey) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// MemoryOption configures a MemoryIdentity.
type MemoryOption func(*MemoryIdentity)

// WithNow sets the clock MemoryIdentity uses for CreatedAt and UpdatedAt.
// The default is time.Now; tests pass a fixed or stepping clock.
func WithNow(now func() time.Time) MemoryOption {
	return func(m *MemoryIdentity) { m.now = now }
}

// NewMemoryIdentity returns an empty MemoryIdentity.
func NewMemoryIdentity(opts ...MemoryOption) *MemoryIdentity {
	m := &MemoryIdentity{users: make(map[string]User)}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

func (m *MemoryIdentity) clock() time.Time {
	if m.now != nil {
		return m.now().Round(0)
	}
	return time.Now().Round(0)
}

// Put adds u, or replaces the user with the same ID, as an administrator
// would through the identity provider's dashboard. It stores a deep copy:
// later changes to u do not reach the provider.
//
// A zero CreatedAt is set to the current time; a zero UpdatedAt is set to
// CreatedAt for a new user and to the current time for a replaced one.
// Metadata is stored as its JSON form, like a real provider would keep it;
// metadata that cannot be encoded as JSON is stored as a deep copy instead.
//
// Put does not validate u.ID, so that tests can hold any fixture. A user
// whose ID fails ValidateUserID is listed by ListUsers, but GetUser,
// UpdateMetadata and DeleteUser reject its ID with ErrInvalidUserID.
func (m *MemoryIdentity) Put(u User) {
	u = u.Clone()
	if pub, err := jsonMetadata(u.PublicMetadata); err == nil {
		u.PublicMetadata = pub
	}
	if priv, err := jsonMetadata(u.PrivateMetadata); err == nil {
		u.PrivateMetadata = priv
	}
	now := m.clock()
	u.CreatedAt = u.CreatedAt.Round(0)
	u.UpdatedAt = u.UpdatedAt.Round(0)
	u.LastSignInAt = u.LastSignInAt.Round(0)
	u.LastActiveAt = u.LastActiveAt.Round(0)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = make(map[string]User)
	}
	old, replaced := m.users[u.ID]
	if u.UpdatedAt.IsZero() {
		if replaced {
			u.UpdatedAt = now
		} else {
			u.UpdatedAt = u.CreatedAt
		}
	}
	if replaced {
		m.removeKey(orderKey{old.CreatedAt, old.ID})
	}
	key := orderKey{u.CreatedAt, u.ID}
	i, _ := slices.BinarySearchFunc(m.order, key, compareKeys)
	m.order = slices.Insert(m.order, i, key)
	m.users[u.ID] = u
}

// removeKey deletes k from m.order. The caller holds m.mu for writing.
func (m *MemoryIdentity) removeKey(k orderKey) {
	if i, ok := slices.BinarySearchFunc(m.order, k, compareKeys); ok {
		m.order = slices.Delete(m.order, i, i+1)
	}
}

// GetUser returns a deep copy of the user with the given ID.
//
// Errors wrap ErrInvalidUserID for a malformed ID, ErrUserNotFound when
// there is no such user, and ctx.Err() when ctx is done.
func (m *MemoryIdentity) GetUser(ctx context.Context, userID string) (User, error) {
	if err := checkCall(ctx, userID); err != nil {
		return User{}, fmt.Errorf("memory identity: get user: %w", err)
	}
	m.mu.RLock()
	u, ok := m.users[userID]
	m.mu.RUnlock()
	if !ok {
		return User{}, fmt.Errorf("memory identity: get user: %w", ErrUserNotFound)
	}
	return u.Clone(), nil
}

// ListUsers yields deep copies of the users matching q, oldest first with
// ties broken by ID. It reads q.PageSize users at a time (default 100,
// at most 500) and holds no lock while yielding, so the loop body may call
// any method of m, including DeleteUser on the user just yielded. Users
// added or changed during iteration may or may not be seen; every user
// present throughout is yielded exactly once.
//
// An invalid q yields one error wrapping ErrInvalidQuery; a done ctx
// yields one error wrapping ctx.Err(). Iteration ends after an error.
func (m *MemoryIdentity) ListUsers(ctx context.Context, q UserQuery) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		if err := q.Validate(); err != nil {
			yield(User{}, fmt.Errorf("memory identity: list users: %w", err))
			return
		}
		size := q.PageSize
		if size == 0 {
			size = defaultPageSize
		}
		size = min(size, maxPageSize)
		remaining := q.Limit // 0 means no limit
		var cursor *orderKey
		for {
			if err := ctx.Err(); err != nil {
				yield(User{}, fmt.Errorf("memory identity: list users: %w", err))
				return
			}
			n := size
			if q.Limit > 0 {
				n = min(n, remaining)
			}
			page, next := m.page(q, cursor, n)
			for _, u := range page {
				if !yield(u, nil) {
					return
				}
			}
			if q.Limit > 0 {
				remaining -= len(page)
				if remaining == 0 {
					return
				}
			}
			if next == nil {
				return
			}
			cursor = next
		}
	}
}

// page returns copies of up to n users matching q that come after cursor
// (from the start when cursor is nil), and the cursor to continue from, or
// nil when the end was reached.
func (m *MemoryIdentity) page(q UserQuery, cursor *orderKey, n int) ([]User, *orderKey) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := 0
	if cursor != nil {
		var found bool
		i, found = slices.BinarySearchFunc(m.order, *cursor, compareKeys)
		if found {
			i++
		}
	}
	page := make([]User, 0, min(n, len(m.order)-i))
	for ; i < len(m.order); i++ {
		u := m.users[m.order[i].id]
		if !q.Matches(u) {
			continue
		}
		page = append(page, u.Clone())
		if len(page) == n {
			next := m.order[i]
			return page, &next
		}
	}
	return page, nil
}

// UpdateMetadata deep-merges p into the user's metadata (see
// MetadataPatch) and sets UpdatedAt to the current time. The patch is
// stored as its JSON form; m keeps no reference to p's maps.
//
// Errors wrap ErrInvalidUserID for a malformed ID, ErrInvalidPatch for an
// empty patch or one that cannot be encoded as JSON, ErrUserNotFound when
// there is no such user, and ctx.Err() when ctx is done. On error nothing
// is changed.
func (m *MemoryIdentity) UpdateMetadata(ctx context.Context, userID string, p MetadataPatch) error {
	if err := checkCall(ctx, userID); err != nil {
		return fmt.Errorf("memory identity: update metadata: %w", err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("memory identity: update metadata: %w", err)
	}
	pub, err := jsonMetadata(p.Public)
	if err != nil {
		return fmt.Errorf("memory identity: update metadata: %w: Public: %v", ErrInvalidPatch, err)
	}
	priv, err := jsonMetadata(p.Private)
	if err != nil {
		return fmt.Errorf("memory identity: update metadata: %w: Private: %v", ErrInvalidPatch, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return fmt.Errorf("memory identity: update metadata: %w", ErrUserNotFound)
	}
	if len(pub) > 0 {
		u.PublicMetadata = MergeMetadata(u.PublicMetadata, pub)
	}
	if len(priv) > 0 {
		u.PrivateMetadata = MergeMetadata(u.PrivateMetadata, priv)
	}
	u.UpdatedAt = m.clock()
	m.users[userID] = u
	return nil
}

// DeleteUser removes the user. Removing a user that does not exist
// returns nil, so erasure can be retried.
//
// Errors wrap ErrInvalidUserID for a malformed ID and ctx.Err() when ctx
// is done.
func (m *MemoryIdentity) DeleteUser(ctx context.Context, userID string) error {
	if err := checkCall(ctx, userID); err != nil {
		return fmt.Errorf("memory identity: delete user: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[userID]; ok {
		m.removeKey(orderKey{u.CreatedAt, u.ID})
		delete(m.users, userID)
	}
	return nil
}

// checkCall validates the arguments every per-user method shares.
func checkCall(ctx context.Context, userID string) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	return ctx.Err()
}

// jsonMetadata returns m as it reads back after a JSON round trip: fresh
// maps, numbers as float64, structs as maps. It returns nil for nil.
func jsonMetadata(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
