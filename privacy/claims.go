package privacy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
)

// RequestClaimer is the RequestStore capability that lets several
// processes share one store: a claim on a request, held for a ttl judged
// by the store's clock (the database's), so that one worker at a time
// runs a request's steps. The Service claims a request before running
// it, renews the claim while a step runs (a heartbeat) and releases it
// when the run ends. MemoryRequestStore and sqlstore's Requests implement
// it; a RequestStore without it is run by one worker at a time only
// within one Service.
type RequestClaimer interface {
	// ClaimRequest gives owner the request id until the store's now plus
	// ttl, when nobody holds it or its holder's claim expired, and
	// returns the request with ClaimedBy and ClaimExpires set. Claiming
	// increments the stored Version, so an Update by an earlier holder
	// fails with ErrConflict: that is how a worker that lost its claim
	// is fenced off. It fails with an error matching ErrRequestClaimed
	// when another claim is live (even one of the same owner), and
	// ErrRequestNotFound.
	ClaimRequest(ctx context.Context, id, owner string, ttl time.Duration) (Request, error)
	// RenewClaim extends owner's claim on id to the store's now plus
	// ttl, leaving Version alone. It fails with an error matching
	// steward.ErrLeaseLost when owner no longer holds the claim.
	RenewClaim(ctx context.Context, id, owner string, ttl time.Duration) error
	// ReleaseClaim ends owner's claim on id, leaving Version alone, so
	// another worker may claim it at once. Releasing a claim owner does
	// not hold does nothing and returns nil.
	ReleaseClaim(ctx context.Context, id, owner string) error
}

// ErrRequestClaimed is matched when another worker holds a live claim on
// a request. It also matches steward.ErrLeaseHeld.
var ErrRequestClaimed = fmt.Errorf("privacy: request claimed by another worker: %w", steward.ErrLeaseHeld)

// ErrClaimLost is matched when a run stopped because its claim on the
// request expired and another worker took it over. It also matches
// steward.ErrLeaseLost. Nothing is lost: the other worker carries on.
var ErrClaimLost = fmt.Errorf("privacy: the claim on the request was lost: %w", steward.ErrLeaseLost)

// DefaultClaimTTL is how long a claim lasts unless renewed; a running
// worker renews it every third of that.
const DefaultClaimTTL = 30 * time.Second

// WithClaimTTL sets how long a worker's claim on a request lasts unless
// renewed (default DefaultClaimTTL). A worker that dies is replaced
// after at most this long; a live one renews its claim every third of it
// and stops if it cannot renew it in time.
func WithClaimTTL(ttl time.Duration) Option {
	return func(s *Service) error {
		if ttl < 10*time.Millisecond {
			return fmt.Errorf("%w: WithClaimTTL: %v is under 10ms", ErrInvalidConfig, ttl)
		}
		s.claimTTL = ttl
		return nil
	}
}

// claimWait is how often a run waiting for another worker's claim looks
// again, at most.
const claimWait = 250 * time.Millisecond

// runClaim is a run's hold on a request: its owner name, and the context
// the heartbeat cancels when the claim is lost.
type runClaim struct {
	owner string
	stop  func()
	lost  func() bool
	ctx   context.Context
}

// claim takes req for this run and starts the heartbeat. With wait, it
// waits while another worker holds the request, until that claim ends
// or ctx does; without, it fails with ErrRequestClaimed. req becomes the
// request as claimed (or, if it completed meanwhile, as completed, with
// errAlreadyCompleted).
func (s *Service) claim(ctx context.Context, req *Request, wait bool) (*runClaim, error) {
	owner := fmt.Sprintf("%s/%d", s.owner, s.runs.Add(1))
	for {
		start := time.Now()
		r, err := s.claimer.ClaimRequest(ctx, req.ID, owner, s.claimTTL)
		if err == nil {
			*req = r
			if req.Kind == KindErasure {
				req.Steps = s.plan(req.Steps)
			}
			return s.heartbeat(ctx, req.ID, owner, start), nil
		}
		if !errors.Is(err, ErrRequestClaimed) || !wait {
			return nil, err
		}
		fresh, gerr := s.requests.Get(ctx, req.ID)
		if gerr != nil {
			return nil, gerr
		}
		switch fresh.Status {
		case StatusCompleted, StatusExpired:
			*req = fresh
			return nil, errAlreadyCompleted
		case StatusCancelled:
			*req = fresh
			return nil, fmt.Errorf("%w: request %q", ErrCancelled, req.ID)
		}
		pause := claimWait
		if left := time.Until(fresh.ClaimExpires); left > 0 && left < pause {
			pause = left
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another worker's run of request %q: %w", req.ID, context.Cause(ctx))
		case <-time.After(pause):
		}
	}
}

// heartbeat keeps the claim alive while the run goes (steward.KeepAlive):
// it renews it every third of its ttl, and cancels the run's context
// when the claim is lost or its local deadline passes, so a worker that
// cannot renew in time stops before another may take over. stop ends it
// and releases the claim unless it was lost.
func (s *Service) heartbeat(ctx context.Context, id, owner string, claimedAt time.Time) *runClaim {
	kctx, stopKeepAlive := steward.KeepAlive(ctx, s.claimTTL, claimedAt, func(ctx context.Context) error {
		return s.claimer.RenewClaim(ctx, id, owner, s.claimTTL)
	})
	var once sync.Once
	return &runClaim{
		owner: owner, ctx: kctx,
		lost: func() bool { return errors.Is(context.Cause(kctx), steward.ErrLeaseLost) },
		stop: func() {
			once.Do(func() {
				if stopKeepAlive() == nil {
					_ = s.claimer.ReleaseClaim(context.WithoutCancel(ctx), id, owner)
				}
			})
		},
	}
}

// localClaims is the RequestClaimer of a RequestStore that has none:
// claims in this process's memory, so that one Service still runs a
// request once at a time. Other processes do not see them.
type localClaims struct {
	store RequestStore
	mu    sync.Mutex
	held  map[string]localClaim
}

type localClaim struct {
	owner   string
	expires time.Time
}

func (l *localClaims) ClaimRequest(ctx context.Context, id, owner string, ttl time.Duration) (Request, error) {
	r, err := l.store.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if c, ok := l.held[id]; ok && now.Before(c.expires) {
		return Request{}, fmt.Errorf("%w: %q", ErrRequestClaimed, id)
	}
	l.held[id] = localClaim{owner: owner, expires: now.Add(ttl)}
	r.ClaimedBy, r.ClaimExpires = owner, now.Add(ttl)
	return r, nil
}

func (l *localClaims) RenewClaim(_ context.Context, id, owner string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.held[id]
	if !ok || c.owner != owner {
		return fmt.Errorf("%w: %q", ErrClaimLost, id)
	}
	l.held[id] = localClaim{owner: owner, expires: time.Now().Add(ttl)}
	return nil
}

func (l *localClaims) ReleaseClaim(_ context.Context, id, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.held[id]; ok && c.owner == owner {
		delete(l.held, id)
	}
	return nil
}
