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

// The fake answers as Clerk's Backend API documents: list filters, the
// per-user update limit with Retry-After, and errors from Clerk's
// catalogue.
func Example_documentedBehaviour() {
	ctx := context.Background()
	srv := clerktest.NewServer()
	defer srv.Close()
	srv.AddUser(steward.User{FirstName: "Ada", EmailAddresses: []steward.EmailAddress{{Address: "ada@example.com", Verified: true}}},
		clerktest.UserUsername("ada"))
	bob := srv.AddUser(steward.User{FirstName: "Bob"}, clerktest.UserUsername("bob"))
	users := user.NewClient(srv.ClientConfig())

	list, _ := users.List(ctx, &user.ListParams{Query: clerk.String("ADA")})
	fmt.Println("query ADA:", len(list.Users), *list.Users[0].FirstName)

	_, err := users.Update(ctx, bob.ID, &user.UpdateParams{Username: clerk.String("ada")})
	var apiErr *clerk.APIErrorResponse
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.HTTPStatusCode, apiErr.Errors[0].Code)
	}

	// The rejected update counts towards the limit of 10 per 10 s too.
	for range clerktest.UserUpdateLimit - 1 {
		if _, err := users.UpdateMetadata(ctx, bob.ID, &user.UpdateMetadataParams{}); err != nil {
			panic(err)
		}
	}
	_, err = users.UpdateMetadata(ctx, bob.ID, &user.UpdateMetadataParams{})
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.HTTPStatusCode, apiErr.Errors[0].Code, apiErr.Response.Header.Get("Retry-After") != "")
	}
	// Output:
	// query ADA: 1 Ada
	// 422 form_identifier_exists
	// 429 too_many_requests true
}
