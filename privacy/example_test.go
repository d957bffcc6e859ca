package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/rbac"
)

// exampleNow is the fixed clock of the examples.
func exampleNow() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

// exampleSetup returns an identity provider with one user and an app
// store holding their orders and preferences.
func exampleSetup() (*steward.MemoryIdentity, *privacy.MemoryStore) {
	idp := steward.NewMemoryIdentity(steward.WithNow(exampleNow))
	idp.Put(steward.User{
		ID:             "user_123",
		EmailAddresses: []steward.EmailAddress{{ID: "idn_1", Address: "ada@example.com", Verified: true}},
		PrimaryEmailID: "idn_1",
		FirstName:      "Ada",
		LastName:       "Lovelace",
		CreatedAt:      time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC),
		PublicMetadata: map[string]any{"role": "user"},
	})
	app := privacy.NewMemoryStore("app")
	app.Add("user_123",
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_1", "total": 42, "internalNotes": "VIP"}},
		privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_2", "total": 7.5}},
		privacy.Record{Category: "preferences", Data: map[string]any{"theme": "dark"}},
	)
	return idp, app
}

// Export streams one JSON document: the identity, then each store's
// records by category, without the fields the Sanitizer drops.
func ExampleService_Export() {
	idp, app := exampleSetup()
	svc, err := privacy.NewService(idp,
		privacy.WithStores(app),
		privacy.WithSanitizer(privacy.Sanitizer{Drop: map[string][]string{"orders": {"internalNotes"}}}),
		privacy.WithNow(exampleNow),
	)
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	if err := svc.Export(context.Background(), "user_123", &buf); err != nil {
		panic(err)
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, buf.Bytes(), "", "  ")
	fmt.Println(pretty.String())
	// Output:
	// {
	//   "formatVersion": 1,
	//   "exportedAt": "2025-03-01T12:00:00Z",
	//   "identity": {
	//     "id": "user_123",
	//     "email": "ada@example.com",
	//     "emailAddresses": [
	//       {
	//         "emailAddress": "ada@example.com",
	//         "verified": true,
	//         "primary": true
	//       }
	//     ],
	//     "firstName": "Ada",
	//     "lastName": "Lovelace",
	//     "createdAt": "2024-05-01T09:00:00Z",
	//     "lastSignIn": null,
	//     "metadata": {
	//       "public": {
	//         "role": "user"
	//       }
	//     }
	//   },
	//   "data": {
	//     "app": [
	//       {
	//         "category": "orders",
	//         "records": [
	//           {
	//             "id": "ord_1",
	//             "total": 42
	//           },
	//           {
	//             "id": "ord_2",
	//             "total": 7.5
	//           }
	//         ]
	//       },
	//       {
	//         "category": "preferences",
	//         "records": [
	//           {
	//             "theme": "dark"
	//           }
	//         ]
	//       }
	//     ]
	//   },
	//   "complete": true
	// }
}

// Erase runs the erasure saga: stores first, then the identity, then the
// audit record, each step checkpointed in the RequestStore.
func ExampleService_Erase() {
	idp, app := exampleSetup()
	sink := audit.NewMemorySink()
	logger, err := audit.NewLogger(sink, audit.WithKey("k1", []byte("an example key, 32 bytes long!!!")), audit.WithNow(exampleNow))
	if err != nil {
		panic(err)
	}
	requests := privacy.NewMemoryRequestStore()
	svc, err := privacy.NewService(idp,
		privacy.WithStores(app),
		privacy.WithAudit(logger),
		privacy.WithRequestStore(requests),
		privacy.WithNow(exampleNow),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	res, err := svc.Erase(ctx, "user_123")
	if err != nil {
		panic(err)
	}
	fmt.Println("success:", res.Success)
	fmt.Println("deleted from:", res.DeletedFrom)

	req, _ := svc.Request(ctx, res.RequestID)
	fmt.Println("status:", req.Status, "received:", req.ReceivedAt.Format(time.DateOnly), "due:", req.DueAt.Format(time.DateOnly))
	for _, st := range req.Steps {
		fmt.Printf("step %s (%s): %s, erased %d\n", st.Name, st.Kind, st.Status, st.Erased)
	}
	for _, e := range sink.Snapshot() {
		fmt.Println("audit:", e.Type, e.Details["status"], "subject is a pseudonym:", e.Subject != "user_123")
	}
	fmt.Println("request names the user:", req.UserID == "user_123")
	if err := svc.CheckFence(ctx, "user_123"); errors.Is(err, privacy.ErrErased) {
		fmt.Println("fenced: the user is in the ledger")
	}
	// Output:
	// success: true
	// deleted from: [app identity]
	// status: completed received: 2025-03-01 due: 2025-04-01
	// step fence (fence): done, erased 1
	// step app (store): done, erased 3
	// step identity (identity): done, erased 1
	// step final_pass (final_pass): done, erased 0
	// step ledger (ledger): done, erased 0
	// step audit (audit): done, erased 0
	// audit: data_deletion started subject is a pseudonym: true
	// audit: data_deletion completed subject is a pseudonym: true
	// request names the user: false
	// fenced: the user is in the ledger
}

// The handlers answer the GDPR endpoints' wire format; the principal
// comes from the session middleware.
func ExampleService_DeleteHandler() {
	idp, app := exampleSetup()
	svc, err := privacy.NewService(idp, privacy.WithStores(app), privacy.WithNow(exampleNow))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/user/data", svc.ExportHandler())
	mux.Handle("/api/user/delete", svc.DeleteHandler())

	send := func(confirm bool) {
		req := httptest.NewRequest(http.MethodDelete, "/api/user/delete", nil)
		req = req.WithContext(rbac.WithPrincipal(req.Context(), rbac.Principal{UserID: "user_123", Role: "user"}))
		if confirm {
			req.Header.Set("X-Confirm-Delete", "true")
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if r, ok := body["result"].(map[string]any); ok {
			r["requestId"] = "req_…" // random
		}
		fmt.Print(rec.Code, " ")
		_ = json.NewEncoder(os.Stdout).Encode(body)
	}
	send(false)
	send(true)
	// Output:
	// 400 {"error":"Confirmation required","requiresHeader":"X-Confirm-Delete: true"}
	// 200 {"message":"Account deleted successfully","result":{"deletedFrom":["app","identity"],"erased":{"app":3,"identity":1},"errors":[],"requestId":"req_…","success":true}}
}

// A Sanitizer declares fields that are never exported, per category or
// for all ("*").
func ExampleSanitizer() {
	s := privacy.Sanitizer{Drop: map[string][]string{
		"orders": {"internalNotes"},
		"*":      {"adminFlags"},
	}}
	r := s.Sanitize(privacy.Record{Category: "orders", Data: map[string]any{
		"total": 42, "internalNotes": "VIP", "adminFlags": []string{"watch"},
	}})
	fmt.Println(r.Data)
	// Output:
	// map[total:42]
}
