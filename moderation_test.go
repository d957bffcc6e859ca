package steward_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stewardlabs/steward"
)

func TestMemoryIdentityModeration(t *testing.T) {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_a"})
	var mod steward.Moderator = idp
	steps := []struct {
		name              string
		do                func(context.Context, string) error
		wantBan, wantLock bool
	}{
		{"ban", mod.Ban, true, false},
		{"ban again is idempotent", mod.Ban, true, false},
		{"lock", mod.Lock, true, true},
		{"unban", mod.Unban, false, true},
		{"unlock", mod.Unlock, false, false},
	}
	for _, s := range steps {
		if err := s.do(ctx, "user_a"); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		u, _ := idp.GetUser(ctx, "user_a")
		if u.Banned != s.wantBan || u.Locked != s.wantLock {
			t.Errorf("after %s: banned %v locked %v, want %v %v", s.name, u.Banned, u.Locked, s.wantBan, s.wantLock)
		}
	}
	if err := mod.Ban(ctx, "user_missing"); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("Ban(missing) = %v, want ErrUserNotFound", err)
	}
	if err := mod.Lock(ctx, "bad id"); !errors.Is(err, steward.ErrInvalidUserID) {
		t.Errorf("Lock(bad id) = %v, want ErrInvalidUserID", err)
	}
}
