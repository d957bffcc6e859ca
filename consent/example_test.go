package consent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/rbac"
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

// Allowed answers from the recorded history: no record means no, and
// consent given under an older policy version than a purpose requires
// does not count.
func ExampleManager_Allowed() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_123"})

	// Version 2 of the privacy policy changed what marketing covers, and
	// the application asks for consent to product research too.
	m, _ := consent.NewManager(consent.NewMemoryStore(), idp,
		consent.WithPurpose(consent.Marketing, 2),
		consent.WithPurpose("product_research", 1))

	allowed := func() {
		var line []string
		for _, p := range []consent.Purpose{consent.Marketing, "product_research", consent.Analytics} {
			ok, _ := m.Allowed(ctx, "user_123", p)
			line = append(line, fmt.Sprintf("%s=%v", p, ok))
		}
		fmt.Println(strings.Join(line, " "))
	}
	allowed()

	_, _ = m.Update(ctx, "user_123", map[consent.Purpose]bool{consent.Marketing: true, "product_research": true},
		consent.Meta{PolicyVersion: 1, Source: "banner"})
	allowed() // marketing was agreed to under version 1 only

	_, _ = m.Update(ctx, "user_123", map[consent.Purpose]bool{consent.Marketing: true},
		consent.Meta{PolicyVersion: 2, Source: "banner"})
	allowed()

	_, _ = m.WithdrawAll(ctx, "user_123", consent.Meta{PolicyVersion: 2, Source: "settings"})
	allowed()

	_, err := m.Allowed(ctx, "user_123", "newsletter")
	fmt.Println(err)
	// Output:
	// marketing=false product_research=false analytics=false
	// marketing=false product_research=true analytics=false
	// marketing=true product_research=true analytics=false
	// marketing=false product_research=false analytics=false
	// consent: unknown purpose: "newsletter"
}

// HonourGPC goes after the session middleware: a signed-in user whose
// browser sends Sec-GPC: 1 is opted out of third-party sharing, once,
// with source "gpc".
func ExampleManager_HonourGPC() {
	ctx := context.Background()
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_123"})
	m, _ := consent.NewManager(consent.NewMemoryStore(), idp)
	_, _ = m.Update(ctx, "user_123", map[consent.Purpose]bool{consent.ThirdParty: true}, consent.Meta{PolicyVersion: 1, Source: "banner"})

	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, _ := m.Allowed(r.Context(), "user_123", consent.ThirdParty)
		fmt.Println("third_party allowed:", ok)
	})
	h := m.HonourGPC(nil)(page) // in an app: auth.Handler(m.HonourGPC(nil)(mux))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(consent.GPCHeader, "1")
	r = r.WithContext(rbac.WithPrincipal(r.Context(), rbac.Principal{UserID: "user_123", Role: rbac.RoleUser}))
	h.ServeHTTP(httptest.NewRecorder(), r)
	for rec := range m.History(ctx, "user_123") {
		fmt.Println(rec.Purpose, rec.Granted, rec.Source)
	}
	// Output:
	// third_party allowed: false
	// third_party true banner
	// third_party false gpc
}
