package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/audit/audittest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

var auditKey = []byte("sqlstore audit test key, 32 byte")

// newAuditSink returns the sink over a fresh, migrated database of d.
func newAuditSink(t testing.TB, d sqlstore.Dialect) (*sqlstore.AuditSink, *sql.DB) {
	t.Helper()
	db := sqltest.Open(t, d)
	store, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store.AuditSink(), db
}

func eachDialect(t *testing.T, f func(t *testing.T, d sqlstore.Dialect)) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

func TestAuditSinkConformance(t *testing.T) {
	eachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		audittest.RunConformance(t, func(t *testing.T) audit.Sink {
			s, _ := newAuditSink(t, d)
			return s
		})
	})
}

func logAudit(t *testing.T, sink audit.Sink, n int) {
	t.Helper()
	l, err := audit.NewLogger(sink, audit.WithKey("k1", auditKey))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: fmt.Sprintf("user_%d", i),
			Actor: "user_admin", Details: map[string]any{"i": i, "ratio": 0.1 * float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// disableAppendOnly removes the triggers, as someone with DDL rights could.
func disableAppendOnly(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	stmts := []string{"DROP TRIGGER steward_audit_events_no_update", "DROP TRIGGER steward_audit_events_no_delete"}
	if d == sqlstore.Postgres {
		stmts = []string{"ALTER TABLE steward_audit_events DISABLE TRIGGER USER"}
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditTableIsAppendOnly(t *testing.T) {
	eachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		sink, db := newAuditSink(t, d)
		logAudit(t, sink, 2)
		stmts := []string{
			"UPDATE steward_audit_events SET details = '{}' WHERE seq = 1",
			"DELETE FROM steward_audit_events WHERE seq = 2",
		}
		if d == sqlstore.Postgres {
			stmts = append(stmts, "TRUNCATE steward_audit_events")
		}
		for _, q := range stmts {
			_, err := db.ExecContext(t.Context(), q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want the append-only trigger to refuse it", q, err)
			}
		}
		if err := audit.Verify(sink.Events(t.Context(), 0)); err != nil {
			t.Error(err)
		}
	})
}

// TestAuditTamperingIsFound changes the stored rows directly, in each of
// the four ways, and checks that Verify names the right sequence.
func TestAuditTamperingIsFound(t *testing.T) {
	tests := []struct {
		name string
		sql  []string
		want uint64
	}{
		{"an edited row", []string{`UPDATE steward_audit_events SET details = '{"i":99,"ratio":0.3}' WHERE seq = 4`}, 4},
		{"an edited subject", []string{`UPDATE steward_audit_events SET subject = 'hmac-sha256:k1:00' WHERE seq = 2`}, 2},
		{"a deleted row", []string{`DELETE FROM steward_audit_events WHERE seq = 3`}, 3},
		{"an inserted row", []string{
			`UPDATE steward_audit_events SET seq = seq + 100 WHERE seq >= 4`,
			`UPDATE steward_audit_events SET seq = seq - 99 WHERE seq >= 104`,
			`INSERT INTO steward_audit_events (seq, id, event_type, subject, actor, details, logged_at, key_id, prev_hash, hash)
			 SELECT 4, 'forged', event_type, subject, actor, details, logged_at, key_id, hash, hash FROM steward_audit_events WHERE seq = 3`,
		}, 4},
		{"reordered rows", []string{
			`UPDATE steward_audit_events SET seq = 100 WHERE seq = 2`,
			`UPDATE steward_audit_events SET seq = 2 WHERE seq = 3`,
			`UPDATE steward_audit_events SET seq = 3 WHERE seq = 100`,
		}, 2},
	}
	eachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sink, db := newAuditSink(t, d)
				logAudit(t, sink, 6)
				if err := audit.Verify(sink.Events(t.Context(), 0)); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
				disableAppendOnly(t, db, d)
				for _, q := range tt.sql {
					if _, err := db.ExecContext(t.Context(), q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				var ce *audit.ChainError
				err := audit.Verify(sink.Events(t.Context(), 0))
				if !errors.As(err, &ce) || !errors.Is(err, audit.ErrTampered) {
					t.Fatalf("Verify = %v, want a *ChainError", err)
				}
				if ce.Sequence != tt.want {
					t.Errorf("Verify names sequence %d (%s), want %d", ce.Sequence, ce.Reason, tt.want)
				}
			})
		}
	})
}

