package retentiontest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/retention"
)

// These tests check the suites themselves: they pass correct
// implementations and catch ones that break a rule.

// memHarness serves any target built over a MemoryTarget.
type memHarness struct {
	m *retention.MemoryTarget
	t retention.Target
}

func (h memHarness) Target() retention.Target { return h.t }
func (h memHarness) Add(_ context.Context, subject string, at time.Time) error {
	h.m.Add(retention.Row{Subject: subject, Time: at, Data: map[string]any{"event": "login"}})
	return nil
}

func runTargetRecorded(wrap func(*retention.MemoryTarget) retention.Target) map[string][]string {
	r := conformance.NewRecorder("suite")
	runTarget(r, func(tb) TargetHarness {
		m := &retention.MemoryTarget{}
		return memHarness{m: m, t: wrap(m)}
	})
	return r.Failures()
}

func runHoldsRecorded(wrap func(*retention.MemoryHolds) retention.HoldStore) map[string][]string {
	r := conformance.NewRecorder("suite")
	runHolds(r, func(tb) retention.HoldStore { return wrap(&retention.MemoryHolds{}) })
	return r.Failures()
}

func TestTargetSuitePassesMemoryTarget(t *testing.T) {
	for rule, msgs := range runTargetRecorded(func(m *retention.MemoryTarget) retention.Target { return m }) {
		t.Errorf("rule %q failed on MemoryTarget: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestHoldSuitePassesMemoryHolds(t *testing.T) {
	for rule, msgs := range runHoldsRecorded(func(m *retention.MemoryHolds) retention.HoldStore { return m }) {
		t.Errorf("rule %q failed on MemoryHolds: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestRunConformance(t *testing.T) {
	RunTargetConformance(t, func(*testing.T) TargetHarness {
		m := &retention.MemoryTarget{}
		return memHarness{m: m, t: m}
	})
	RunHoldStoreConformance(t, func(*testing.T) retention.HoldStore { return &retention.MemoryHolds{} })
}

// ---- broken targets, each embedding a MemoryTarget (an Anonymiser) ----

type purgeIgnoresLimit struct{ *retention.MemoryTarget }

func (p purgeIgnoresLimit) Purge(ctx context.Context, older time.Time, _ int, exclude []string) (int, error) {
	return p.MemoryTarget.Purge(ctx, older, 1<<30, exclude)
}

type ignoresExclude struct{ *retention.MemoryTarget }

func (p ignoresExclude) Count(ctx context.Context, older time.Time, _ []string) (int, error) {
	return p.MemoryTarget.Count(ctx, older, nil)
}

func (p ignoresExclude) Purge(ctx context.Context, older time.Time, limit int, _ []string) (int, error) {
	return p.MemoryTarget.Purge(ctx, older, limit, nil)
}

// inclusiveCutoff treats a record at the cutoff as expired.
type inclusiveCutoff struct{ *retention.MemoryTarget }

func (p inclusiveCutoff) Count(ctx context.Context, older time.Time, exclude []string) (int, error) {
	return p.MemoryTarget.Count(ctx, older.Add(time.Nanosecond), exclude)
}

func (p inclusiveCutoff) Purge(ctx context.Context, older time.Time, limit int, exclude []string) (int, error) {
	return p.MemoryTarget.Purge(ctx, older.Add(time.Nanosecond), limit, exclude)
}

// reportsLimit reports the limit as deleted whenever it deleted anything.
type reportsLimit struct{ *retention.MemoryTarget }

func (p reportsLimit) Purge(ctx context.Context, older time.Time, limit int, exclude []string) (int, error) {
	n, err := p.MemoryTarget.Purge(ctx, older, limit, exclude)
	if n > 0 {
		n = limit
	}
	return n, err
}

type targetIgnoresContext struct{ *retention.MemoryTarget }

func (p targetIgnoresContext) Purge(_ context.Context, older time.Time, limit int, exclude []string) (int, error) {
	return p.MemoryTarget.Purge(context.Background(), older, limit, exclude)
}

// anonymiseDeletes deletes what it should anonymise.
type anonymiseDeletes struct{ *retention.MemoryTarget }

func (p anonymiseDeletes) Anonymise(ctx context.Context, older time.Time, limit int, exclude []string) (int, error) {
	return p.MemoryTarget.Purge(ctx, older, limit, exclude)
}

func TestTargetSuiteCatchesBrokenTargets(t *testing.T) {
	tests := []struct {
		name       string
		wrap       func(*retention.MemoryTarget) retention.Target
		wantFailed []string
	}{
		{"Purge ignores its limit", func(m *retention.MemoryTarget) retention.Target { return purgeIgnoresLimit{m} },
			[]string{"Purge deletes at most limit records per call until none is left"}},
		{"Count and Purge ignore the users under hold", func(m *retention.MemoryTarget) retention.Target { return ignoresExclude{m} },
			[]string{
				"Count counts records strictly older than the cutoff, leaving out excluded users",
				"Purge deletes at most limit records per call until none is left",
				"concurrent purges delete every expired record once",
			}},
		{"a record at the cutoff counts as expired", func(m *retention.MemoryTarget) retention.Target { return inclusiveCutoff{m} },
			[]string{
				"a record exactly at the cutoff is kept; one a microsecond older is not",
				"Count counts records strictly older than the cutoff, leaving out excluded users",
			}},
		{"Purge reports the limit, not what it deleted", func(m *retention.MemoryTarget) retention.Target { return reportsLimit{m} },
			[]string{"Purge deletes at most limit records per call until none is left", "concurrent purges delete every expired record once"}},
		{"Purge ignores a cancelled context", func(m *retention.MemoryTarget) retention.Target { return targetIgnoresContext{m} },
			[]string{"a cancelled context gives an error"}},
		{"Anonymise deletes", func(m *retention.MemoryTarget) retention.Target { return anonymiseDeletes{m} },
			[]string{"Anonymise strips expired records once and keeps them"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runTargetRecorded(tt.wrap)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q", rule)
				}
			}
			if t.Failed() {
				t.Logf("rules reported broken: %v", failed)
			}
		})
	}
}

// ---- broken hold stores, each embedding a MemoryHolds (a Lease) ----

type listReversed struct{ *retention.MemoryHolds }

func (s listReversed) List(ctx context.Context) ([]retention.Hold, error) {
	all, err := s.MemoryHolds.List(ctx)
	slices.Reverse(all)
	return all, err
}

type placeKeepsFirst struct{ *retention.MemoryHolds }

func (s placeKeepsFirst) Place(ctx context.Context, h retention.Hold) error {
	if _, ok, _ := s.Get(ctx, h.UserID); ok {
		return nil
	}
	return s.MemoryHolds.Place(ctx, h)
}

type releaseTwiceFails struct{ *retention.MemoryHolds }

func (s releaseTwiceFails) Release(ctx context.Context, userID string) error {
	if _, ok, _ := s.Get(ctx, userID); !ok {
		return context.DeadlineExceeded
	}
	return s.MemoryHolds.Release(ctx, userID)
}

// swallowsInvalid accepts an invalid hold without storing it.
type swallowsInvalid struct{ *retention.MemoryHolds }

func (s swallowsInvalid) Place(ctx context.Context, h retention.Hold) error {
	if h.Validate() != nil {
		return nil
	}
	return s.MemoryHolds.Place(ctx, h)
}

type secondsOnly struct{ *retention.MemoryHolds }

func (s secondsOnly) Place(ctx context.Context, h retention.Hold) error {
	h.PlacedAt = h.PlacedAt.Truncate(time.Second)
	return s.MemoryHolds.Place(ctx, h)
}

// claimsAlways grants every notice claim, held or sent.
type claimsAlways struct{ *retention.MemoryHolds }

func (s claimsAlways) ClaimNotice(ctx context.Context, userID string, activeAt time.Time, owner string, ttl time.Duration) (retention.Notice, bool, error) {
	n, claimed, err := s.MemoryHolds.ClaimNotice(ctx, userID, activeAt, owner, ttl)
	if err == nil && !claimed {
		if err := s.MemoryHolds.ForgetNotice(ctx, userID); err != nil {
			return n, false, err
		}
		return s.MemoryHolds.ClaimNotice(ctx, userID, activeAt, owner, ttl)
	}
	return n, claimed, err
}

// forgetsNothing keeps the record of an erased user.
type forgetsNothing struct{ *retention.MemoryHolds }

func (forgetsNothing) ForgetNotice(context.Context, string) error { return nil }

func TestHoldSuiteCatchesBrokenStores(t *testing.T) {
	tests := []struct {
		name       string
		wrap       func(*retention.MemoryHolds) retention.HoldStore
		wantFailed []string
	}{
		{"List is not ordered by user ID", func(m *retention.MemoryHolds) retention.HoldStore { return listReversed{m} },
			[]string{"a placed hold is returned by Get and List with all fields"}},
		{"Place keeps the first hold", func(m *retention.MemoryHolds) retention.HoldStore { return placeKeepsFirst{m} },
			[]string{"Place replaces a user's hold; Release lifts it and is idempotent"}},
		{"a second Release fails", func(m *retention.MemoryHolds) retention.HoldStore { return releaseTwiceFails{m} },
			[]string{"Place replaces a user's hold; Release lifts it and is idempotent"}},
		{"an invalid hold is accepted", func(m *retention.MemoryHolds) retention.HoldStore { return swallowsInvalid{m} },
			[]string{"an invalid hold is refused naming the field"}},
		{"PlacedAt is kept to the second", func(m *retention.MemoryHolds) retention.HoldStore { return secondsOnly{m} },
			[]string{"PlacedAt is kept to the microsecond and read back in UTC"}},
		{"every notice claim is granted", func(m *retention.MemoryHolds) retention.HoldStore { return claimsAlways{m} },
			[]string{
				"NoticeStore/a live claim is refused to everyone, its own owner too, and the record is returned unchanged",
				"NoticeStore/a sent notice is not claimed again for the same activity, and reports when it was sent",
				"NoticeStore/of 8 concurrent claimers exactly one wins",
			}},
		{"ForgetNotice keeps the record", func(m *retention.MemoryHolds) retention.HoldStore { return forgetsNothing{m} },
			[]string{"NoticeStore/ForgetNotice removes the record and is idempotent; the user can then be claimed afresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runHoldsRecorded(tt.wrap)
			for _, rule := range tt.wantFailed {
				if _, ok := failed[rule]; !ok {
					t.Errorf("the suite did not report the broken rule %q", rule)
				}
			}
			if t.Failed() {
				t.Logf("rules reported broken: %v", failed)
			}
		})
	}
}
