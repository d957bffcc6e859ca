package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// LegalHoldEvent is the audit event type of placing and releasing a
// legal hold (AuditedHolds).
const LegalHoldEvent audit.Type = "legal_hold"

// AuditedHolds is a HoldStore that writes a legal_hold audit event
// before each hold is placed or released: when the event cannot be
// written (the sink is down and the logger fails closed), the hold is
// not changed. The event's actor is Hold.PlacedBy for a placement and,
// for a release, the principal in ctx (rbac.PrincipalFrom), else Actor;
// its details carry the action and the reason, never the user ID (the
// subject is pseudonymised by the logger). Get and List pass through.
type AuditedHolds struct {
	Holds HoldStore
	Audit AuditLogger
}

var _ HoldStore = AuditedHolds{}

// Place implements HoldStore, auditing first.
func (a AuditedHolds) Place(ctx context.Context, h Hold) error {
	if err := h.Validate(); err != nil {
		return err
	}
	if err := a.log(ctx, h.UserID, h.PlacedBy, map[string]any{"action": "place", "reason": h.Reason,
		"placedAt": h.PlacedAt.UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	return a.Holds.Place(ctx, h)
}

// Release implements HoldStore, auditing first. Releasing a user with no
// hold writes no event.
func (a AuditedHolds) Release(ctx context.Context, userID string) error {
	h, ok, err := a.Holds.Get(ctx, userID)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	actor := Actor
	if p, ok := rbac.PrincipalFrom(ctx); ok && p.UserID != "" {
		actor = p.UserID
	}
	if err := a.log(ctx, userID, actor, map[string]any{"action": "release", "reason": h.Reason}); err != nil {
		return err
	}
	return a.Holds.Release(ctx, userID)
}

// Get implements HoldStore.
func (a AuditedHolds) Get(ctx context.Context, userID string) (Hold, bool, error) {
	return a.Holds.Get(ctx, userID)
}

// List implements HoldStore.
func (a AuditedHolds) List(ctx context.Context) ([]Hold, error) { return a.Holds.List(ctx) }

func (a AuditedHolds) log(ctx context.Context, userID, actor string, details map[string]any) error {
	if a.Audit == nil {
		return nil
	}
	if err := a.Audit.Log(ctx, audit.Event{Type: LegalHoldEvent, Subject: userID, Actor: actor, Details: details}); err != nil {
		return fmt.Errorf("retention: the hold was not changed: its audit event could not be written: %w", err)
	}
	return nil
}

// RequestsPolicy is the policy that deletes privacy requests finished
// (completed, cancelled or expired) longer than proof ago, the time they
// are kept as proof that each request was answered; 0 means
// privacy.DefaultProofPeriod, three years. requests is
// privacy.Service.FinishedRequests; the ledger of erased users is never
// touched, so erased users stay fenced and replayable.
func RequestsPolicy(requests Target, proof time.Duration) Policy {
	if proof <= 0 {
		proof = privacy.DefaultProofPeriod
	}
	return Policy{Name: "privacy_requests", Target: requests, MaxAge: proof, Action: Delete}
}
