package clerkadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// WebhookActor is the audit actor of what the webhook handlers below do.
const WebhookActor = audit.SystemActorPrefix + "clerk-webhook"

// UserEraser erases a user's application data; *privacy.Service
// satisfies it.
type UserEraser interface {
	Erase(ctx context.Context, userID string, opts ...privacy.EraseOption) (privacy.DeletionResult, error)
	CheckFence(ctx context.Context, userID string) error
}

// EraseDeletedUsers returns a WebhookOptions.OnUserDeleted handler that
// erases the application's data of a user deleted in Clerk (from Clerk's
// own account pages, or by an administrator in its dashboard): an
// erasure request with the identity step recorded as already done
// (privacy.IdentityDeleted), so every DataStore and external service is
// erased, checkpointed and audited as for any erasure, and the user is
// fenced and ledgered.
//
// It is idempotent, as Svix's at-least-once delivery needs: a second
// delivery resumes the same request, and one for a user already erased
// (in the Ledger) does nothing. An erasure left partial or held is kept
// by the request store for privacy.Service.ResumePending and answers
// 200; only a failure to record the request answers 500, so Svix
// delivers the event again.
func EraseDeletedUsers(svc UserEraser) func(ctx context.Context, e UserEvent) error {
	return func(ctx context.Context, e UserEvent) error {
		if err := svc.CheckFence(ctx, e.UserID); errors.Is(err, privacy.ErrErased) {
			return nil
		}
		_, err := svc.Erase(context.WithoutCancel(ctx), e.UserID, privacy.IdentityDeleted(), privacy.RequestedBy(WebhookActor))
		switch {
		case err == nil, errors.Is(err, privacy.ErrPartialDeletion), errors.Is(err, privacy.ErrLegalHold),
			errors.Is(err, privacy.ErrClaimLost):
			return nil // recorded; ResumePending carries it on
		}
		return fmt.Errorf("clerkadapter: erasing a deleted user's data: %w", err)
	}
}

// AuditLogger records audit events; *audit.Logger satisfies it.
type AuditLogger interface {
	Log(ctx context.Context, e audit.Event) error
}

// AssignDefaultRole returns a WebhookOptions.OnUserCreated handler that
// writes role (empty: rbac.ParseRole's default, "user") to a new user's
// public metadata "role" when they have none, as the data model requires
// of every new account. It reads the user afresh, so a redelivery after
// an administrator changed the role changes nothing; a user deleted
// meanwhile is skipped. With log (nil for none) the change is audited as
// a role_change by WebhookActor before it is made: when the audit record
// cannot be written, the role is not written either and the delivery
// fails (500), to be delivered again.
func AssignDefaultRole(idp steward.IdentityProvider, role rbac.Role, log AuditLogger) func(ctx context.Context, e UserEvent) error {
	if role == "" {
		role = rbac.ParseRole(nil)
	}
	return func(ctx context.Context, e UserEvent) error {
		u, err := idp.GetUser(ctx, e.UserID)
		if errors.Is(err, steward.ErrUserNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("clerkadapter: reading a new user: %w", err)
		}
		if r, ok := u.PublicMetadata["role"].(string); ok && r != "" {
			return nil
		}
		if log != nil {
			if err := log.Log(ctx, audit.Event{Type: audit.RoleChange, Subject: e.UserID, Actor: WebhookActor,
				Details: map[string]any{"action": "assign_role", "newRole": string(role), "reason": "default role of a new account"}}); err != nil {
				return fmt.Errorf("clerkadapter: the default role was not written, its audit event could not be: %w", err)
			}
		}
		err = idp.UpdateMetadata(ctx, e.UserID, steward.MetadataPatch{Public: map[string]any{"role": string(role)}})
		if errors.Is(err, steward.ErrUserNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("clerkadapter: writing the default role: %w", err)
		}
		return nil
	}
}
