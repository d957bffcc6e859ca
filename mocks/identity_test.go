package mocks_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/mocks"
)

// errUnverified is returned by grantAdmin for a user whose primary email
// is not verified.
var errUnverified = errors.New("primary email not verified")

// grantAdmin is code an application might write against the port: it
// makes a user an admin, but only once their email is verified.
func grantAdmin(ctx context.Context, idp steward.IdentityProvider, userID string) error {
	u, err := idp.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("grant admin: %w", err)
	}
	if !u.EmailVerified() {
		return fmt.Errorf("grant admin: %w", errUnverified)
	}
	return idp.UpdateMetadata(ctx, userID, steward.MetadataPatch{Public: map[string]any{"role": "admin"}})
}

// countAdmins counts users whose public metadata says they are admins.
func countAdmins(ctx context.Context, idp steward.IdentityProvider) (int, error) {
	n := 0
	for u, err := range idp.ListUsers(ctx, steward.UserQuery{}) {
		if err != nil {
			return n, err
		}
		if u.PublicMetadata["role"] == "admin" {
			n++
		}
	}
	return n, nil
}

func verifiedUser(id string) steward.User {
	return steward.User{
		ID:             id,
		EmailAddresses: []steward.EmailAddress{{ID: "idn_1", Address: "ada@example.com", Verified: true}},
		PrimaryEmailID: "idn_1",
	}
}

func TestGrantAdminWithMock(t *testing.T) {
	adminPatch := steward.MetadataPatch{Public: map[string]any{"role": "admin"}}
	tests := []struct {
		name   string
		expect func(idp *mocks.MockIdentityProvider)
		want   error // nil, or an error grantAdmin's result must wrap
	}{
		{
			name: "a verified user is promoted",
			expect: func(idp *mocks.MockIdentityProvider) {
				gomock.InOrder(
					idp.EXPECT().GetUser(gomock.Any(), "user_1").Return(verifiedUser("user_1"), nil),
					idp.EXPECT().UpdateMetadata(gomock.Any(), "user_1", adminPatch).Return(nil),
				)
			},
		},
		{
			name: "an unverified user is not promoted",
			expect: func(idp *mocks.MockIdentityProvider) {
				u := verifiedUser("user_1")
				u.EmailAddresses[0].Verified = false
				idp.EXPECT().GetUser(gomock.Any(), "user_1").Return(u, nil)
				// No UpdateMetadata expectation: a call would fail the test.
			},
			want: errUnverified,
		},
		{
			name: "a missing user is reported as ErrUserNotFound",
			expect: func(idp *mocks.MockIdentityProvider) {
				idp.EXPECT().GetUser(gomock.Any(), "user_1").Return(steward.User{}, steward.ErrUserNotFound)
			},
			want: steward.ErrUserNotFound,
		},
		{
			name: "a failed update is returned",
			expect: func(idp *mocks.MockIdentityProvider) {
				idp.EXPECT().GetUser(gomock.Any(), "user_1").Return(verifiedUser("user_1"), nil)
				idp.EXPECT().UpdateMetadata(gomock.Any(), "user_1", gomock.Any()).
					DoAndReturn(func(ctx context.Context, _ string, p steward.MetadataPatch) error {
						if p.Public["role"] != "admin" {
							t.Errorf("patch sets role %v, want admin", p.Public["role"])
						}
						return context.DeadlineExceeded
					})
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctrl := gomock.NewController(t) // checks every expectation was met at the end of t
			idp := mocks.NewMockIdentityProvider(ctrl)
			tt.expect(idp)

			err := grantAdmin(t.Context(), idp, "user_1")
			if tt.want == nil && err != nil {
				t.Fatalf("grantAdmin: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("grantAdmin: %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
}

// seqOf turns users, then an optional error, into what ListUsers returns.
func seqOf(users []steward.User, err error) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		for _, u := range users {
			if !yield(u, nil) {
				return
			}
		}
		if err != nil {
			yield(steward.User{}, err)
		}
	}
}

func TestCountAdminsWithMock(t *testing.T) {
	admin := verifiedUser("user_a")
	admin.PublicMetadata = map[string]any{"role": "admin"}
	users := []steward.User{admin, verifiedUser("user_b"), admin}

	t.Run("every page is counted", func(t *testing.T) {
		idp := mocks.NewMockIdentityProvider(gomock.NewController(t))
		idp.EXPECT().ListUsers(gomock.Any(), steward.UserQuery{}).Return(seqOf(users, nil))
		n, err := countAdmins(t.Context(), idp)
		if err != nil || n != 2 {
			t.Errorf("countAdmins = %d, %v; want 2, nil", n, err)
		}
	})
	t.Run("an error during listing stops the count", func(t *testing.T) {
		idp := mocks.NewMockIdentityProvider(gomock.NewController(t))
		idp.EXPECT().ListUsers(gomock.Any(), gomock.Any()).Return(seqOf(users[:1], context.Canceled))
		n, err := countAdmins(t.Context(), idp)
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Errorf("countAdmins = %d, %v; want 1, context.Canceled", n, err)
		}
	})
}
