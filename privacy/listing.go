package privacy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/stewardlabs/steward"
)

// Requests yields the requests matching f from the RequestStore, in
// List's order (ReceivedAt, then ID; f.After and f.Limit page through
// them). When f.UserID is set it also finds the user's finished
// requests, which name them by pseudonym only (see Request), under every
// key of the Service's Pseudonymizer: a user's whole history, open and
// finished. The requests are as stored: finished ones keep their
// pseudonyms.
func (s *Service) Requests(ctx context.Context, f RequestFilter) iter.Seq2[Request, error] {
	if f.UserID == "" {
		return s.requests.List(ctx, f)
	}
	return func(yield func(Request, error) bool) {
		userID := f.UserID
		var out []Request
		for _, id := range append([]string{userID}, s.pseudo.Pseudonyms(userID)...) {
			g := f
			g.UserID = id
			for r, err := range s.requests.List(ctx, g) {
				if err != nil {
					yield(Request{}, redactErr(fmt.Errorf("privacy: listing requests: %w", err), userID))
					return
				}
				out = append(out, r)
			}
		}
		// Each list is in order and at most f.Limit long, so the first
		// f.Limit of their merge are the first f.Limit overall.
		slices.SortFunc(out, func(a, b Request) int {
			return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
		})
		out = slices.CompactFunc(out, func(a, b Request) bool { return a.ID == b.ID })
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		for _, r := range out {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Category is what one DataStore holds about a user in one category of
// records (Record.Category).
type Category struct {
	// Store is the DataStore's name, or the identity provider's step name
	// for the account itself.
	Store string `json:"store"`
	// Name is the category; "account" for the identity record.
	Name string `json:"name"`
	// Records counts the records.
	Records int `json:"records"`
}

// Categories reports what the Service holds about userID: the account at
// the identity provider (when it knows the user), then each DataStore's
// records by category, in the order stores are registered and categories
// first appear. It reads every record, as Export does, but keeps only
// counts. An administrator asking about another user (the principal in
// ctx) writes a data_access audit event first; a user asking about
// themselves writes none. A user whose erasure has begun is refused
// (ErrFenced, ErrErased), as exports are. Errors wrap
// steward.ErrInvalidUserID, the fence's, or a store's, and never contain
// the user ID.
func (s *Service) Categories(ctx context.Context, userID string) ([]Category, error) {
	if err := s.CheckFence(ctx, userID); err != nil {
		return nil, err
	}
	if err := s.logAccess(ctx, userID, actorFrom(ctx), "categories", nil); err != nil {
		return nil, fmt.Errorf("privacy: categories: nothing read: %w", err)
	}
	var out []Category
	switch _, err := s.idp.GetUser(ctx, userID); {
	case err == nil:
		out = append(out, Category{Store: s.idpName, Name: "account", Records: 1})
	case !errors.Is(err, steward.ErrUserNotFound):
		return nil, redactErr(fmt.Errorf("privacy: categories: %s: %w", s.idpName, err), userID)
	}
	for _, st := range s.stores {
		at := map[string]int{}
		for rec, err := range st.Export(ctx, userID) {
			if err != nil {
				return nil, redactErr(fmt.Errorf("privacy: categories: store %q: %w", st.Name(), err), userID)
			}
			i, ok := at[rec.Category]
			if !ok {
				i = len(out)
				at[rec.Category] = i
				out = append(out, Category{Store: st.Name(), Name: rec.Category})
			}
			out[i].Records++
		}
	}
	return out, nil
}
