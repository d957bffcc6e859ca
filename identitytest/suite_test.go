package identitytest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/internal/conformance"
)

// These tests check the suite itself: it passes a correct provider and
// catches providers that break a rule.

// harness serves any provider built over a MemoryIdentity.
type harness struct {
	m *steward.MemoryIdentity
	p steward.IdentityProvider
}

func (h harness) Provider() steward.IdentityProvider { return h.p }
func (h harness) Capabilities() Capabilities {
	return Capabilities{KeepsCreatedAt: true, KeepsLastActiveAt: true}
}
func (h harness) Close() {}
func (h harness) CreateUser(ctx context.Context, u steward.User) (steward.User, error) {
	h.m.Put(u)
	return h.m.GetUser(ctx, u.ID)
}

// runRecorded runs the suite on the provider wrap builds around a fresh
// MemoryIdentity and returns the failed rules.
func runRecorded(wrap func(*steward.MemoryIdentity) steward.IdentityProvider) map[string][]string {
	r := conformance.NewRecorder("suite")
	cfg := config{blockTimeout: 300 * time.Millisecond}
	run(r, func(ctx context.Context, t tb) (Harness, error) {
		m := steward.NewMemoryIdentity()
		return harness{m: m, p: wrap(m)}, nil
	}, cfg)
	return r.Failures()
}

func TestSuitePassesMemoryIdentity(t *testing.T) {
	failed := runRecorded(func(m *steward.MemoryIdentity) steward.IdentityProvider { return m })
	for rule, msgs := range failed {
		t.Errorf("rule %q failed on MemoryIdentity: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestSuiteCatchesBrokenProviders(t *testing.T) {
	tests := []struct {
		name string
		wrap func(*steward.MemoryIdentity) steward.IdentityProvider
		// wantFailed are rules that must be reported broken.
		wantFailed []string
	}{
		{
			name: "DeleteUser of a missing user returns ErrUserNotFound",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return strictDelete{m} },
			wantFailed: []string{
				"DeleteUser of a user that never existed is not an error",
				"DeleteUser of an already deleted user is not an error",
			},
		},
		{
			name: "UpdateMetadata replaces top-level keys instead of merging",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return shallowMerge{m} },
			wantFailed: []string{
				"UpdateMetadata deep-merges nested objects key by key",
				"a nil value removes a key, at the top level and inside nested objects",
			},
		},
		{
			name: "ListUsers ignores Limit",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return noLimit{m} },
			wantFailed: []string{
				"ListUsers honours Limit",
				"Limit counts matching users only",
			},
		},
		{
			name: "ListUsers keeps yielding after the consumer stops",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return ignoresStop{m} },
			wantFailed: []string{
				"ListUsers stops when the consumer stops",
			},
		},
		{
			name: "ListUsers orders by ID only",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return byID{m} },
			wantFailed: []string{
				"ListUsers yields every user once, oldest first, ties broken by ID, whatever the PageSize",
			},
		},
		{
			name: "ListUsers holds a lock while yielding",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return &lockedList{m: m} },
			wantFailed: []string{
				"the consumer may update and delete each user while ListUsers yields",
			},
		},
		{
			name: "GetUser returns shared maps",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider {
				return &sharedMaps{MemoryIdentity: m, cache: make(map[string]steward.User)}
			},
			wantFailed: []string{
				"GetUser returns a copy: changing it changes nothing stored",
			},
		},
		{
			name: "UpdateMetadata reads, merges and writes without a lock",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return &lostUpdates{MemoryIdentity: m} },
			wantFailed: []string{
				"concurrent UpdateMetadata calls on different keys are all applied",
			},
		},
		{
			name: "calls ignore their context",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return ignoresContext{m} },
			wantFailed: []string{
				"GetUser with a cancelled context returns the context's error",
				"UpdateMetadata with a cancelled context returns the context's error and changes nothing",
				"DeleteUser with a cancelled context returns the context's error and deletes nothing",
				"ListUsers with a cancelled context yields the context's error",
				"cancelling the context during ListUsers ends it with the context's error",
			},
		},
		{
			name: "malformed IDs are looked up instead of rejected",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return noValidation{m} },
			wantFailed: []string{
				"every method rejects a malformed ID with ErrInvalidUserID",
			},
		},
		{
			name: "errors name the user",
			wrap: func(m *steward.MemoryIdentity) steward.IdentityProvider { return leaksID{m} },
			wantFailed: []string{
				"errors never contain the user ID",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runRecorded(tt.wrap)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q", rule)
				}
			}
			if t.Failed() {
				t.Logf("rules reported broken: %v", failed)
			}
		})
	}
}

// ---- broken providers ----

type strictDelete struct{ *steward.MemoryIdentity }

func (s strictDelete) DeleteUser(ctx context.Context, id string) error {
	if _, err := s.GetUser(ctx, id); err != nil {
		return err
	}
	return s.MemoryIdentity.DeleteUser(ctx, id)
}

type shallowMerge struct{ *steward.MemoryIdentity }

