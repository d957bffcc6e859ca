package retention_test

import (
	"context"
	"fmt"
	"time"

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
