package privacytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

// LedgerMaker returns a fresh, empty Ledger for one case; register
// clean-up with t.Cleanup.
type LedgerMaker func(ctx context.Context, t *testing.T) (privacy.Ledger, error)

// RunLedgerConformance runs the Ledger suite on a store that keeps a
// ledger on its own (sqlstore's Ledger, say). A RequestStore that is a
// Ledger gets these cases from RunRequestStoreConformance already. The
// ledger may be shared between cases: they use fresh subjects.
func RunLedgerConformance(t *testing.T, newLedger LedgerMaker) {
	t.Helper()
	conformance.RunCases(conformance.Wrap(t), ledgerCases(), func(ctx context.Context, t tb) *lgEnv {
		l, err := newLedger(ctx, conformance.Testing(t))
		if err != nil {
			t.Fatalf("making the ledger: %v", err)
		}
		return &lgEnv{tb: t, ctx: ctx, l: l, base: time.Date(2025, 1, 31, 9, 30, 0, 123456000, time.UTC)}
	})
}

type lgEnv struct {
	tb
	ctx  context.Context
	l    privacy.Ledger
	base time.Time
}

type lgCase = conformance.Case[*lgEnv]

func ledgerCases() []lgCase {
	return []lgCase{
		{Name: "Ledger: FindErased finds a recorded entry by any of the subjects given, and nothing for others", Run: lgFind},
		{Name: "Ledger: RecordErased of a recorded subject replaces its entry: recording twice is not an error", Run: lgReplace},
		{Name: "Ledger: ListErased yields every entry once, ordered by Subject", Run: lgList},
		{Name: "Ledger: RecordErased refuses a Subject that is not a keyed pseudonym, and missing fields", Run: lgRefuse},
	}
}

// pseudonymizer makes the suite's pseudonyms.
var pseudonymizer = func() *audit.Pseudonymizer {
	p, err := audit.NewPseudonymizer(audit.Key{ID: "pt1", Secret: []byte("privacytest ledger key, 32 bytes")})
	if err != nil {
		panic(err)
	}
	return p
}()

func (e *lgEnv) entry(i int) privacy.LedgerEntry {
	return privacy.LedgerEntry{
		Subject: pseudonymizer.Pseudonym(newUserID()), KeyID: "pt1",
		RequestID: fmt.Sprintf("req_ledger_%03d", i), ErasedAt: e.base.Add(time.Duration(i) * time.Hour),
	}
}

func (e *lgEnv) record(en privacy.LedgerEntry) {
	e.Helper()
	if err := e.l.RecordErased(e.ctx, en); err != nil {
		e.Fatalf("RecordErased: %v", err)
	}
}

func (e *lgEnv) find(subjects ...string) (privacy.LedgerEntry, bool) {
	e.Helper()
	en, ok, err := e.l.FindErased(e.ctx, subjects...)
	if err != nil {
		e.Fatalf("FindErased: %v", err)
	}
	return en, ok
}

var equalTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func lgFind(e *lgEnv) {
	a, b := e.entry(0), e.entry(1)
	e.record(a)
	e.record(b)
	if got, ok := e.find(pseudonymizer.Pseudonym(newUserID()), b.Subject); !ok {
		e.Errorf("FindErased(unknown, b) found nothing")
	} else if diff := cmp.Diff(b, got, equalTimes); diff != "" {
		e.Errorf("FindErased(unknown, b) (-want +got):\n%s", diff)
	}
	if _, ok := e.find(pseudonymizer.Pseudonym(newUserID())); ok {
		e.Errorf("FindErased of an unrecorded subject found an entry")
	}
	if _, ok := e.find(); ok {
		e.Errorf("FindErased with no subjects found an entry")
	}
}

func lgReplace(e *lgEnv) {
	a := e.entry(0)
	e.record(a)
	a.RequestID, a.ErasedAt = "req_ledger_again", a.ErasedAt.Add(24*time.Hour)
	e.record(a)
	got, ok := e.find(a.Subject)
	if !ok {
		e.Fatalf("the entry is gone after a second RecordErased")
	}
	if diff := cmp.Diff(a, got, equalTimes); diff != "" {
		e.Errorf("entry after a second RecordErased (-want +got):\n%s", diff)
	}
	n := 0
	for en, err := range e.l.ListErased(e.ctx) {
		if err != nil {
			e.Fatalf("ListErased: %v", err)
		}
		if en.Subject == a.Subject {
			n++
		}
	}
	if n != 1 {
		e.Errorf("ListErased yields the subject %d times after recording it twice, want once", n)
	}
}

func lgList(e *lgEnv) {
	want := map[string]privacy.LedgerEntry{}
	for i := range 5 {
		en := e.entry(i)
		e.record(en)
		want[en.Subject] = en
	}
	prev := ""
	got := map[string]privacy.LedgerEntry{}
	for en, err := range e.l.ListErased(e.ctx) {
		if err != nil {
			e.Fatalf("ListErased: %v", err)
		}
		if en.Subject <= prev {
			e.Errorf("ListErased yields %q after %q: not ordered by Subject", en.Subject, prev)
		}
		prev = en.Subject
		if _, ours := want[en.Subject]; ours { // the store may be shared with other cases
			got[en.Subject] = en
		}
	}
	if diff := cmp.Diff(want, got, equalTimes); diff != "" {
		e.Errorf("ListErased (-want +got):\n%s", diff)
	}
}

func lgRefuse(e *lgEnv) {
	good := e.entry(0)
	bad := map[string]privacy.LedgerEntry{}
	raw := good
	raw.Subject = newUserID()
	bad["a user ID as Subject"] = raw
	noKey := good
	noKey.KeyID = ""
	bad["no KeyID"] = noKey
	noReq := good
	noReq.RequestID = ""
	bad["no RequestID"] = noReq
	noTime := good
	noTime.ErasedAt = time.Time{}
	bad["no ErasedAt"] = noTime
	for name, en := range bad {
		if err := e.l.RecordErased(e.ctx, en); !errors.Is(err, privacy.ErrInvalidRequest) {
			e.Errorf("RecordErased with %s returned %v; want ErrInvalidRequest", name, err)
		}
	}
	for name, en := range bad {
		if _, ok := e.find(en.Subject); ok {
			e.Errorf("the entry with %s was stored although refused", name)
		}
	}
}
