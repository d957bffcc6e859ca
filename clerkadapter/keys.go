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
// maxAge, triggers a fetch, but never more often than minInterval, and
// concurrent requests share one fetch: a flood of tokens with made-up key
// IDs costs at most one JWKS request per minInterval.
type keyCache struct {
	client      *jwks.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration
	timeout     time.Duration

	set atomic.Pointer[keySet]

	mu          sync.Mutex // held while fetching
	lastAttempt time.Time
}

// errRefreshTooSoon reports that a fetch was wanted within minInterval of
// the last one.
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

// refresh fetches the JWKS unless another caller replaced seen meanwhile
// or the last attempt was within minInterval.
func (c *keyCache) refresh(ctx context.Context, seen *keySet) (*keySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.set.Load(); cur != seen {
		return cur, nil // fetched while this caller waited
	}
	now := c.now()
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval {
		return nil, errRefreshTooSoon
	}
	c.lastAttempt = now
	// The fetch serves every waiting request, so one client going away
	// must not cancel it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	set, err := c.client.Get(fctx, &jwks.GetParams{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, stripURL(err))
	}
	fresh := &keySet{keys: make(map[string]*rsa.PublicKey, len(set.Keys)), fetched: now}
	for _, k := range set.Keys {
		if k == nil || k.KeyID == "" || k.Algorithm != "RS256" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			fresh.keys[k.KeyID] = pub
		}
	}
	c.set.Store(fresh)
	return fresh, nil
}
