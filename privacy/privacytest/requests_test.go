package privacytest

import (
	"context"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

func runRequestStoreRecorded(wrap func(*privacy.MemoryRequestStore) privacy.RequestStore) map[string][]string {
	r := conformance.NewRecorder("suite")
	runRequestStore(r, func(ctx context.Context, t tb) (privacy.RequestStore, error) {
		return wrap(privacy.NewMemoryRequestStore()), nil
	}, config{blockTimeout: 300 * time.Millisecond})
	return r.Failures()
}

func TestRequestStoreSuitePassesMemoryRequestStore(t *testing.T) {
	for rule, msgs := range runRequestStoreRecorded(func(m *privacy.MemoryRequestStore) privacy.RequestStore { return m }) {
		t.Errorf("rule %q failed on MemoryRequestStore: %s", rule, strings.Join(msgs, "\n"))
	}
}

func TestRunRequestStoreConformance(t *testing.T) {
	RunRequestStoreConformance(t, func(ctx context.Context, t *testing.T) (privacy.RequestStore, error) {
		return privacy.NewMemoryRequestStore(), nil
	})
}

func TestRequestStoreSuiteCatchesBrokenStores(t *testing.T) {
	tests := []struct {
		name       string
		wrap       func(*privacy.MemoryRequestStore) privacy.RequestStore
		wantFailed []string
	}{
		{
			name: "Update ignores Version",
			wrap: func(m *privacy.MemoryRequestStore) privacy.RequestStore { return blindUpdate{m} },
			wantFailed: []string{
				"Update with a stale Version returns ErrConflict and changes nothing",
				"of concurrent Updates from one version exactly one succeeds",
			},
		},
		{
			name: "List ignores Limit",
			wrap: func(m *privacy.MemoryRequestStore) privacy.RequestStore { return noLimit{m} },
			wantFailed: []string{
				"List honours Limit",
			},
		},
		{
			name: "List ignores After",
			wrap: func(m *privacy.MemoryRequestStore) privacy.RequestStore { return noAfter{m} },
			wantFailed: []string{
				"List with After yields what comes after the cursor, so pages of Limit cover every match once",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runRequestStoreRecorded(tt.wrap)
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

// blindUpdate reads the stored version and writes over it.
type blindUpdate struct{ *privacy.MemoryRequestStore }

func (s blindUpdate) Update(ctx context.Context, r privacy.Request) error {
	old, err := s.Get(ctx, r.ID)
	if err != nil {
		return err
	}
	r.Version = old.Version
	return s.MemoryRequestStore.Update(ctx, r)
}

type noLimit struct{ *privacy.MemoryRequestStore }

func (s noLimit) List(ctx context.Context, f privacy.RequestFilter) iter.Seq2[privacy.Request, error] {
	f.Limit = 0
	return s.MemoryRequestStore.List(ctx, f)
}

type noAfter struct{ *privacy.MemoryRequestStore }

func (s noAfter) List(ctx context.Context, f privacy.RequestFilter) iter.Seq2[privacy.Request, error] {
	f.After = privacy.Cursor{}
	return s.MemoryRequestStore.List(ctx, f)
}
