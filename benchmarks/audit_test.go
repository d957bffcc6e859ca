package benchmarks

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/internal/fleet"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// auditWriterRole is the role of a re-executed benchmark binary that
// appends events to one PostgreSQL chain (see runAuditWriter).
const auditWriterRole = "audit-writer"

// Environment of an audit writer process.
const (
	writerSchemaEnv     = "STEWARD_BENCH_AUDIT_SCHEMA"
	writerEventsEnv     = "STEWARD_BENCH_AUDIT_EVENTS"
	writerGoroutinesEnv = "STEWARD_BENCH_AUDIT_GOROUTINES"
	writerKeyEnv        = "STEWARD_BENCH_AUDIT_KEY"
)

// auditRoundEvents is how many events one round appends, whatever the
// number of processes: one process appends them all, or three a third
// each.
const auditRoundEvents = 48_000

// auditGoroutines is how many goroutines call Logger.Log in each writer
// process, so that group commit batches them.
const auditGoroutines = 256

// writerReport is what a writer prints when it is done.
type writerReport struct {
	Events  int64   `json:"events"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	LastErr string  `json:"lastErr,omitempty"`
}

// BenchmarkAuditAppendProcesses appends events to one PostgreSQL audit
// chain (sqlstore's AuditSink, Logger with group commit) from one writer
// process and from three, in the same run, and reports the events per
// second of each and their ratio (three ÷ one). Each round appends
// auditRoundEvents events in all, from auditGoroutines goroutines per
// process; the time is from the moment every writer is connected and
// told to go until the last one has flushed. Rounds alternate which
// shape goes first. The chain must verify afterwards and hold every
// event.
func BenchmarkAuditAppendProcesses(b *testing.B) {
	if os.Getenv(sqltest.PostgresDSNEnv) == "" {
		b.Skipf("set %s to run the PostgreSQL audit benchmark", sqltest.PostgresDSNEnv)
	}
	ctx := context.Background()
	db := sqltest.Open(b, sqlstore.Postgres)
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)

	var elapsed [2]time.Duration // one process, three
	var logged int64
	b.StopTimer() // each round times only its appends
	for i := 0; i < b.N; i++ {
		for k := range 2 {
			shape := (i + k) % 2
			procs := []int{1, 3}[shape]
			d := auditRound(b, schema, key, procs)
			elapsed[shape] += d
			logged += auditRoundEvents
		}
	}
	one := float64(b.N*auditRoundEvents) / elapsed[0].Seconds()
	three := float64(b.N*auditRoundEvents) / elapsed[1].Seconds()
	b.ReportMetric(one, "events/s-1proc")
	b.ReportMetric(three, "events/s-3procs")
	b.ReportMetric(three/one, "3procs/1proc")

	sink := store.AuditSink()
	if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
		b.Fatalf("the chain does not verify: %v", err)
	}
	last, err := sink.Last(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if int64(last.Sequence) != logged {
		b.Fatalf("the chain ends at sequence %d, want %d", last.Sequence, logged)
	}
}

// auditRound starts procs writer processes, waits until each is
// connected, tells them all to go, and returns the time until the last
// one reported that its share is stored.
func auditRound(b *testing.B, schema string, key []byte, procs int) time.Duration {
	b.Helper()
	type writer struct {
		p   *fleet.Process
		in  io.WriteCloser
		out *bufio.Scanner
	}
	ws := make([]writer, procs)
	for i := range ws {
		cmd := fleet.Command(auditWriterRole,
			writerSchemaEnv+"="+schema,
			writerEventsEnv+"="+strconv.Itoa(auditRoundEvents/procs),
			writerGoroutinesEnv+"="+strconv.Itoa(auditGoroutines),
			writerKeyEnv+"="+hex.EncodeToString(key))
		// Pipes of our own: Start waits for the process at once, and
		// Wait would close exec's pipes before we read them.
		inR, in, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		out, outW, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
		p, err := fleet.Start(cmd)
		inR.Close()
		outW.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = p.Kill()
			in.Close()
			out.Close()
		})
		ws[i] = writer{p: p, in: in, out: bufio.NewScanner(out)}
	}
	for i, w := range ws {
		if !w.out.Scan() || w.out.Text() != "ready" {
			b.Fatalf("audit writer %d did not get ready: %q %v", i, w.out.Text(), w.out.Err())
		}
	}
	b.StartTimer()
	start := time.Now()
	for _, w := range ws {
		if _, err := io.WriteString(w.in, "go\n"); err != nil {
			b.Fatal(err)
		}
	}
	reports := make([]writerReport, procs)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			if !w.out.Scan() {
				reports[i].LastErr = fmt.Sprintf("no report: %v", w.out.Err())
				return
			}
			if err := json.Unmarshal(w.out.Bytes(), &reports[i]); err != nil {
				reports[i].LastErr = fmt.Sprintf("report %q: %v", w.out.Text(), err)
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	b.StopTimer()
	for i, w := range ws {
		state, err := w.p.Wait(context.Background())
		if err != nil || !state.Success() {
			b.Fatalf("audit writer %d ended with %v (%v)", i, state, err)
		}
		if r := reports[i]; r.Errors > 0 || r.Events != auditRoundEvents/int64(procs) {
			b.Fatalf("audit writer %d of %d logged %d events with %d errors (last: %s), want %d", i, procs, r.Events, r.Errors, r.LastErr, auditRoundEvents/procs)
		}
	}
	return d
}

// runAuditWriter is the audit writer role: connect, print "ready", wait
// for a line on standard input, log its share of events from many
// goroutines, flush, and print a writerReport.
func runAuditWriter() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "audit writer: %v\n", err)
		return 2
	}
	events, _ := strconv.ParseInt(os.Getenv(writerEventsEnv), 10, 64)
	goroutines, _ := strconv.Atoi(os.Getenv(writerGoroutinesEnv))
	key, err := hex.DecodeString(os.Getenv(writerKeyEnv))
	if err != nil {
		return fail(err)
	}
	cfg, err := pgx.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
	if err != nil {
		return fail(err)
	}
	cfg.RuntimeParams["search_path"] = os.Getenv(writerSchemaEnv)
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx := context.Background()
	if err := warm(ctx, db); err != nil {
		return fail(err)
	}
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		return fail(err)
	}
	l, err := audit.NewLogger(store.AuditSink(), audit.WithKey("k1", key))
	if err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fail(err)
	}
	pid := strconv.Itoa(os.Getpid())
	var (
		left, failed atomic.Int64
		lastErr      atomic.Value
		wg           sync.WaitGroup
	)
	left.Store(events)
	start := time.Now()
	for g := range goroutines {
		e := audit.Event{Type: audit.DataExport, Subject: "user_bench" + pid + "_" + strconv.Itoa(g),
			Actor: "user_2admin9QxPzM4kLw8s1TbVu0aD", Details: map[string]any{"stores": 3}}
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := l.Log(ctx, e); err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		return fail(err)
	}
	r := writerReport{Events: events - failed.Load(), Errors: failed.Load(), Seconds: time.Since(start).Seconds()}
	if s, ok := lastErr.Load().(string); ok {
		r.LastErr = s
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

// warm opens the connections the Logger will use, so that the timed part
// does not include connecting.
func warm(ctx context.Context, db *sql.DB) error {
	conns := make([]*sql.Conn, 4)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		conns[i] = c
	}
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}
