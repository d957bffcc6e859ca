package examples_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// server is one gdprserver process.
type server struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
}

func startServer(t *testing.T, bin string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) == 3 && f[0] == "listening" {
			s.base = f[2]
		}
	}
	if s.base == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("gdprserver did not start: %q\nstderr:\n%s", lines.Text(), s.stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return s
}

// TestGDPRServersOnRiver runs three gdprserver processes in River mode on
// one PostgreSQL database and one fake Clerk, asks for 200 erasures over
// HTTP spread over them, and SIGKILLs one process midway and starts it
// again. Every erasure must complete; each user is deleted from Clerk
// once, each request has one job and one completion event; the audit
// chain verifies.
func TestGDPRServersOnRiver(t *testing.T) {
	dsn := os.Getenv(sqltest.PostgresDSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set", sqltest.PostgresDSNEnv)
	}
	bin := build(t, "gdprserver")
	db, schema, serverDSN := freshSchema(t, dsn)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "SET search_path TO "+schema); err != nil {
		t.Fatal(err)
	}
	// One connection pinned to the schema for the checks below.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET search_path TO "+schema); err != nil {
		t.Fatal(err)
	}

	clerk := clerktest.NewServer()
	defer clerk.Close()
	const n = 200
	var ids, tokens []string
	for i := range n {
		u := clerk.AddUser(steward.User{FirstName: fmt.Sprintf("User%d", i), PublicMetadata: map[string]any{"role": "user"}})
		ids = append(ids, u.ID)
		tokens = append(tokens, clerk.SessionToken(u.ID, clerktest.TokenExpiresAt(time.Now().Add(time.Hour))))
	}
	// Every replica shares the audit key (one pseudonym per person), and
	// erasures start at once (no grace period).
	auditKey := audit.FormatKey(audit.Key{ID: "e2e", Secret: []byte("river e2e audit key, 32 bytes...")})
	env := []string{"STEWARD_POSTGRES_DSN=" + serverDSN, "CLERK_SECRET_KEY=" + clerk.SecretKey(),
		"CLERK_API_URL=" + clerk.URL + "/v1", "CLERK_AUTHORIZED_PARTIES=" + clerktest.DefaultAuthorizedParty,
		"STEWARD_AUDIT_KEY=" + auditKey, "STEWARD_GRACE_PERIOD=0s", "STEWARD_DATA_DIR=" + t.TempDir()}
	servers := []*server{startServer(t, bin, env, "-jobs", "river", "-job-timeout", "15s")} // the first one creates the tables
	appDB, err := sqlstore.OpenPostgres(serverDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer appDB.Close()
	for _, id := range ids {
		if _, err := exampleschema.Seed(ctx, appDB, sqlstore.Postgres, id, 3, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	servers = append(servers, startServer(t, bin, env, "-jobs", "river", "-job-timeout", "15s"), startServer(t, bin, env, "-jobs", "river", "-job-timeout", "15s"))

	var mu sync.Mutex
	pick := func(i int) string {
		mu.Lock()
		defer mu.Unlock()
		return servers[i%len(servers)].base
	}
	client := &http.Client{Timeout: 90 * time.Second}
	erase := func(i int) error {
		for try := 0; ; try++ {
			req, _ := http.NewRequest(http.MethodDelete, pick(i+try)+"/api/user/delete", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			req.Header.Set("X-Confirm-Delete", "true")
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				// 401 once the user is gone: an earlier try completed
				// the erasure before its answer was cut off.
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized && try > 0 {
					return nil
				}
				err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
			if try == 20 {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := erase(i); err != nil {
					errs <- fmt.Errorf("erasure %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		if i == n/3 {
			victim := servers[1]
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = victim.cmd.Wait()
			fresh := startServer(t, bin, env, "-jobs", "river", "-job-timeout", "15s")
			mu.Lock()
			servers[1] = fresh
			mu.Unlock()
		}
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Every request completes, and every job with it (requests that the
	// killed process was running finish once their claim lapses).
	count := func(q string, args ...any) int {
		var c int
		if err := conn.QueryRowContext(ctx, q, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count(`SELECT count(*) FROM steward_privacy_requests WHERE status = 'completed'`) < n ||
		count(`SELECT count(*) FROM river_job WHERE kind = 'steward.erasure' AND state <> 'completed'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not all erasures completed: %d of %d requests, %d unfinished jobs", count(`SELECT count(*) FROM steward_privacy_requests WHERE status = 'completed'`), n,
				count(`SELECT count(*) FROM river_job WHERE kind = 'steward.erasure' AND state <> 'completed'`))
		}
		time.Sleep(250 * time.Millisecond)
	}
	type totals struct{ Requests, Completed, Jobs, CompletedJobs, CompletionEvents, AppRowsLeft int }
	got := totals{
		Requests:         count(`SELECT count(*) FROM steward_privacy_requests WHERE kind = 'erasure'`),
		Completed:        count(`SELECT count(*) FROM steward_privacy_requests WHERE kind = 'erasure' AND status = 'completed'`),
		Jobs:             count(`SELECT count(*) FROM river_job WHERE kind = 'steward.erasure'`),
		CompletedJobs:    count(`SELECT count(DISTINCT args->>'request_id') FROM river_job WHERE kind = 'steward.erasure' AND state = 'completed'`),
		CompletionEvents: count(`SELECT count(*) FROM steward_audit_events WHERE event_type = 'data_deletion' AND details LIKE '%"status":"completed"%'`),
		AppRowsLeft:      count(`SELECT count(*) FROM orders`),
	}
	if diff := cmp.Diff(totals{n, n, n, n, n, 0}, got); diff != "" {
		t.Errorf("after the run (-want +got):\n%s", diff)
	}
	deletes := map[string]int{}
	for _, r := range clerk.Requests() {
		if r.Method == http.MethodDelete && r.Status == http.StatusOK {
			deletes[strings.TrimPrefix(r.Path, "/v1/users/")]++
		}
	}
	for _, id := range ids {
		if deletes[id] != 1 {
			t.Errorf("user %d deleted from Clerk %d times, want once", slices.Index(ids, id), deletes[id])
		}
	}
	store, err := sqlstore.New(appDB, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(store.AuditSink().Events(ctx, 0)); err != nil {
		t.Errorf("the audit chain does not verify: %v", err)
	}
}
