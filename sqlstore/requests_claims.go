package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// ClaimRequest implements privacy.RequestClaimer with one conditional
// UPDATE that also increments the version, fencing off an earlier holder.
func (r *Requests) ClaimRequest(ctx context.Context, id, owner string, ttl time.Duration) (privacy.Request, error) {
	if err := steward.ValidateLease(id, owner, ttl); err != nil {
		return privacy.Request{}, err
	}
	q := r.d.Rebind(`UPDATE steward_privacy_requests SET claim_owner = ?, claim_expires = ` + expiresIn(r.d) + `, version = version + 1
		WHERE id = ? AND (claim_owner = '' OR claim_expires <= ` + dbNow(r.d) + `)
		RETURNING ` + requestReadColumns)
	req, err := scanRequest(r.db.QueryRowContext(ctx, q, owner, ttlArg(r.d, ttl), id))
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := r.Get(ctx, id); gerr != nil {
			return privacy.Request{}, gerr
		}
		return privacy.Request{}, fmt.Errorf("%w: %q", privacy.ErrRequestClaimed, id)
	}
	if err != nil {
		return privacy.Request{}, fmt.Errorf("sqlstore: claiming request %q: %w", id, err)
	}
	return req, nil
}

// RenewClaim implements privacy.RequestClaimer.
func (r *Requests) RenewClaim(ctx context.Context, id, owner string, ttl time.Duration) error {
	if err := steward.ValidateLease(id, owner, ttl); err != nil {
		return err
	}
	res, err := r.db.ExecContext(ctx, r.d.Rebind(`UPDATE steward_privacy_requests SET claim_expires = `+expiresIn(r.d)+`
		WHERE id = ? AND claim_owner = ?`), ttlArg(r.d, ttl), id, owner)
	if err != nil {
		return fmt.Errorf("sqlstore: renewing the claim on request %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: renewing the claim on request %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("%w: %q", privacy.ErrClaimLost, id)
	}
	return nil
}

// ReleaseClaim implements privacy.RequestClaimer.
func (r *Requests) ReleaseClaim(ctx context.Context, id, owner string) error {
	if owner == "" {
		return nil
	}
	_, err := r.db.ExecContext(ctx, r.d.Rebind(`UPDATE steward_privacy_requests SET claim_owner = '', claim_expires = ?
		WHERE id = ? AND claim_owner = ?`), pastArg(r.d), id, owner)
	if err != nil {
		return fmt.Errorf("sqlstore: releasing the claim on request %q: %w", id, err)
	}
	return nil
}
