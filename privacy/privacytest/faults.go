package privacytest

import (
	"context"
	"errors"
	"iter"
	"sync"
	"time"

	"github.com/stewardlabs/steward/privacy"
)

// ErrInjected is the error FaultyStore injects when it is given none.
var ErrInjected = errors.New("privacytest: injected fault")

// FaultyStore wraps a privacy.DataStore and injects faults, so that a
// test can show what its code does when a store fails: the next calls
// fail (FailNext, FailNextExport, FailNextErase), an Export fails after a
// number of records (FailAfter), or every call is slowed down (Delay).
// Without faults it forwards every call unchanged, so it can stand in for
// the store everywhere:
//
//	orders := privacytest.NewFaultyStore(myStore)
//	orders.FailNextErase(2, errors.New("deadlock detected")) // the next two Erase calls fail
//	svc, _ := privacy.NewService(idp, privacy.WithStores(orders))
//
// Faults apply in this order: the delay, then a failing call (which
// reaches the wrapped store not at all), then FailAfter's cut of Export.
// A FaultyStore is safe for concurrent use.
type FaultyStore struct {
	next privacy.DataStore

	mu          sync.Mutex
	failExport  int // calls left to fail; < 0 fails every call
	failErase   int
	exportErr   error
	eraseErr    error
	afterN      int // Export yields at most afterN records, then afterErr; < 0 none
	afterErr    error
	delay       time.Duration
	exports     int
	erases      int
	failedCalls int
}

var _ privacy.DataStore = (*FaultyStore)(nil)

// NewFaultyStore returns a FaultyStore over next, injecting nothing
// until told to.
func NewFaultyStore(next privacy.DataStore) *FaultyStore {
	return &FaultyStore{next: next, afterN: -1}
}

// Name returns the wrapped store's name.
func (f *FaultyStore) Name() string { return f.next.Name() }

// FailNext makes the next n calls of Export and of Erase each fail with
// err (ErrInjected when nil): n Export calls and n Erase calls. A
// negative n fails every call until FailNext(0, nil) or Reset.
func (f *FaultyStore) FailNext(n int, err error) {
	f.FailNextExport(n, err)
	f.FailNextErase(n, err)
}

// FailNextExport makes the next n Export calls yield err (ErrInjected
// when nil) before any record; a negative n fails every Export until
// FailNextExport(0, nil) or Reset.
func (f *FaultyStore) FailNextExport(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failExport, f.exportErr = n, orInjected(err)
}

// FailNextErase makes the next n Erase calls return err (ErrInjected when
// nil) without erasing anything; a negative n fails every Erase until
// FailNextErase(0, nil) or Reset.
func (f *FaultyStore) FailNextErase(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failErase, f.eraseErr = n, orInjected(err)
}

// FailAfter makes every Export yield at most n records of the wrapped
// store and then err (ErrInjected when nil), as a connection lost
// mid-stream would; the error comes also when the store has n records or
// fewer. A negative n turns it off.
func (f *FaultyStore) FailAfter(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.afterN, f.afterErr = n, orInjected(err)
}

// Delay makes each Erase wait d before it runs, each Export wait d
// before each record it yields, and a failing call wait d before it
// fails. A context that ends during the wait ends the call with the
// context's error. Zero turns it off.
func (f *FaultyStore) Delay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Reset removes every fault and zeroes the counts.
func (f *FaultyStore) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failExport, f.failErase, f.afterN, f.delay = 0, 0, -1, 0
	f.exports, f.erases, f.failedCalls = 0, 0, 0
}

// Calls returns how many times Export and Erase were called, failed
// calls included.
func (f *FaultyStore) Calls() (exports, erases int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exports, f.erases
}

// Failed returns how many calls failed by an injected FailNext fault.
func (f *FaultyStore) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failedCalls
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}

// take consumes one injected failure from *left, reporting whether the
// call fails.
func (f *FaultyStore) take(left *int) bool {
	switch {
	case *left < 0:
	case *left > 0:
		*left--
	default:
		return false
	}
	f.failedCalls++
	return true
}

// wait sleeps d or until ctx ends, returning ctx's error then.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Export forwards to the wrapped store, with the faults set.
func (f *FaultyStore) Export(ctx context.Context, userID string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		f.mu.Lock()
		f.exports++
		fail, failErr := f.take(&f.failExport), f.exportErr
		after, afterErr, delay := f.afterN, f.afterErr, f.delay
		f.mu.Unlock()
		if fail {
			if err := wait(ctx, delay); err != nil {
				failErr = err
			}
			yield(privacy.Record{}, failErr)
			return
		}
		n := 0
		for rec, err := range f.next.Export(ctx, userID) {
			if err != nil {
				yield(rec, err)
				return
			}
			if after >= 0 && n == after {
				break
			}
			if err := wait(ctx, delay); err != nil {
				yield(privacy.Record{}, err)
				return
			}
			if !yield(rec, nil) {
				return
			}
			n++
		}
		if after >= 0 {
			yield(privacy.Record{}, afterErr)
		}
	}
}

// Erase forwards to the wrapped store, with the faults set.
func (f *FaultyStore) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	f.mu.Lock()
	f.erases++
	fail, failErr := f.take(&f.failErase), f.eraseErr
	delay := f.delay
	f.mu.Unlock()
	if err := wait(ctx, delay); err != nil {
		return privacy.Erased{}, err
	}
	if fail {
		return privacy.Erased{}, failErr
	}
	return f.next.Erase(ctx, userID)
}
