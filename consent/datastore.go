package consent

import (
	"context"
	"iter"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
)

// Pseudonymizer turns an ID into a keyed pseudonym. *audit.Pseudonymizer
// (from audit.Logger.Pseudonymizer) satisfies it; its pseudonyms contain
// ':', which no valid user ID does, so kept proof never mixes with a live
// user's records.
type Pseudonymizer interface {
	Pseudonym(id string) string
}

// DataStoreOption configures the DataStore returned by Manager.DataStore.
type DataStoreOption func(*historyStore)

// KeepProof makes erasure keep minimal proof of each consent decision
// instead of deleting it: the record stays with its purpose, decision,
// policy version, source and time, but its UserID (and an Actor that is a
// person) becomes p's pseudonym. Whoever holds the key can find the proof
// again when the person identifies themselves, with
// store.History(ctx, p.Pseudonym(userID)); nobody else can link it to
// them. A nil p keeps the default: delete.
//
// Pseudonymised data is still personal data (GDPR Recital 26). Keep proof
// only where a legal basis requires it — typically Art. 17(3)(e), to
// defend a legal claim such as a complaint about marketing sent "with
// consent", for the applicable limitation period — and delete it when that
// period ends (Store.Erase with the pseudonym as the user ID).
func KeepProof(p Pseudonymizer) DataStoreOption {
	return func(h *historyStore) { h.proof = p }
}

// DataStore returns the user's consent history as a privacy.DataStore
// named "consent", so it appears in data exports (one category per
// purpose, "consent.<purpose>", each record a decision in the order made)
// and is erased with the user.
//
// By default erasure deletes every record, and the consent_change audit
// events (keyed pseudonyms, what changed and when) remain as the trace.
// Where a legal basis requires demonstrating a past consent after the
// person asked to be erased, pass KeepProof to keep pseudonymised minimal
// records instead.
func (m *Manager) DataStore(opts ...DataStoreOption) privacy.DataStore {
	h := NewDataStore(m.store, opts...).(*historyStore)
	if h.proof != nil {
		m.proof.Store(&proofHolder{p: h.proof})
	}
	return h
}

// NewDataStore is Manager.DataStore over store, for building the
// privacy.Service before the Manager that WithFence gives it:
//
//	svc, _ := privacy.NewService(idp, privacy.WithStores(consent.NewDataStore(store)), ...)
//	consents, _ := consent.NewManager(store, idp, consent.WithFence(svc), ...)
//
// With KeepProof, give the Manager the same option's effect by calling
// its DataStore(KeepProof(p)) too, or the Manager deletes (rather than
// keeps as proof) a change it refuses because an erasure began.
func NewDataStore(store Store, opts ...DataStoreOption) privacy.DataStore {
	h := &historyStore{store: store}
	for _, o := range opts {
		o(h)
	}
	return h
}

type historyStore struct {
	store Store
	proof Pseudonymizer
}

var _ privacy.DataStore = (*historyStore)(nil)

func (*historyStore) Name() string { return "consent" }

func (h *historyStore) Export(ctx context.Context, userID string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		if err := steward.ValidateUserID(userID); err != nil {
			yield(privacy.Record{}, err)
			return
		}
		for r, err := range h.store.History(ctx, userID) {
			if err != nil {
				yield(privacy.Record{}, err)
				return
			}
			recordedBy := "you"
			if r.Actor != "" && r.Actor != userID {
				recordedBy = "operator" // never another person's ID in an export
			}
			if !yield(privacy.Record{Category: "consent." + string(r.Purpose), Data: map[string]any{
				"purpose":       string(r.Purpose),
				"granted":       r.Granted,
				"policyVersion": r.PolicyVersion,
				"source":        r.Source,
				"recordedBy":    recordedBy,
				"time":          r.Time.UTC().Format(time.RFC3339Nano),
			}}, nil) {
				return
			}
		}
	}
}

func (h *historyStore) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return privacy.Erased{}, err
	}
	var keep func(Record) (Record, bool)
	if h.proof != nil {
		keep = h.keepFor
	}
	n, err := h.store.Erase(ctx, userID, keep)
	return privacy.Erased{Count: n}, err
}

// keepFor is KeepProof's keep function: r under pseudonyms.
func (h *historyStore) keepFor(r Record) (Record, bool) {
	subject := h.proof.Pseudonym(r.UserID)
	switch {
	case r.Actor == r.UserID:
		r.Actor = subject
	case r.Actor != "" && !strings.HasPrefix(r.Actor, audit.SystemActorPrefix):
		r.Actor = h.proof.Pseudonym(r.Actor)
	}
	r.UserID = subject
	return r, true
}
