package retention

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
)

// LeaseName is the name of the lease an Engine takes.
const LeaseName = "retention"

// DefaultLeaseTTL is the lease duration WithLease uses when given none.
const DefaultLeaseTTL = time.Minute

// ErrLeaseHeld reports that another run holds the retention lease. The
// error Run returns matches steward.ErrLeaseHeld too.
var ErrLeaseHeld = errors.New("retention: another run holds the lease")

// ErrLeaseLost reports that a run lost its lease midway (it expired and
// another runner took it, or it could not be renewed before it expired);
// the run stopped before its next destructive step, and what it did stays
// done. The error Run returns matches steward.ErrLeaseLost too when the
// Leaser reported the loss.
var ErrLeaseLost = errors.New("retention: the lease was lost during the run")

// holder keeps the retention lease for one Run. It renews the lease in
// the background every third of its ttl, so a slow batch or notifier
// does not let it lapse, and on every fence, so each destructive step
// starts with the lease just confirmed by the Leaser. When the lease is
// lost it cancels the run's context with a cause wrapping ErrLeaseLost.
type holder struct {
	leaser steward.Leaser
	ttl    time.Duration
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	lease   steward.Lease
	renewed time.Time // local time the last successful renewal was sent
	lost    error
}

// hold acquires the lease and starts renewing it; the returned context is
// canceled when the lease is lost or release is called.
func hold(ctx context.Context, l steward.Leaser, owner string, ttl time.Duration) (*holder, context.Context, error) {
	sent := time.Now()
	lease, err := l.AcquireLease(ctx, LeaseName, owner, ttl)
	if errors.Is(err, steward.ErrLeaseHeld) {
		return nil, ctx, fmt.Errorf("%w (%w)", ErrLeaseHeld, err)
	}
	if err != nil {
		return nil, ctx, fmt.Errorf("retention: taking the lease: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	h := &holder{leaser: l, ttl: ttl, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}),
		lease: lease, renewed: sent}
	go h.renewLoop(ctx)
	return h, ctx, nil
}

func (h *holder) renewLoop(ctx context.Context) {
	defer close(h.done)
	tick := time.NewTicker(max(h.ttl/3, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = h.renew(ctx) // a loss cancels ctx; other failures are retried
	}
}

// renew extends the lease. It returns an error wrapping ErrLeaseLost when
// the Leaser says the lease changed hands, or when it could not be renewed
// for a whole ttl (by this process's clock, measured from when the last
// successful renewal was sent, so never later than the store's expiry).
func (h *holder) renew(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return h.lost
	}
	sent := time.Now()
	next, err := h.leaser.RenewLease(ctx, h.lease, h.ttl)
	switch {
	case err == nil:
		h.lease, h.renewed = next, sent
		return nil
	case errors.Is(err, steward.ErrLeaseLost):
		return h.lose(err)
	case time.Since(h.renewed) >= h.ttl:
		return h.lose(fmt.Errorf("it could not be renewed before it expired: %w", err))
	}
	return fmt.Errorf("renewing the lease: %w", err)
}

func (h *holder) lose(err error) error {
	h.lost = fmt.Errorf("%w: %w", ErrLeaseLost, err)
	h.cancel(h.lost)
	return h.lost
}

// fence confirms the lease before a destructive step: nil when the Leaser
// renewed it just now; otherwise the step must not run.
func (h *holder) fence(ctx context.Context) error {
	if h == nil {
		return nil
	}
	if err := h.lostErr(); err != nil {
		return err
	}
	return h.renew(ctx)
}

func (h *holder) lostErr() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// release stops the renewals and frees the lease unless it was lost.
func (h *holder) release(ctx context.Context) {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		// A lease that is not released expires after its ttl.
		_ = h.leaser.ReleaseLease(rctx, h.lease)
		cancel()
	}
	h.cancel(nil)
}

// recordTimeout bounds the writes that record what a run already did
// (a sent notice, a release) when the run's context is done.
const recordTimeout = 30 * time.Second

// recording returns a context for recording what was done: ctx itself
// while it is live, otherwise one detached from its cancellation and
// bounded by recordTimeout.
func recording(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
