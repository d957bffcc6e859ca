package background_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
)

func Example() {
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_123"})
	svc, _ := privacy.NewService(idp, privacy.WithResumeAfter(0))
	consents, _ := consent.NewManager(consent.NewMemoryStore(), idp)

	runner, err := background.New(
		background.WithPrivacy(svc),
		background.WithConsent(consents),
		background.WithInterval(background.Requests, 10*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range runner.Tasks() {
		fmt.Printf("%s every %v\n", t.Name, t.Every)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go runner.Run(ctx) // the embedded engine

	id, _ := svc.QueueErasure(ctx, "user_123")
	for {
		if req, _ := svc.Request(ctx, id); req.Status == privacy.StatusCompleted {
			fmt.Println("erasure", req.Status)
			return
		}
		time.Sleep(time.Millisecond)
	}
	// Output:
	// requests every 10ms
	// consent_sync every 30s
	// export_expiry every 1h0m0s
	// erasure completed
}
