package privacytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/internal/conformance"
	"github.com/stewardlabs/steward/privacy"
)

// dsMaker is DataStoreHarnessMaker over tb.
type dsMaker func(ctx context.Context, t tb) (DataStoreHarness, error)

// dsCase is one rule of the DataStore suite.
type dsCase = conformance.Case[*dsEnv]

func runDataStore(t tb, mk dsMaker, cfg config) {
	env := func(ctx context.Context, t tb) *dsEnv {
		h, err := mk(ctx, t)
		if err != nil {
			t.Fatalf("making the harness: %v", err)
		}
		t.Cleanup(h.Close)
		return &dsEnv{tb: t, cfg: cfg, ctx: ctx, h: h, s: h.Store(), caps: h.Capabilities()}
	}
	conformance.RunCases(t, dataStoreCases(), env)
	if _, ok := env(t.Context(), t).s.(privacy.SubjectLister); ok {
		conformance.RunCases(t, subjectCases(), env)
	}
}

func dataStoreCases() []dsCase {
	return []dsCase{
		{Name: "Name is non-empty and the same on every call", Run: dsName},

		// Export
		{Name: "Export yields exactly the records Seed stored for the user", Run: dsExportSeeded},
		{Name: "Export yields the records of one category together", Run: dsExportGrouped},
		{Name: "every exported record has a category and data that encode as JSON", Run: dsExportWellFormed},
		{Name: "Export of a user with no data yields nothing and no error", Run: dsExportEmpty},
		{Name: "Export yields only the requested user's records", Run: dsExportIsolated},
		{Name: "Export can be repeated and yields the same records", Run: dsExportRepeatable},
		{Name: "Export stops when the consumer stops", Run: dsExportStops},
		{Name: "changing an exported record changes nothing stored", Run: dsExportCopies},
		{Name: "Export with a cancelled context yields the context's error, last", Run: dsExportCancelled},

		// Erase
		{Name: "after Erase, Export of the user yields nothing", Run: dsEraseRemoves},
		{Name: "Erase of a user with data reports what it erased", Run: dsEraseCount},
		{Name: "Erase is idempotent: a second Erase reports zero and no error", Run: dsEraseTwice},
		{Name: "Erase of a user with no data reports zero and no error", Run: dsEraseMissing},
		{Name: "Erase leaves other users' data untouched", Run: dsEraseIsolated},
		{Name: "Erase with a cancelled context returns the context's error and erases nothing", Run: dsEraseCancelled},

		// Both
		{Name: "errors never contain the user ID", Run: dsErrorsRedacted},
		{Name: "concurrent Export and Erase of different users are safe and independent", Run: dsConcurrent},
	}
}

// dsEnv is what a case works with.
type dsEnv struct {
	tb
	cfg  config
	ctx  context.Context
	h    DataStoreHarness
	s    privacy.DataStore
	caps DataStoreCapabilities
}

// newUserID returns a fresh valid user ID, unique across runs so that
// stores over a shared database do not see each other's users.
func newUserID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "user_pt" + hex.EncodeToString(b[:])
}

// seed seeds a fresh user and returns the ID and the expected records.
func (e *dsEnv) seed() (string, []privacy.Record) {
	e.Helper()
	id := newUserID()
	recs, err := e.h.Seed(e.ctx, id)
	if err != nil {
		e.Fatalf("Seed: %v", err)
	}
	if len(recs) < 2 {
		e.Fatalf("Seed returned %d records; the suite needs at least 2", len(recs))
	}
	return id, recs
}

