package sqlstore_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/sqlstore"
)

// TestSQLiteWritersWithoutImmediateTransactions: an application that
// opens its SQLite file itself with WAL and a busy timeout but without
// _txlock=immediate gets deferred transactions. Two pools on the file (two
// processes), each with Loggers and a consent Manager writing at once,
// must still never see the other's writes as errors: every write waits
// for the lock instead of failing with SQLITE_BUSY.
func TestSQLiteWritersWithoutImmediateTransactions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	var stores []*sqlstore.Store
	for range 2 {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := sqlstore.New(db, sqlstore.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	idp := steward.NewMemoryIdentity()
	for i := range 4 {
		idp.Put(steward.User{ID: fmt.Sprintf("user_%d", i)})
	}
	const perGoroutine = 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i := range 4 {
		s := stores[i%2]
		l, err := audit.NewLogger(s.AuditSink(), audit.WithKey("k1", auditKey))
		if err != nil {
			t.Fatal(err)
		}
		m, err := consent.NewManager(s.Consent(), idp)
		if err != nil {
			t.Fatal(err)
		}
		for g := range 3 {
			wg.Go(func() {
				for j := range perGoroutine {
					if err := l.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: "user_1"}); err != nil {
						fail(err)
					}
					if g == 0 {
						user := fmt.Sprintf("user_%d", j%4)
						if _, err := m.Update(t.Context(), user, map[consent.Purpose]bool{consent.Marketing: j%2 == 0}, consent.Meta{Source: "settings"}); err != nil {
							fail(err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d writes failed; the first: %v", len(errs), errs[0])
	}
	n := 0
	for _, err := range stores[0].AuditSink().Events(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := 4 * 3 * perGoroutine; n != want {
		t.Errorf("the chain holds %d events, want %d", n, want)
	}
	if err := audit.Verify(stores[1].AuditSink().Events(t.Context(), 0)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