// TestAuditChainSurvivesRestart logs with one Logger, then with a new one
// over the same table, as after a restart, under two keys.
func TestAuditChainSurvivesRestart(t *testing.T) {
	eachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		sink, _ := newAuditSink(t, d)
		logAudit(t, sink, 3)
		l, err := audit.NewLogger(sink, audit.WithKey("k2", []byte("a second key for after rotation.")))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := l.Log(t.Context(), audit.Event{Type: audit.RoleChange, Subject: "user_1", Actor: "system:sync"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := audit.Verify(sink.Events(t.Context(), 0)); err != nil {
			t.Fatal(err)
		}
		last, err := sink.Last(t.Context())
		if err != nil || last.Sequence != 5 || last.KeyID != "k2" {
			t.Fatalf("Last = %d %q, %v", last.Sequence, last.KeyID, err)
		}
		p, _ := audit.NewPseudonymizer(audit.Key{ID: "k2", Secret: []byte("a second key for after rotation.")},
			audit.Key{ID: "k1", Secret: auditKey})
		var found []uint64
		for e, err := range p.Lookup(sink.Events(t.Context(), 0), "user_1") {
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, e.Sequence)
		}
		if fmt.Sprint(found) != "[2 4 5]" {
			t.Errorf("events of user_1 = %v, want [2 4 5]", found)
		}
	})
}

// TestAuditConcurrentLogging writes through one Logger from many
// goroutines: group commit must keep one valid chain.
func TestAuditConcurrentLogging(t *testing.T) {
	eachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		sink, _ := newAuditSink(t, d)
		l, err := audit.NewLogger(sink, audit.WithKey("k1", auditKey))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 25 {
					if err := l.Log(t.Context(), audit.Event{Type: audit.DataAccess, Subject: "u", Details: map[string]any{"g": g, "i": i}}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		n := 0
		for _, err := range sink.Events(t.Context(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 200 {
			t.Errorf("stored %d events, want 200", n)
		}
		if err := audit.Verify(sink.Events(t.Context(), 0)); err != nil {
			t.Error(err)
		}
	})
}

// BenchmarkAuditSinkWrite writes batches of chained events, as a Logger's
// group commit does under load. Run with STEWARD_TEST_POSTGRES_DSN set for
// PostgreSQL.
func BenchmarkAuditSinkWrite(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite} {
		for _, batch := range []int{256, 1000, 5000} {
			b.Run(fmt.Sprintf("%s/batch=%d", d, batch), func(b *testing.B) {
				if d == sqlstore.Postgres && os.Getenv(sqltest.PostgresDSNEnv) == "" {
					b.Skipf("set %s", sqltest.PostgresDSNEnv)
				}
				sink, _ := newAuditSink(b, d)
				events := benchEvents(b, batch)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range events { // the next batch continues the numbering
						events[j].Sequence = uint64(i*batch + j + 1)
					}
					if err := sink.Write(context.Background(), events); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

func benchEvents(b *testing.B, n int) []audit.Event {
	mem := audit.NewMemorySink()
	l, err := audit.NewLogger(mem, audit.WithKey("k1", auditKey))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := l.Log(context.Background(), audit.Event{Type: audit.DataExport, Subject: "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
			Actor: "user_2admin9QxPzM4kLw8s1TbVu0aD", Details: map[string]any{"stores": 3, "i": i}}); err != nil {
			b.Fatal(err)
		}
	}
	return mem.Snapshot()
}

// BenchmarkAuditLoggerToSQL logs from many goroutines through one Logger
// into the SQL sink: group commit turns concurrent Log calls into batches.
func BenchmarkAuditLoggerToSQL(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite} {
		b.Run(string(d), func(b *testing.B) {
			if d == sqlstore.Postgres && os.Getenv(sqltest.PostgresDSNEnv) == "" {
				b.Skipf("set %s", sqltest.PostgresDSNEnv)
			}
			sink, _ := newAuditSink(b, d)
			l, err := audit.NewLogger(sink, audit.WithKey("k1", auditKey))
			if err != nil {
				b.Fatal(err)
			}
			e := audit.Event{Type: audit.DataExport, Subject: "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
				Actor: "user_2admin9QxPzM4kLw8s1TbVu0aD", Details: map[string]any{"stores": 3}}
			b.SetParallelism(128)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Log(context.Background(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
