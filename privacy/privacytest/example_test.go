package privacytest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
)

// A FaultyStore shows what erasure does when a store fails: the failed
// step is reported and retried, and a resumed request finishes.
func ExampleFaultyStore() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_1"})
	orders := privacy.NewMemoryStore("orders")
	orders.Add("user_1", privacy.Record{Category: "orders", Data: map[string]any{"total": 42}})

	faulty := privacytest.NewFaultyStore(orders)
	faulty.FailNextErase(-1, errors.New("deadlock detected")) // every Erase fails
	svc, err := privacy.NewService(idp, privacy.WithStores(faulty), privacy.WithRequestStore(privacy.NewMemoryRequestStore()),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 1}))
	if err != nil {
		panic(err)
	}
	res, _ := svc.Erase(ctx, "user_1")
	fmt.Println("success:", res.Success, "failed at:", res.Errors[0].Step)

	faulty.FailNextErase(0, nil) // the store recovers
	res, err = svc.Resume(ctx, res.RequestID)
	fmt.Println("success:", res.Success, err, res.DeletedFrom)
	// Output:
	// success: false failed at: orders
	// success: true <nil> [orders identity]
}