func (s shallowMerge) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	if err := p.Validate(); err != nil {
		return err
	}
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	apply := func(m, patch map[string]any) map[string]any {
		if m == nil {
			m = map[string]any{}
		}
		for k, v := range patch {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	u.PublicMetadata = apply(u.PublicMetadata, p.Public)
	u.PrivateMetadata = apply(u.PrivateMetadata, p.Private)
	s.Put(u)
	return nil
}

type noLimit struct{ *steward.MemoryIdentity }

func (s noLimit) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	q.Limit = 0
	return s.MemoryIdentity.ListUsers(ctx, q)
}

type ignoresStop struct{ *steward.MemoryIdentity }

func (s ignoresStop) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		for u, err := range s.MemoryIdentity.ListUsers(ctx, q) {
			yield(u, err) // ignores false
		}
	}
}

type byID struct{ *steward.MemoryIdentity }

func (s byID) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		var users []steward.User
		for u, err := range s.MemoryIdentity.ListUsers(ctx, q) {
			if err != nil {
				yield(steward.User{}, err)
				return
			}
			users = append(users, u)
		}
		slices.SortFunc(users, func(a, b steward.User) int { return strings.Compare(a.ID, b.ID) })
		for _, u := range users {
			if !yield(u, nil) {
				return
			}
		}
	}
}

// lockedList serialises every call with one mutex and holds it for the
// whole of a ListUsers iteration.
type lockedList struct {
	mu sync.Mutex
	m  *steward.MemoryIdentity
}

func (s *lockedList) GetUser(ctx context.Context, id string) (steward.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.GetUser(ctx, id)
}

func (s *lockedList) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.UpdateMetadata(ctx, id, p)
}

func (s *lockedList) DeleteUser(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.DeleteUser(ctx, id)
}

func (s *lockedList) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.m.ListUsers(ctx, q)(yield)
	}
}

// sharedMaps hands out the same maps on every GetUser of a user.
type sharedMaps struct {
	*steward.MemoryIdentity
	mu    sync.Mutex
	cache map[string]steward.User
}

func (s *sharedMaps) GetUser(ctx context.Context, id string) (steward.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.cache[id]; ok {
		return u, nil
	}
	u, err := s.MemoryIdentity.GetUser(ctx, id)
	if err == nil {
		s.cache[id] = u
	}
	return u, err
}

// lostUpdates reads, merges and writes back without holding a lock
// across the three steps; two concurrent calls meet between the read and
// the write, so one of them loses its change.
type lostUpdates struct {
	*steward.MemoryIdentity
	mu      sync.Mutex
	waiting chan struct{}
}

func (s *lostUpdates) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	if err := p.Validate(); err != nil {
		return err
	}
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	s.meet()
	u.PublicMetadata = steward.MergeMetadata(u.PublicMetadata, p.Public)
	u.PrivateMetadata = steward.MergeMetadata(u.PrivateMetadata, p.Private)
	s.Put(u)
	return nil
}

// meet waits briefly for another call to arrive, pairing calls up.
func (s *lostUpdates) meet() {
	s.mu.Lock()
	if s.waiting != nil {
		close(s.waiting)
		s.waiting = nil
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	s.waiting = ch
	s.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(20 * time.Millisecond):
		s.mu.Lock()
		if s.waiting == ch {
			s.waiting = nil
		}
		s.mu.Unlock()
	}
}

type ignoresContext struct{ *steward.MemoryIdentity }

func (s ignoresContext) GetUser(_ context.Context, id string) (steward.User, error) {
	return s.MemoryIdentity.GetUser(context.Background(), id)
}

func (s ignoresContext) UpdateMetadata(_ context.Context, id string, p steward.MetadataPatch) error {
	return s.MemoryIdentity.UpdateMetadata(context.Background(), id, p)
}

func (s ignoresContext) DeleteUser(_ context.Context, id string) error {
	return s.MemoryIdentity.DeleteUser(context.Background(), id)
}

func (s ignoresContext) ListUsers(_ context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return s.MemoryIdentity.ListUsers(context.Background(), q)
}

// noValidation treats a malformed ID as an unknown one.
type noValidation struct{ *steward.MemoryIdentity }

func (s noValidation) fix(id string) string {
	if steward.ValidateUserID(id) != nil {
		return "user_nosuchuser"
	}
	return id
}

func (s noValidation) GetUser(ctx context.Context, id string) (steward.User, error) {
	return s.MemoryIdentity.GetUser(ctx, s.fix(id))
}

func (s noValidation) UpdateMetadata(ctx context.Context, id string, p steward.MetadataPatch) error {
	return s.MemoryIdentity.UpdateMetadata(ctx, s.fix(id), p)
}

func (s noValidation) DeleteUser(ctx context.Context, id string) error {
	return s.MemoryIdentity.DeleteUser(ctx, s.fix(id))
}

type leaksID struct{ *steward.MemoryIdentity }

func (s leaksID) GetUser(ctx context.Context, id string) (steward.User, error) {
	u, err := s.MemoryIdentity.GetUser(ctx, id)
	if errors.Is(err, steward.ErrUserNotFound) {
		err = fmt.Errorf("get user %s: %w", id, err)
	}
	return u, err
}
