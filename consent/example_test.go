package consent_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
)

func ExampleManager_Update() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	idp := steward.NewMemoryIdentity(steward.WithNow(now))
	idp.Put(steward.User{ID: "user_123"})

	m, _ := consent.NewManager(consent.NewMemoryStore(), idp, consent.WithNow(now))
	_, err := m.Update(ctx, "user_123", map[consent.Purpose]bool{
		consent.Marketing: true,
		consent.Analytics: false,
	}, consent.Meta{PolicyVersion: 1, Source: "banner"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range []consent.Purpose{consent.Marketing, consent.Analytics, consent.ThirdParty} {
		ok, _ := m.Allowed(ctx, "user_123", p)
		fmt.Println(p, ok)
	}
	u, _ := idp.GetUser(ctx, "user_123")
	fmt.Println(u.PublicMetadata["consent"])
	// Output:
	// marketing true
	// analytics false
	// third_party false
	// map[analytics:false marketing:true thirdParty:false updatedAt:2026-03-01T12:00:00Z]
}
