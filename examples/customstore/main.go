// Command customstore shows a team adapting its own storage to Steward:
// a small privacy.DataStore over support tickets (store.go), used by the
// privacy Service for export and erasure. store_test.go proves the store
// with the same conformance suite Steward's own stores pass:
//
//	go run ./examples/customstore
//	go test ./examples/customstore
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "customstore:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	idp := steward.NewMemoryIdentity()
	idp.Put(steward.User{ID: "user_123", FirstName: "Ada"})
	tickets := NewTicketStore()
	tickets.Add("user_123", Ticket{ID: "T-1", Subject: "Invoice", Body: "Please resend my invoice.", Replies: []string{"Thanks!"}, InternalNote: "VIP"})
	tickets.Add("user_123", Ticket{ID: "T-2", Subject: "Login", Body: "I cannot sign in.", InternalNote: "checked logs"})

	svc, err := privacy.NewService(idp,
		privacy.WithStores(tickets),
		// Internal notes are for staff; they never leave in an export.
		privacy.WithSanitizer(privacy.Sanitizer{Drop: map[string][]string{"tickets": {"internalNote"}}}),
	)
	if err != nil {
		return err
	}

	var export strings.Builder
	if err := svc.Export(ctx, "user_123", &export); err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(export.String()), &doc); err != nil {
		return err
	}
	data, _ := json.Marshal(doc["data"])
	fmt.Fprintf(w, "export data: %s\n", data)

	res, err := svc.Erase(ctx, "user_123")
	if err != nil {
		return err
	}
	out, _ := json.Marshal(res.DeletedFrom)
	fmt.Fprintf(w, "erased from: %s (success %v)\n", out, res.Success)
	return nil
}
