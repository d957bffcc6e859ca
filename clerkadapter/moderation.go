package clerkadapter

import (
	"context"
	"fmt"

	"github.com/clerk/clerk-sdk-go/v2"

	"github.com/stewardlabs/steward"
)

var _ steward.Moderator = (*Provider)(nil)

// Ban bans the user through Clerk's ban endpoint, with the provider's
// retries. A banned user cannot sign in and Steward allows them nothing.
func (p *Provider) Ban(ctx context.Context, userID string) error {
	return p.moderate(ctx, "ban", userID, p.users.Ban)
}

// Unban lifts a ban.
func (p *Provider) Unban(ctx context.Context, userID string) error {
	return p.moderate(ctx, "unban", userID, p.users.Unban)
}

// Lock locks the user (Clerk's lock endpoint).
func (p *Provider) Lock(ctx context.Context, userID string) error {
	return p.moderate(ctx, "lock", userID, p.users.Lock)
}

// Unlock lifts a lock.
func (p *Provider) Unlock(ctx context.Context, userID string) error {
	return p.moderate(ctx, "unlock", userID, p.users.Unlock)
}

func (p *Provider) moderate(ctx context.Context, op, userID string, call func(context.Context, string) (*clerk.User, error)) error {
	if err := validateID(userID); err != nil {
		return fmt.Errorf("clerkadapter: %s: %w", op, err)
	}
	err := p.do(ctx, op, func(ctx context.Context) error {
		_, err := call(ctx, userID)
		return err
	})
	if notFound(err) {
		return fmt.Errorf("%w: %w", steward.ErrUserNotFound, err)
	}
	return err
}
