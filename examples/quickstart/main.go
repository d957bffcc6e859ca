// Command quickstart shows Steward's identity port end to end with the
// in-memory provider: create a user, read it back, change its role in
// metadata, list users and delete one. It needs no account, no network
// and no setup:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stewardlabs/steward"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run walks through the identity port against idp, printing each step.
func run(ctx context.Context, w io.Writer) error {
	// A fixed clock keeps the output the same on every run.
	clock := time.Date(2025, time.January, 6, 9, 0, 0, 0, time.UTC)
	idp := steward.NewMemoryIdentity(steward.WithNow(func() time.Time { return clock }))

	fmt.Fprintln(w, "Steward quickstart: the identity port, backed by MemoryIdentity")

	step(w, 1, "Create two users (Put is how fixtures get in; Clerk users come from Clerk)")
	idp.Put(steward.User{
		ID:             "user_ada",
		EmailAddresses: []steward.EmailAddress{{ID: "idn_ada", Address: "ada@example.com", Verified: true}},
		PrimaryEmailID: "idn_ada",
		FirstName:      "Ada",
		LastName:       "Lovelace",
		CreatedAt:      clock.AddDate(0, -2, 0),
		PublicMetadata: map[string]any{"role": "user", "profile": map[string]any{"theme": "dark"}},
	})
	idp.Put(steward.User{
		ID:             "user_grace",
		EmailAddresses: []steward.EmailAddress{{ID: "idn_grace", Address: "grace@example.com"}},
		PrimaryEmailID: "idn_grace",
		FirstName:      "Grace",
		LastName:       "Hopper",
		CreatedAt:      clock.AddDate(0, -1, 0),
		PublicMetadata: map[string]any{"role": "user"},
	})
	fmt.Fprintln(w, "   created user_ada and user_grace")

	step(w, 2, "Read a user back")
	ada, err := idp.GetUser(ctx, "user_ada")
	if err != nil {
		return fmt.Errorf("reading the user: %w", err)
	}
	describe(w, ada)

	step(w, 3, "Promote to admin: the patch deep-merges, so the profile is kept")
	err = idp.UpdateMetadata(ctx, "user_ada", steward.MetadataPatch{
		Public: map[string]any{"role": "admin", "profile": map[string]any{"lang": "en"}},
	})
	if err != nil {
		return fmt.Errorf("updating metadata: %w", err)
	}
	if ada, err = idp.GetUser(ctx, "user_ada"); err != nil {
		return fmt.Errorf("reading the user again: %w", err)
	}
	describe(w, ada)

	step(w, 4, "List users, oldest first")
	for u, err := range idp.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			return fmt.Errorf("listing users: %w", err)
		}
		describe(w, u)
	}

	step(w, 5, "Delete a user; deleting again is not an error, so erasure can be retried")
	for range 2 {
		if err := idp.DeleteUser(ctx, "user_grace"); err != nil {
			return fmt.Errorf("deleting the user: %w", err)
		}
	}
	_, err = idp.GetUser(ctx, "user_grace")
	if !errors.Is(err, steward.ErrUserNotFound) {
		return fmt.Errorf("reading a deleted user: got %v, want ErrUserNotFound", err)
	}
	fmt.Fprintln(w, "   user_grace is gone:", err)

	step(w, 6, "Bad input is refused with a clear error")
	_, err = idp.GetUser(ctx, "user_1' OR '1'='1")
	fmt.Fprintln(w, "  ", err)
	err = idp.UpdateMetadata(ctx, "user_ada", steward.MetadataPatch{})
	fmt.Fprintln(w, "  ", err)

	fmt.Fprintln(w, "Done.")
	return nil
}

func step(w io.Writer, n int, title string) {
	fmt.Fprintf(w, "\n%d. %s\n", n, title)
}

// describe prints one line per user.
func describe(w io.Writer, u steward.User) {
	email, _ := u.PrimaryEmail()
	verified := "unverified"
	if u.EmailVerified() {
		verified = "verified"
	}
	fmt.Fprintf(w, "   %-10s %-6s %-18s %-10s created %s  role=%v",
		u.ID, u.FirstName, email.Address, verified,
		u.CreatedAt.Format(time.DateOnly), u.PublicMetadata["role"])
	if p, ok := u.PublicMetadata["profile"]; ok {
		fmt.Fprintf(w, " profile=%v", p)
	}
	fmt.Fprintln(w)
}