// export runs Export to the end (or the first error) within the block
// timeout.
func (e *dsEnv) export(ctx context.Context, userID string) ([]privacy.Record, error) {
	e.Helper()
	type result struct {
		recs []privacy.Record
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for rec, err := range e.s.Export(ctx, userID) {
			if err != nil {
				r.err = err
				break
			}
			r.recs = append(r.recs, rec)
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r.recs, r.err
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("Export did not finish within %v", e.cfg.blockTimeout)
		return nil, nil
	}
}

// mustExport is export that fails the case on error.
func (e *dsEnv) mustExport(userID string) []privacy.Record {
	e.Helper()
	recs, err := e.export(e.ctx, userID)
	if err != nil {
		e.Fatalf("Export: %v", err)
	}
	return recs
}

// erase runs Erase within the block timeout.
func (e *dsEnv) erase(ctx context.Context, userID string) (privacy.Erased, error) {
	e.Helper()
	type result struct {
		er  privacy.Erased
		err error
	}
	done := make(chan result, 1)
	go func() {
		er, err := e.s.Erase(ctx, userID)
		done <- result{er, err}
	}()
	select {
	case r := <-done:
		return r.er, r.err
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("Erase did not finish within %v", e.cfg.blockTimeout)
		return privacy.Erased{}, nil
	}
}

// jsonRecord is a Record after a JSON round trip.
type jsonRecord struct {
	Category string         `json:"category"`
	Data     map[string]any `json:"data"`
}

// normalize returns recs as JSON values: each record is encoded and
// decoded again, so numbers are float64 and times strings.
func normalize(recs []privacy.Record) ([]jsonRecord, error) {
	out := make([]jsonRecord, 0, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("record %d (category %q) does not encode as JSON: %w", i, r.Category, err)
		}
		var j jsonRecord
		if err := json.Unmarshal(b, &j); err != nil {
			return nil, fmt.Errorf("record %d (category %q): %w", i, r.Category, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// sortKey orders normalised records for multiset comparison.
func sortKey(r jsonRecord) string {
	b, _ := json.Marshal(r) // map keys are sorted by encoding/json
	return string(b)
}

// sameRecords reports the difference between want and got, in order
// when ordered, otherwise as multisets.
func sameRecords(want, got []privacy.Record, ordered bool) (string, error) {
	w, err := normalize(want)
	if err != nil {
		return "", fmt.Errorf("Seed: %w", err)
	}
	g, err := normalize(got)
	if err != nil {
		return "", fmt.Errorf("Export: %w", err)
	}
	if !ordered {
		byKey := func(a, b jsonRecord) int { return strings.Compare(sortKey(a), sortKey(b)) }
		slices.SortFunc(w, byKey)
		slices.SortFunc(g, byKey)
	}
	return cmp.Diff(w, g), nil
}

func (e *dsEnv) checkSame(what string, want, got []privacy.Record) {
	e.Helper()
	diff, err := sameRecords(want, got, e.caps.Ordered)
	if err != nil {
		e.Fatalf("%s: %v", what, err)
	}
	if diff != "" {
		e.Errorf("%s: records differ (-seeded +exported):\n%s", what, diff)
	}
}

func dsName(e *dsEnv) {
	first := e.s.Name()
	if first == "" {
		e.Fatalf("Name() is empty")
	}
	id, _ := e.seed()
	_ = e.mustExport(id)
	if _, err := e.erase(e.ctx, id); err != nil {
		e.Fatalf("Erase: %v", err)
	}
	if got := e.s.Name(); got != first {
		e.Errorf("Name() changed from %q to %q", first, got)
	}
}

func dsExportSeeded(e *dsEnv) {
	id, want := e.seed()
	e.checkSame("Export", want, e.mustExport(id))
}

func dsExportGrouped(e *dsEnv) {
	id, _ := e.seed()
	got := e.mustExport(id)
	done := map[string]bool{}
	for i, r := range got {
		if i > 0 && got[i-1].Category != r.Category {
			done[got[i-1].Category] = true
		}
		if done[r.Category] {
			e.Errorf("record %d is in category %q, whose records ended earlier: categories interleave", i, r.Category)
			return
		}
	}
}

func dsExportWellFormed(e *dsEnv) {
	id, _ := e.seed()
	for i, r := range e.mustExport(id) {
		if r.Category == "" {
			e.Errorf("record %d has an empty Category", i)
		}
		if r.Data == nil {
			e.Errorf("record %d (category %q) has nil Data", i, r.Category)
		}
		if _, err := json.Marshal(r.Data); err != nil {
			e.Errorf("record %d (category %q): Data does not encode as JSON: %v", i, r.Category, err)
		}
	}
}

func dsExportEmpty(e *dsEnv) {
	e.seed() // someone else has data
	if got := e.mustExport(newUserID()); len(got) != 0 {
		e.Errorf("Export of a user with no data yielded %d records", len(got))
	}
}

func dsExportIsolated(e *dsEnv) {
	a, wantA := e.seed()
	b, wantB := e.seed()
	e.checkSame("Export of the first user", wantA, e.mustExport(a))
	e.checkSame("Export of the second user", wantB, e.mustExport(b))
}

func dsExportRepeatable(e *dsEnv) {
	id, want := e.seed()
	first := e.mustExport(id)
	second := e.mustExport(id)
	e.checkSame("first Export", want, first)
	e.checkSame("second Export", want, second)
}

func dsExportStops(e *dsEnv) {
	id, want := e.seed()
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Called directly rather than by range, so that a store that goes
		// on yielding is seen, not turned into a runtime panic.
		e.s.Export(e.ctx, id)(func(privacy.Record, error) bool {
			calls++
			return false
		})
	}()
	select {
	case <-done:
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("Export did not return within %v after the consumer stopped", e.cfg.blockTimeout)
	}
	if calls != 1 {
		e.Errorf("yield was called %d times after returning false on the first call; want 1", calls)
	}
	// The store is still usable after an abandoned Export.
	e.checkSame("Export after an abandoned Export", want, e.mustExport(id))
}

func dsExportCopies(e *dsEnv) {
	id, want := e.seed()
	for _, r := range e.mustExport(id) {
		for k := range r.Data {
			r.Data[k] = "changed by the consumer"
		}
		r.Data["addedByConsumer"] = true
	}
	e.checkSame("Export after the consumer changed exported records", want, e.mustExport(id))
}

func dsExportCancelled(e *dsEnv) {
	id, _ := e.seed()
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	var errs []error
	afterErr := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.s.Export(ctx, id)(func(_ privacy.Record, err error) bool {
			if len(errs) > 0 {
				afterErr++
			}
			if err != nil {
				errs = append(errs, err)
			}
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("Export with a cancelled context did not return within %v", e.cfg.blockTimeout)
	}
	switch {
	case len(errs) == 0:
		e.Errorf("Export with a cancelled context yielded no error")
	case !errors.Is(errs[0], context.Canceled):
		e.Errorf("Export with a cancelled context yielded %v; want an error matching context.Canceled", errs[0])
	}
	if afterErr > 0 {
		e.Errorf("Export yielded %d more values after its error; iteration must stop at the first error", afterErr)
	}
}

func dsEraseRemoves(e *dsEnv) {
	id, _ := e.seed()
	if _, err := e.erase(e.ctx, id); err != nil {
		e.Fatalf("Erase: %v", err)
	}
	if got := e.mustExport(id); len(got) != 0 {
		e.Errorf("Export after Erase yielded %d records; want none", len(got))
	}
}

func dsEraseCount(e *dsEnv) {
	id, _ := e.seed()
	n := len(e.mustExport(id))
	er, err := e.erase(e.ctx, id)
	if err != nil {
		e.Fatalf("Erase: %v", err)
	}
	switch {
	case e.caps.ExactCount && er.Count != n:
		e.Errorf("Erase reported Count %d; want %d, the number of records Export yielded", er.Count, n)
	case er.Count <= 0:
		e.Errorf("Erase of a user with %d records reported Count %d; want a positive count", n, er.Count)
	}
}

func dsEraseTwice(e *dsEnv) {
	id, _ := e.seed()
	if _, err := e.erase(e.ctx, id); err != nil {
		e.Fatalf("first Erase: %v", err)
	}
	er, err := e.erase(e.ctx, id)
	if err != nil {
		e.Fatalf("second Erase: %v", err)
	}
	if er != (privacy.Erased{}) {
		e.Errorf("second Erase reported %+v; want zero", er)
	}
}

func dsEraseMissing(e *dsEnv) {
	e.seed()
	er, err := e.erase(e.ctx, newUserID())
	if err != nil {
		e.Fatalf("Erase of a user with no data: %v", err)
	}
	if er != (privacy.Erased{}) {
		e.Errorf("Erase of a user with no data reported %+v; want zero", er)
	}
}

func dsEraseIsolated(e *dsEnv) {
	a, _ := e.seed()
	b, wantB := e.seed()
	if _, err := e.erase(e.ctx, a); err != nil {
		e.Fatalf("Erase: %v", err)
	}
	e.checkSame("Export of the other user after Erase", wantB, e.mustExport(b))
}

func dsEraseCancelled(e *dsEnv) {
	id, want := e.seed()
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, err := e.erase(ctx, id)
	if !errors.Is(err, context.Canceled) {
		e.Errorf("Erase with a cancelled context returned %v; want an error matching context.Canceled", err)
	}
	e.checkSame("Export after an Erase with a cancelled context", want, e.mustExport(id))
}

func dsErrorsRedacted(e *dsEnv) {
	id, _ := e.seed()
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, exportErr := e.export(ctx, id)
	_, eraseErr := e.erase(ctx, id)
	for what, err := range map[string]error{"Export": exportErr, "Erase": eraseErr} {
		if err == nil {
			e.Logf("%s with a cancelled context returned no error; nothing to check", what)
			continue
		}
		if strings.Contains(err.Error(), id) {
			e.Errorf("%s error contains the user ID: %q", what, err.Error())
		}
	}
}

func dsConcurrent(e *dsEnv) {
	const users = 4
	ids := make([]string, users)
	wants := make([][]privacy.Record, users)
	for i := range ids {
		ids[i], wants[i] = e.seed()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*users)
	for i := range ids {
		// Even users are exported while odd users are erased.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if i%2 == 1 {
					if _, err := e.s.Erase(e.ctx, ids[i]); err != nil {
						errs <- fmt.Errorf("Erase of user %d: %w", i, err)
					}
					continue
				}
				var got []privacy.Record
				for r, err := range e.s.Export(e.ctx, ids[i]) {
					if err != nil {
						errs <- fmt.Errorf("Export of user %d: %w", i, err)
						return
					}
					got = append(got, r)
				}
				if diff, err := sameRecords(wants[i], got, e.caps.Ordered); err != nil || diff != "" {
					errs <- fmt.Errorf("Export of user %d during other users' Erase: %v (-seeded +exported):\n%s", i, err, diff)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.blockTimeout):
		e.Fatalf("concurrent calls did not finish within %v", e.cfg.blockTimeout)
	}
	close(errs)
	for err := range errs {
		e.Errorf("%v", err)
	}
	for i, id := range ids {
		got := e.mustExport(id)
		if i%2 == 1 && len(got) != 0 {
			e.Errorf("user %d was erased concurrently but Export still yields %d records", i, len(got))
		}
	}
}
