package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
)

// TestTicketStoreConformance runs Steward's DataStore suite on the
// team's store. For your own store it is the same three lines:
//
//	func TestMyStore(t *testing.T) {
//		privacytest.RunDataStoreConformance(t, newMyHarness)
//	}
//
// where newMyHarness returns a fresh store wrapped in a
// privacytest.DataStoreHarness: Store, Seed (give a user some records and
// return what Export should yield for them), Capabilities (what the store
// promises beyond the port: here, export order and exact erase counts)
// and Close. Each case of the suite is a subtest named after the rule it
// checks, so a failure says which promise the store broke.
func TestTicketStoreConformance(t *testing.T) {
	privacytest.RunDataStoreConformance(t, func(ctx context.Context, t *testing.T) (privacytest.DataStoreHarness, error) {
		return &harness{store: NewTicketStore()}, nil // the suite's cases each get a fresh store
	})
}

type harness struct{ store *TicketStore }

func (h *harness) Store() privacy.DataStore { return h.store }
func (h *harness) Capabilities() privacytest.DataStoreCapabilities {
	return privacytest.DataStoreCapabilities{Ordered: true, ExactCount: true}
}
func (h *harness) Close() {}

// Seed gives the user two tickets, one with a reply, and returns the
// records Export should yield for them, in order.
func (h *harness) Seed(ctx context.Context, userID string) ([]privacy.Record, error) {
	h.store.Add(userID, Ticket{ID: "T-1", Subject: "a", Body: "b", Replies: []string{"r"}, InternalNote: "n"})
	h.store.Add(userID, Ticket{ID: "T-2", Subject: "c", Body: "d", InternalNote: "m"})
	return []privacy.Record{
		{Category: "tickets", Data: map[string]any{"id": "T-1", "subject": "a", "body": "b", "internalNote": "n"}},
		{Category: "tickets", Data: map[string]any{"id": "T-2", "subject": "c", "body": "d", "internalNote": "m"}},
		{Category: "ticket_replies", Data: map[string]any{"ticket": "T-1", "n": 1, "text": "r"}},
	}, nil
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"subject":"Invoice"`, `erased from: ["support_tickets","identity"] (success true)`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "VIP") {
		t.Error("an internal note was exported")
	}
}
