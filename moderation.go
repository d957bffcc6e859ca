package steward

import (
	"context"
	"fmt"
)

// Moderator is an optional capability of an IdentityProvider: banning
// and locking accounts. Find it with a type assertion, as database/sql
// finds a driver's optional interfaces:
//
//	if mod, ok := idp.(steward.Moderator); ok { err = mod.Ban(ctx, id) }
//
// Each method is idempotent (banning a banned user is not an error) and
// returns an error wrapping ErrUserNotFound for an unknown user.
// MemoryIdentity and clerkadapter.Provider implement it.
type Moderator interface {
	Ban(ctx context.Context, userID string) error
	Unban(ctx context.Context, userID string) error
	Lock(ctx context.Context, userID string) error
	Unlock(ctx context.Context, userID string) error
}

var _ Moderator = (*MemoryIdentity)(nil)

// Ban marks the user banned: a banned principal is allowed nothing.
func (m *MemoryIdentity) Ban(ctx context.Context, userID string) error {
	return m.setState(ctx, "ban", userID, func(u *User) { u.Banned = true })
}

// Unban lifts a ban.
func (m *MemoryIdentity) Unban(ctx context.Context, userID string) error {
	return m.setState(ctx, "unban", userID, func(u *User) { u.Banned = false })
}

// Lock marks the user locked: a locked principal is allowed nothing.
func (m *MemoryIdentity) Lock(ctx context.Context, userID string) error {
	return m.setState(ctx, "lock", userID, func(u *User) { u.Locked = true })
}

// Unlock lifts a lock.
func (m *MemoryIdentity) Unlock(ctx context.Context, userID string) error {
	return m.setState(ctx, "unlock", userID, func(u *User) { u.Locked = false })
}

func (m *MemoryIdentity) setState(ctx context.Context, op, userID string, f func(*User)) error {
	if err := checkCall(ctx, userID); err != nil {
		return fmt.Errorf("memory identity: %s: %w", op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return fmt.Errorf("memory identity: %s: %w", op, ErrUserNotFound)
	}
	f(&u)
	u.UpdatedAt = m.clock()
	m.users[userID] = u
	return nil
}
