package clerkadapter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/identitytest"
)

// sharedKey saves generating an RSA key per fake server.
var sharedKey = sync.OnceValue(clerktest.GenerateKey)

// newServer starts a fake Clerk for one test.
func newServer(t testing.TB, opts ...clerktest.Option) *clerktest.Server {
	t.Helper()
	srv := clerktest.NewServer(append([]clerktest.Option{clerktest.WithSigningKey(sharedKey())}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// harness runs the conformance suite on a Provider over a fake Clerk:
// users are seeded through the fake (which, unlike the real API, keeps
// the creation time it is given) and read back through the Provider.
// Like Clerk, the fake keeps last-active times at day precision only, so
// the harness does not claim to keep them.
type harness struct {
	srv  *clerktest.Server
	prov *clerkadapter.Provider
}

func (h *harness) Provider() steward.IdentityProvider { return h.prov }

func (h *harness) CreateUser(ctx context.Context, u steward.User) (steward.User, error) {
	stored := h.srv.AddUser(u)
	return h.prov.GetUser(ctx, stored.ID)
}

func (h *harness) Capabilities() identitytest.Capabilities {
	return identitytest.Capabilities{KeepsCreatedAt: true}
}

func (h *harness) Close() { h.srv.Close() }

func TestConformance(t *testing.T) {
	identitytest.RunConformance(t, func(ctx context.Context, t *testing.T) (identitytest.Harness, error) {
		srv := newServer(t)
		return &harness{srv: srv, prov: clerkadapter.New(srv.ClientConfig(), clerkadapter.WithBackoff(time.Millisecond, 10*time.Millisecond))}, nil
	})
}
