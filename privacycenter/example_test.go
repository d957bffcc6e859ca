package privacycenter_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/rbac"
)

// A center over a Service and a consent Manager, mounted on a mux; a
// stand-in for the session middleware puts the principal in the
// context.
func Example() {
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_123", FirstName: "Ada"})
	orders := privacy.NewMemoryStore("orders")
	orders.Add("user_123", privacy.Record{Category: "orders", Data: map[string]any{"total": 42}})
	svc, _ := privacy.NewService(idp, privacy.WithStores(orders))
	consents, _ := consent.NewManager(consent.NewMemoryStore(), idp)
	center, err := privacycenter.New(svc, consents)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/privacy", center.Handler())
	mux.Handle("/privacy/", center.Handler())
	signedIn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := rbac.WithPrincipal(r.Context(), rbac.Principal{UserID: "user_123", Role: rbac.RoleUser, EmailVerified: true})
		mux.ServeHTTP(w, r.WithContext(ctx))
	})

	h1 := regexp.MustCompile(`<h1>(.*)</h1>`)
	for _, path := range []string{"/privacy/", "/privacy/admin"} {
		rec := httptest.NewRecorder()
		signedIn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, h1.FindStringSubmatch(rec.Body.String())[1])
	}
	fmt.Println(privacycenter.DaysLeft(privacy.Request{Status: privacy.StatusPending,
		ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), DueAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		time.Date(2026, 1, 27, 0, 0, 0, 0, time.UTC)))
	// Output:
	// /privacy/ 200 Your privacy
	// /privacy/admin 403 Not allowed
	// {5 days left true badge-red}
}
