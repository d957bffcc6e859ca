package clerkadapter

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerk/clerk-sdk-go/v2/jwks"
)

// keySet is one fetched JWKS: the RS256 keys by key ID.
type keySet struct {
	keys    map[string]*rsa.PublicKey
	fetched time.Time
}

// keyCache holds the instance's JWKS. Lookups of known key IDs read an
// atomic pointer and take no lock. An unknown key ID, or a set older than
// maxAge, triggers a fetch, and concurrent requests share one fetch.
//
// Successful fetches are spaced by minInterval, so a flood of tokens with
// made-up key IDs costs at most one JWKS request per minInterval. A
// failed fetch is retried soon instead: the next may go after
// retryInterval, doubling with each failure in a row up to minInterval,
// so one failure at start-up does not reject every valid token for the
// whole interval.
//
// A caller waits for a fetch no longer than its context allows; the fetch
// itself, which serves every waiter, runs to its own timeout.
type keyCache struct {
	client        *jwks.Client
	now           func() time.Time
	minInterval   time.Duration
	retryInterval time.Duration
	maxAge        time.Duration
	timeout       time.Duration

	set atomic.Pointer[keySet]

	mu          sync.Mutex
	inflight    *keyFetch // the fetch under way, or nil
	lastSuccess time.Time // when the last successful fetch started
	failures    int       // failed fetches since the last success
	nextAttempt time.Time // after a failure, when the next fetch may go
}

// keyFetch is one JWKS fetch, shared by the requests that wait on it.
type keyFetch struct {
	done chan struct{}
	set  *keySet
	err  error
}

// errRefreshTooSoon reports that a fetch was wanted within minInterval of
// the last successful one.
var errRefreshTooSoon = errors.New("the JWKS was fetched less than the minimum refresh interval ago")

// key returns the public key with the given ID.
func (c *keyCache) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s := c.set.Load()
	if s != nil {
		if k, ok := s.keys[kid]; ok {
			if c.now().Sub(s.fetched) < c.maxAge {
				return k, nil
			}
			// Stale: look for a newer set, but keep trusting this key if
			// the fetch fails or is too soon.
			fresh, err := c.refresh(ctx, s)
			if err != nil {
				return k, nil
			}
			if k, ok := fresh.keys[kid]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("%w: %w: its key was removed from the JWKS", ErrInvalidToken, ErrUnknownKey)
		}
	}
	fresh, err := c.refresh(ctx, s)
	if err != nil {
		if errors.Is(err, errRefreshTooSoon) {
			return nil, fmt.Errorf("%w: %w (%v)", ErrInvalidToken, ErrUnknownKey, err)
		}
		return nil, err
	}
	if k, ok := fresh.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalidToken, ErrUnknownKey)
}

// refresh fetches the JWKS unless another caller replaced seen meanwhile,
// joining a fetch under way, and keeping to the spacing of fetches.
func (c *keyCache) refresh(ctx context.Context, seen *keySet) (*keySet, error) {
	c.mu.Lock()
	if cur := c.set.Load(); cur != seen {
		c.mu.Unlock()
		return cur, nil // fetched while this caller waited
	}
	f := c.inflight
	if f == nil {
		now := c.now()
		switch {
		case c.failures > 0 && now.Before(c.nextAttempt):
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: the last fetch failed; the next may go in %v",
				ErrKeysUnavailable, c.nextAttempt.Sub(now).Round(time.Millisecond))
		case c.failures == 0 && !c.lastSuccess.IsZero() && now.Sub(c.lastSuccess) < c.minInterval:
			c.mu.Unlock()
			return nil, errRefreshTooSoon
		}
		f = &keyFetch{done: make(chan struct{})}
		c.inflight = f
		// The fetch serves every waiting request, so one client going
		// away must not cancel it.
		go c.fetch(context.WithoutCancel(ctx), f, now)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.set, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the JWKS: %w", ErrKeysUnavailable, ctx.Err())
	}
}

// fetch runs one fetch begun at start and records its outcome.
func (c *keyCache) fetch(ctx context.Context, f *keyFetch, start time.Time) {
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	set, err := c.client.Get(fctx, &jwks.GetParams{})
	if err != nil {
		f.err = fmt.Errorf("%w: %w", ErrKeysUnavailable, stripURL(err))
	} else {
		f.set = &keySet{keys: make(map[string]*rsa.PublicKey, len(set.Keys)), fetched: start}
		for _, k := range set.Keys {
			if k == nil || k.KeyID == "" || k.Algorithm != "RS256" || (k.Use != "" && k.Use != "sig") {
				continue
			}
			if pub, ok := k.Key.(*rsa.PublicKey); ok {
				f.set.keys[k.KeyID] = pub
			}
		}
	}
	c.mu.Lock()
	if f.err != nil {
		c.failures++
		c.nextAttempt = c.now().Add(c.retryWait(c.failures))
	} else {
		c.failures = 0
		c.lastSuccess = start
		c.set.Store(f.set)
	}
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}

// retryWait is the wait after the n-th failed fetch in a row:
// retryInterval, doubling, at most minInterval.
func (c *keyCache) retryWait(n int) time.Duration {
	d := c.retryInterval
	for i := 1; i < n && d < c.minInterval; i++ {
		d *= 2
	}
	return min(d, c.minInterval)
}
