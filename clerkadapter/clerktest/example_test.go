package clerktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/user"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

// The official SDK talks to the fake server unchanged.
func Example() {
	ctx := context.Background()
	srv := clerktest.NewServer()
	defer srv.Close()

	u := srv.AddUser(steward.User{
		EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}},
		PublicMetadata: map[string]any{"role": "admin"},
	})

	users := user.NewClient(srv.ClientConfig())
	got, err := users.Get(ctx, u.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.EmailAddresses[0].EmailAddress, got.EmailAddresses[0].Verification.Status, string(got.PublicMetadata))

	srv.FailNext(1, http.StatusTooManyRequests, time.Second)
	_, err = users.Get(ctx, u.ID)
	var apiErr *clerk.APIErrorResponse
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.HTTPStatusCode, apiErr.Errors[0].Code, "Retry-After:", apiErr.Response.Header.Get("Retry-After"))
	}

	claims, err := jwt.Verify(ctx, &jwt.VerifyParams{
		Token:      srv.SessionToken(u.ID),
		JWKSClient: jwks.NewClient(srv.ClientConfig()),
	})
	fmt.Println(err == nil && claims.Subject == u.ID)
	// Output:
	// ada@example.com verified {"role":"admin"}
	// 429 too_many_requests Retry-After: 1
	// true
}
