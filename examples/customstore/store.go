package main

import (
	"context"
	"iter"
	"sort"
	"sync"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
)

// TicketStore is a team's own storage — here, support tickets kept in a
// map, standing in for a document database or a SaaS API — adapted to
// privacy.DataStore. Three methods are all the port asks for.
type TicketStore struct {
	mu      sync.Mutex
	tickets map[string][]Ticket // by user ID
}

// Ticket is one support ticket and the customer's replies on it.
type Ticket struct {
	ID, Subject, Body string
	Replies           []string
	InternalNote      string // never exported: see the sanitizer in main
}

var _ privacy.DataStore = (*TicketStore)(nil)

// NewTicketStore returns an empty store.
func NewTicketStore() *TicketStore { return &TicketStore{tickets: map[string][]Ticket{}} }

// Add stores a ticket for userID.
func (s *TicketStore) Add(userID string, t Ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickets[userID] = append(s.tickets[userID], t)
}

// Name is stable: it appears in DeletionResult.DeletedFrom and in
// erasure checkpoints.
func (s *TicketStore) Name() string { return "support_tickets" }

// Export yields the user's tickets one at a time, in ticket ID order,
// then their replies (category "ticket_replies"): a DataStore yields each
// category's records together, so the export can stream them.
func (s *TicketStore) Export(ctx context.Context, userID string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		if err := steward.ValidateUserID(userID); err != nil {
			yield(privacy.Record{}, err)
			return
		}
		s.mu.Lock()
		tickets := append([]Ticket(nil), s.tickets[userID]...)
		s.mu.Unlock()
		sort.Slice(tickets, func(i, j int) bool { return tickets[i].ID < tickets[j].ID })
		for _, t := range tickets {
			if err := ctx.Err(); err != nil {
				yield(privacy.Record{}, err)
				return
			}
			rec := privacy.Record{Category: "tickets", Data: map[string]any{
				"id": t.ID, "subject": t.Subject, "body": t.Body, "internalNote": t.InternalNote}}
			if !yield(rec, nil) {
				return
			}
		}
		for _, t := range tickets {
			for i, r := range t.Replies {
				if !yield(privacy.Record{Category: "ticket_replies", Data: map[string]any{"ticket": t.ID, "n": i + 1, "text": r}}, nil) {
					return
				}
			}
		}
	}
}

// Erase deletes the user's tickets. Erasing twice is fine: the second
// call finds nothing and reports zero.
func (s *TicketStore) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return privacy.Erased{}, err
	}
	if err := ctx.Err(); err != nil {
		return privacy.Erased{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0 // records, as Export counts them: tickets and replies
	for _, t := range s.tickets[userID] {
		n += 1 + len(t.Replies)
	}
	delete(s.tickets, userID)
	return privacy.Erased{Count: n}, nil
}
