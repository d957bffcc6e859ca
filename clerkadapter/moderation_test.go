package clerkadapter_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
)

func TestProviderModeration(t *testing.T) {
	srv := clerktest.NewServer()
	defer srv.Close()
	u := srv.AddUser(steward.User{FirstName: "Ada"})
	prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithBackoff(time.Millisecond, 2*time.Millisecond))
	ctx := context.Background()

	srv.FailNext(1, http.StatusServiceUnavailable, 0) // retried like every call
	if err := prov.Ban(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := prov.Lock(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	got, err := prov.GetUser(ctx, u.ID)
	if err != nil || !got.Banned || !got.Locked {
		t.Fatalf("after ban and lock: %+v, %v", got, err)
	}
	if err := prov.Unban(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := prov.Unlock(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := prov.GetUser(ctx, u.ID); got.Banned || got.Locked {
		t.Fatalf("after unban and unlock: %+v", got)
	}
	if err := prov.Ban(ctx, "user_missing1"); !errors.Is(err, steward.ErrUserNotFound) {
		t.Errorf("Ban(missing) = %v, want ErrUserNotFound", err)
	}
	before := len(srv.Requests())
	if err := prov.Lock(ctx, "../users"); !errors.Is(err, steward.ErrInvalidUserID) {
		t.Errorf("Lock(bad id) = %v, want ErrInvalidUserID", err)
	}
	if len(srv.Requests()) != before {
		t.Error("an invalid ID reached the server")
	}
}
