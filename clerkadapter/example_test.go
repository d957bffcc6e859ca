package clerkadapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/rbac"
)

// An application wires the identity provider, session authentication,
// the webhook endpoint and rbac.Require on one mux. Here a fake Clerk
// stands in for the real one; in production cfg is a *clerk.ClientConfig
// carrying the instance's secret key.
func Example() {
	ctx := context.Background()
	clerkFake := clerktest.NewServer()
	defer clerkFake.Close()
	cfg := clerkFake.ClientConfig()

	verified := func(addr string) []steward.EmailAddress {
		return []steward.EmailAddress{{Address: addr, Verified: true}}
	}
	ada := clerkFake.AddUser(steward.User{EmailAddresses: verified("ada@example.com"), PublicMetadata: map[string]any{"role": "admin"}})
	bob := clerkFake.AddUser(steward.User{EmailAddresses: verified("bob@example.com"), PublicMetadata: map[string]any{"role": "user"}})

	prov := clerkadapter.New(cfg)
	roles := clerkadapter.NewLiveRoles(prov, nil) // roles read live, not from the token
	auth := clerkadapter.NewSessionAuth(cfg, &clerkadapter.SessionOptions{
		AuthorizedParties: []string{"http://localhost:3000"},
		Roles:             roles,
	})
	hooks, err := clerkadapter.NewWebhookHandler(clerkFake.WebhookSecret(), &clerkadapter.WebhookOptions{
		Roles: roles, // user.updated drops the cached role
	})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /api/chat", rbac.Require("chat:access")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})))
	mux.Handle("GET /api/admin/users", rbac.Require("admin:users")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		for _, err := range prov.ListUsers(r.Context(), steward.UserQuery{}) {
			if err != nil {
				http.Error(w, "identity provider unavailable", http.StatusBadGateway)
				return
			}
			n++
		}
		_ = json.NewEncoder(w).Encode(map[string]int{"users": n})
	})))
	mux.Handle("POST /webhooks/clerk", hooks)
	app := auth.Handler(mux)

	get := func(path, userID string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if userID != "" {
			r.Header.Set("Authorization", "Bearer "+clerkFake.SessionToken(userID))
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		return w.Code
	}
	fmt.Println("no session, chat:", get("/api/chat", ""))
	fmt.Println("bob, chat:", get("/api/chat", bob.ID))
	fmt.Println("bob, admin:", get("/api/admin/users", bob.ID))
	fmt.Println("ada, admin:", get("/api/admin/users", ada.ID))

	// An admin promotes Bob; Clerk's user.updated webhook reaches the app,
	// and Bob's next request sees the new role without a new session.
	if err := prov.UpdateMetadata(ctx, bob.ID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}}); err != nil {
		panic(err)
	}
	w := httptest.NewRecorder()
	app.ServeHTTP(w, clerkFake.NewWebhookRequest("/webhooks/clerk", "user.updated", bob.ID))
	fmt.Println("webhook:", w.Code)
	fmt.Println("bob, admin:", get("/api/admin/users", bob.ID))

	// Output:
	// no session, chat: 401
	// bob, chat: 200
	// bob, admin: 403
	// ada, admin: 200
	// webhook: 200
	// bob, admin: 200
}

// Retries and rate limiting are options; Clerk's errors come back typed.
func ExampleNew() {
	clerkFake := clerktest.NewServer()
	defer clerkFake.Close()
	u := clerkFake.AddUser(steward.User{FirstName: "Ada"})

	prov := clerkadapter.New(clerkFake.ClientConfig(),
		clerkadapter.WithMaxAttempts(4),
		clerkadapter.WithBackoff(10*time.Millisecond, time.Second),
		clerkadapter.WithRateLimit(90, 10*time.Second), // under a development instance's 100 per 10 s
	)

	clerkFake.FailNext(2, http.StatusServiceUnavailable, 0) // retried
	got, err := prov.GetUser(context.Background(), u.ID)
	fmt.Println(got.FirstName, err)

	clerkFake.FailNext(1, http.StatusUnprocessableEntity, 0) // not retried
	_, err = prov.GetUser(context.Background(), u.ID)
	var apiErr *clerkadapter.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	// Output:
	// Ada <nil>
	// 422 injected_fault
}

// Two processes each cache accounts for an hour; a role change
// invalidated in one reaches the other through the InvalidationLog they
// share (in production sqlstore's RoleInvalidations over their database,
// with Run going in each process rather than Poll called by hand).
func ExampleLiveRoles_Poll() {
	idp := steward.NewMemoryIdentity() // Clerk, as both processes see it
	idp.Put(steward.User{ID: "user_1", PublicMetadata: map[string]any{"role": "user"}})
	log := clerkadapter.NewMemoryInvalidations(nil)
	opts := &clerkadapter.LiveRolesOptions{TTL: time.Hour, Invalidations: log}
	here, there := clerkadapter.NewLiveRoles(idp, opts), clerkadapter.NewLiveRoles(idp, opts)
	ctx := context.Background()

	acct, _ := there.Account(ctx, "user_1")
	fmt.Println("there, before:", acct.Role)

	idp.Put(steward.User{ID: "user_1", PublicMetadata: map[string]any{"role": "admin"}})
	if err := here.InvalidateContext(ctx, "user_1"); err != nil { // as useradmin does after the change
		fmt.Println(err)
	}
	acct, _ = there.Account(ctx, "user_1")
	fmt.Println("there, before polling:", acct.Role)
	n, _ := there.Poll(ctx)
	acct, _ = there.Account(ctx, "user_1")
	fmt.Println("there, after polling", n, "invalidation:", acct.Role)
	// Output:
	// there, before: user
	// there, before polling: user
	// there, after polling 1 invalidation: admin
}
