package steward_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
)

// A MemoryIdentity holds users in memory; Put adds them as an
// administrator would, and the IdentityProvider methods read, update and
// delete them.
func ExampleMemoryIdentity() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{
		ID:             "user_123",
		EmailAddresses: []steward.EmailAddress{{ID: "idn_1", Address: "ada@example.com", Verified: true}},
		PrimaryEmailID: "idn_1",
		FirstName:      "Ada",
		PublicMetadata: map[string]any{"role": "user"},
	})

	u, err := idp.GetUser(ctx, "user_123")
	if err != nil {
		fmt.Println(err)
		return
	}
	email, _ := u.PrimaryEmail()
	fmt.Println(u.FirstName, email.Address, u.EmailVerified(), u.PublicMetadata["role"])

	err = idp.UpdateMetadata(ctx, "user_123", steward.MetadataPatch{
		Public: map[string]any{"role": "admin"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ = idp.GetUser(ctx, "user_123")
	fmt.Println("role:", u.PublicMetadata["role"])

	if err := idp.DeleteUser(ctx, "user_123"); err != nil {
		fmt.Println(err)
		return
	}
	_, err = idp.GetUser(ctx, "user_123")
	fmt.Println(errors.Is(err, steward.ErrUserNotFound))
	// Deleting again is not an error, so erasure can be retried.
	fmt.Println(idp.DeleteUser(ctx, "user_123"))
	// Output:
	// Ada ada@example.com true user
	// role: admin
	// true
	// <nil>
}

// ListUsers yields users oldest first; a UserQuery filters them and caps
// how many are yielded.
func ExampleMemoryIdentity_ListUsers() {
	ctx := context.Background()
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	idp := steward.NewMemoryIdentity()
	for i, id := range []string{"user_c", "user_a", "user_b"} {
		idp.Put(steward.User{ID: id, CreatedAt: start.AddDate(0, i, 0)})
	}

	q := steward.UserQuery{CreatedBefore: start.AddDate(0, 2, 0), PageSize: 1}
	for u, err := range idp.ListUsers(ctx, q) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(u.ID, u.CreatedAt.Format(time.DateOnly))
	}
	// Output:
	// user_c 2025-01-01
	// user_a 2025-02-01
}

// WithNow gives a MemoryIdentity a clock, so timestamps in tests are
// predictable.
func ExampleWithNow() {
	now := time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)
	idp := steward.NewMemoryIdentity(steward.WithNow(func() time.Time { return now }))
	idp.Put(steward.User{ID: "user_1"})

	u, _ := idp.GetUser(context.Background(), "user_1")
	fmt.Println(u.CreatedAt, u.UpdatedAt)
	// Output:
	// 2025-06-01 12:00:00 +0000 UTC 2025-06-01 12:00:00 +0000 UTC
}

// MergeMetadata applies a patch the way IdentityProvider.UpdateMetadata
// does: nested objects merge, other values replace, nil removes.
func ExampleMergeMetadata() {
	current := map[string]any{
		"role":    "user",
		"profile": map[string]any{"theme": "dark", "lang": "en"},
		"tags":    []any{"beta"},
	}
	patch := map[string]any{
		"role":    "admin",                                  // replaced
		"profile": map[string]any{"lang": nil, "tz": "UTC"}, // merged; lang removed
		"tags":    nil,                                      // removed
	}
	fmt.Println(steward.MergeMetadata(current, patch))
	fmt.Println(current) // unchanged
	// Output:
	// map[profile:map[theme:dark tz:UTC] role:admin]
	// map[profile:map[lang:en theme:dark] role:user tags:[beta]]
}

// ValidateUserID guards user IDs before they reach a URL, a query or a
// log line; its error never repeats the ID.
func ExampleValidateUserID() {
	fmt.Println(steward.ValidateUserID("user_2NNEqL2nrIRdJ194ndJqAHwEfxC"))
	err := steward.ValidateUserID("user_1' OR '1'='1")
	fmt.Println(err)
	fmt.Println(errors.Is(err, steward.ErrInvalidUserID))
	// Output:
	// <nil>
	// steward: invalid user ID: disallowed character at byte 6
	// true
}
