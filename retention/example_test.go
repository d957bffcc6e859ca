package retention_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

func ExampleEngine_Run() {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	logs := &retention.MemoryTarget{}
	logs.Add(
		retention.Row{Subject: "user_1", Time: now.Add(-100 * 24 * time.Hour)},
		retention.Row{Subject: "user_2", Time: now.Add(-120 * 24 * time.Hour)},
		retention.Row{Subject: "user_1", Time: now.Add(-1 * time.Hour)},
	)
	holds := &retention.MemoryHolds{}
	_ = holds.Place(context.Background(), retention.Hold{UserID: "user_2", Reason: "litigation", PlacedBy: "user_legal", PlacedAt: now})

	engine, _ := retention.NewEngine([]retention.Policy{
		{Name: "activity_logs", Target: logs, MaxAge: retention.ActivityLogRetention, Action: retention.Delete},
	}, retention.WithHolds(holds), retention.WithNow(func() time.Time { return now }))

	dry, _ := engine.Run(context.Background(), retention.RunOptions{DryRun: true})
	fmt.Println("would purge:", dry.Policies[0].Purged, "rows left:", len(logs.Rows()))
	done, _ := engine.Run(context.Background(), retention.RunOptions{})
	fmt.Println("purged:", done.Policies[0].Purged, "rows left:", len(logs.Rows()))
	// Output:
	// would purge: 1 rows left: 3
	// purged: 1 rows left: 2
}

// Users inactive for a year are told once, and erased through privacy
// when the grace period has passed without them coming back.
func ExampleEngine_Run_inactiveUsers() {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	idp := steward.NewMemoryIdentity(steward.WithNow(clock))
	idp.Put(steward.User{ID: "user_quiet", FirstName: "Quinn", CreatedAt: now.AddDate(-3, 0, 0), LastActiveAt: now.AddDate(-1, -1, 0)})
	idp.Put(steward.User{ID: "user_busy", FirstName: "Bea", CreatedAt: now.AddDate(-3, 0, 0), LastActiveAt: now.AddDate(0, 0, -2)})
	svc, _ := privacy.NewService(idp, privacy.WithNow(clock), privacy.WithRequestStore(privacy.NewMemoryRequestStore()))
	mail := retention.NotifierFunc(func(_ context.Context, u steward.User, eraseAt time.Time) error {
		fmt.Printf("to %s: sign in before %s to keep your account\n", u.FirstName, eraseAt.Format(time.DateOnly))
		return nil
	})
	engine, _ := retention.NewEngine(retention.DefaultPolicies(&retention.MemoryTarget{}, &retention.MemoryTarget{}),
		retention.WithIdentity(idp), retention.WithNotifier(mail), retention.WithEraser(svc),
		retention.WithNow(clock))

	for _, days := range []int{0, 1, 30} {
		now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days)
		rep, _ := engine.Run(context.Background(), retention.RunOptions{})
		u := rep.Policies[2]
		fmt.Printf("day %d: notified %d, waiting %d, erased %d\n", days, u.Notified, u.Waiting, u.Erased)
	}
	_, err := idp.GetUser(context.Background(), "user_quiet")
	fmt.Println(errors.Is(err, steward.ErrUserNotFound))
	// Output:
	// to Quinn: sign in before 2026-07-01 to keep your account
	// day 0: notified 1, waiting 0, erased 0
	// day 1: notified 0, waiting 1, erased 0
	// day 30: notified 0, waiting 0, erased 1
	// true
}

// Two instances share one Leaser (sqlstore's Leases in production): while
// one runs, the other's Run does nothing, whatever its clock says, and a
// dry run, which takes no lease, still reports.
func ExampleWithLease() {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	logs := &retention.MemoryTarget{}
	for _, id := range []string{"user_1", "user_2"} {
		logs.Add(retention.Row{Subject: id, Time: now.Add(-100 * 24 * time.Hour)})
	}
	leases := steward.NewMemoryLeases(nil)
	policies := []retention.Policy{{Name: "activity_logs", Target: logs, MaxAge: retention.ActivityLogRetention,
		Action: retention.Delete, BatchSize: 1}}
	first, _ := retention.NewEngine(policies, retention.WithLease(leases, time.Minute), retention.WithNow(func() time.Time { return now }))
	second, _ := retention.NewEngine(policies, retention.WithLease(leases, time.Minute),
		retention.WithNow(func() time.Time { return now.Add(time.Hour) })) // a clock an hour ahead

	var once sync.Once
	rep, _ := first.Run(context.Background(), retention.RunOptions{Progress: func(retention.Progress) {
		once.Do(func() { beside(second) })
	}})
	fmt.Println("first instance purged:", rep.Policies[0].Purged)
	// Output:
	// second instance: true
	// its dry run would purge: 1 <nil>
	// first instance purged: 2
}

// beside runs second, and a dry run of it, while another instance holds
// the lease.
func beside(second *retention.Engine) {
	_, err := second.Run(context.Background(), retention.RunOptions{})
	fmt.Println("second instance:", errors.Is(err, retention.ErrLeaseHeld))
	dry, err := second.Run(context.Background(), retention.RunOptions{DryRun: true})
	fmt.Println("its dry run would purge:", dry.Policies[0].Purged, err)
}
