package useradmin_test

import (
	"context"
	"database/sql"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
	"github.com/stewardlabs/steward/useradmin"
)

var verifiedEmail = []steward.EmailAddress{{Address: "someone@example.com", Verified: true}}

// ops is an administrator acting from outside the identity provider's
// users, so the counts below are only of the users each case sets up.
var ops = rbac.Principal{UserID: "user_ops", Role: rbac.RoleAdmin, EmailVerified: true}

func admin(id string) steward.User {
	return steward.User{ID: id, EmailAddresses: verifiedEmail, PublicMetadata: map[string]any{"role": "admin"}}
}

func TestOnlyAdminsWhoCanActCount(t *testing.T) {
	ctx := context.Background()
	unverified := admin("user_b")
	unverified.EmailAddresses = []steward.EmailAddress{{Address: "b@example.com"}}
	noEmail := admin("user_b")
	noEmail.EmailAddresses = nil
	banned, locked := admin("user_b"), admin("user_b")
	banned.Banned, locked.Locked = true, true
	plain := steward.User{ID: "user_b", EmailAddresses: verifiedEmail}
	for _, tt := range []struct {
		name  string
		other steward.User // beside user_a, a verified, active admin
		want  error        // of demoting, banning or locking user_a
	}{
		{"a second verified, active admin lets the first go", admin("user_b"), nil},
		{"an admin whose email is unverified does not count", unverified, useradmin.ErrLastAdmin},
		{"an admin without an email does not count", noEmail, useradmin.ErrLastAdmin},
		{"a banned admin does not count", banned, useradmin.ErrLastAdmin},
		{"a locked admin does not count", locked, useradmin.ErrLastAdmin},
		{"a user who is not an admin does not count", plain, useradmin.ErrLastAdmin},
	} {
		t.Run(tt.name, func(t *testing.T) {
			actions := map[string]func(m *useradmin.Manager) error{
				"demote": func(m *useradmin.Manager) error {
					_, err := m.AssignRole(ctx, ops, "user_a", rbac.RoleUser)
					return err
				},
				"ban":  func(m *useradmin.Manager) error { return m.SetBanned(ctx, ops, "user_a", true) },
				"lock": func(m *useradmin.Manager) error { return m.SetLocked(ctx, ops, "user_a", true) },
			}
			for name, act := range actions {
				idp := steward.NewMemoryIdentity()
				idp.Put(admin("user_a"))
				idp.Put(tt.other)
				m, err := useradmin.New(idp, rbac.Default())
				if err != nil {
					t.Fatal(err)
				}
				if err := act(m); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Errorf("%s user_a = %v, want %v", name, err, tt.want)
				}
			}
		})
	}
	t.Run("an admin who cannot act may be demoted: they are not an active admin to keep", func(t *testing.T) {
		idp := steward.NewMemoryIdentity()
		idp.Put(admin("user_a"))
		idp.Put(unverified)
		m, _ := useradmin.New(idp, rbac.Default())
		if _, err := m.AssignRole(ctx, ops, "user_b", rbac.RoleUser); err != nil {
			t.Errorf("demoting an unverified admin = %v", err)
		}
		if _, err := m.AssignRole(ctx, ops, "user_a", rbac.RoleUser); !errors.Is(err, useradmin.ErrLastAdmin) {
			t.Errorf("demoting the last active admin = %v, want ErrLastAdmin", err)
		}
	})
}

// rendezvous is one identity provider shared by two Managers (as Clerk is
// by two processes). Once a ListUsers, the guard's count, has been read,
// it waits up to wait for a second one to be read too, so two unguarded
// checks both finish before either change.
type rendezvous struct {
	*steward.MemoryIdentity
	wait    time.Duration
	mu      sync.Mutex
	arrived int
	both    chan struct{}
}

func newRendezvous(wait time.Duration) *rendezvous {
	r := &rendezvous{MemoryIdentity: steward.NewMemoryIdentity(), wait: wait, both: make(chan struct{})}
	r.Put(admin("user_a"))
	r.Put(admin("user_b"))
	return r
}

func (r *rendezvous) ListUsers(ctx context.Context, q steward.UserQuery) iter.Seq2[steward.User, error] {
	return func(yield func(steward.User, error) bool) {
		defer r.meet()
		for u, err := range r.MemoryIdentity.ListUsers(ctx, q) {
			if !yield(u, err) {
				return
			}
		}
	}
}

func (r *rendezvous) meet() {
	r.mu.Lock()
	if r.arrived++; r.arrived == 2 {
		close(r.both)
	}
	r.mu.Unlock()
	select {
	case <-r.both:
	case <-time.After(r.wait):
	}
}

func (r *rendezvous) activeAdmins(t *testing.T) []string {
	t.Helper()
	var ids []string
	for u, err := range r.MemoryIdentity.ListUsers(context.Background(), steward.UserQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if u.PublicMetadata["role"] == "admin" && !u.Banned && !u.Locked {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// reopen opens a second pool on db's database (its SQLite file, or its
// PostgreSQL schema), as a second process would.
func reopen(t *testing.T, db *sql.DB, d sqlstore.Dialect) *sql.DB {
	t.Helper()
	var other *sql.DB
	if d == sqlstore.SQLite {
		var file string
		if err := db.QueryRowContext(t.Context(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			t.Fatal(err)
		}
		var err error
		if other, err = sqlstore.OpenSQLite(file); err != nil {
			t.Fatal(err)
		}
	} else {
		var schema string
		if err := db.QueryRowContext(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		cfg, err := pgx.ParseConfig(os.Getenv(sqltest.PostgresDSNEnv))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = schema
		other = stdlib.OpenDB(*cfg)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}

// leasesOf returns the lease stores of two processes on one database.
func leasesOf(t *testing.T, db *sql.DB, d sqlstore.Dialect) [2]steward.Leaser {
	t.Helper()
	var out [2]steward.Leaser
	for i, db := range []*sql.DB{db, reopen(t, db, d)} {
		s, err := sqlstore.New(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		out[i] = s.Leases()
	}
	return out
}

// TestLastAdminGuardHoldsAcrossProcesses: two Managers, as two processes,
// each with its own connection pool on one database, remove the last two
// active admins at the same moment.
func TestLastAdminGuardHoldsAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	a := rbac.Principal{UserID: "user_a", Role: rbac.RoleAdmin, EmailVerified: true}
	b := rbac.Principal{UserID: "user_b", Role: rbac.RoleAdmin, EmailVerified: true}
	changes := map[string][2]func(m *useradmin.Manager) error{
		"each demotes the other": {
			func(m *useradmin.Manager) error { _, err := m.AssignRole(ctx, a, "user_b", rbac.RoleUser); return err },
			func(m *useradmin.Manager) error { _, err := m.AssignRole(ctx, b, "user_a", rbac.RoleUser); return err },
		},
		"one bans, the other locks": {
			func(m *useradmin.Manager) error { return m.SetBanned(ctx, a, "user_b", true) },
			func(m *useradmin.Manager) error { return m.SetLocked(ctx, b, "user_a", true) },
		},
	}
	race := func(t *testing.T, idp *rendezvous, leases [2]steward.Leaser, change [2]func(m *useradmin.Manager) error) []error {
		t.Helper()
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			var opts []useradmin.Option
			if leases[i] != nil {
				opts = append(opts, useradmin.WithLeases(leases[i]))
			}
			m, err := useradmin.New(idp, rbac.Default(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = change[i](m)
			}()
		}
		wg.Wait()
		return errs
	}
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		leases := leasesOf(t, db, d)
		for name, change := range changes {
			t.Run(name+": exactly one succeeds", func(t *testing.T) {
				idp := newRendezvous(300 * time.Millisecond)
				errs := race(t, idp, leases, change)
				ok, last := 0, 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case errors.Is(err, useradmin.ErrLastAdmin):
						last++
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}
				if ok != 1 || last != 1 {
					t.Errorf("errors %v, want one success and one ErrLastAdmin", errs)
				}
				if got := idp.activeAdmins(t); len(got) != 1 {
					t.Errorf("active admins after the race: %v, want exactly one", got)
				}
			})
		}
	})
	t.Run("without a Leaser the guard is per process: two Managers both pass it and leave no admin", func(t *testing.T) {
		// This is why WithLeases exists; the rendezvous makes the two
		// checks overlap every time.
		idp := newRendezvous(5 * time.Second)
		errs := race(t, idp, [2]steward.Leaser{}, changes["each demotes the other"])
		if diff := cmp.Diff([]error{nil, nil}, errs, cmp.Comparer(func(x, y error) bool { return errors.Is(x, y) })); diff != "" {
			t.Errorf("errors (-want +got):\n%s", diff)
		}
		if got := idp.activeAdmins(t); len(got) != 0 {
			t.Errorf("active admins: %v, want none (the per-process guard let both through)", got)
		}
	})
}

func TestAdministratorsLock(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, opts ...useradmin.Option) (*useradmin.Manager, *steward.MemoryLeases, *steward.MemoryIdentity) {
		idp := steward.NewMemoryIdentity()
		idp.Put(admin("user_a"))
		idp.Put(admin("user_b"))
		leases := steward.NewMemoryLeases(nil)
		m, err := useradmin.New(idp, rbac.Default(), append([]useradmin.Option{useradmin.WithLeases(leases)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m, leases, idp
	}
	role := func(t *testing.T, m *useradmin.Manager, id string) rbac.Role {
		r, err := m.Role(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("a lock held elsewhere is waited for, then the change fails with ErrBusy and changes nothing", func(t *testing.T) {
		m, leases, _ := setup(t, useradmin.WithLockWait(80*time.Millisecond))
		if _, err := leases.AcquireLease(ctx, useradmin.LeaseName, "another-process", time.Minute); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := m.AssignRole(ctx, ops, "user_b", rbac.RoleUser)
		if !errors.Is(err, useradmin.ErrBusy) || !errors.Is(err, steward.ErrLeaseHeld) {
			t.Fatalf("AssignRole = %v, want ErrBusy matching steward.ErrLeaseHeld", err)
		}
		if waited := time.Since(start); waited < 80*time.Millisecond {
			t.Errorf("failed after %v, want it to wait the lock wait first", waited)
		}
		if got := role(t, m, "user_b"); got != rbac.RoleAdmin {
			t.Errorf("role = %s, want it unchanged", got)
		}
		if err := m.SetBanned(ctx, ops, "user_b", true); !errors.Is(err, useradmin.ErrBusy) {
			t.Errorf("SetBanned = %v, want ErrBusy", err)
		}
		if err := m.SetBanned(ctx, ops, "user_b", false); err != nil {
			t.Errorf("unbanning, which never removes an admin, needs no lock: %v", err)
		}
	})
	t.Run("a lock released during the wait is taken and the change made", func(t *testing.T) {
		m, leases, _ := setup(t)
		held, err := leases.AcquireLease(ctx, useradmin.LeaseName, "another-process", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(50*time.Millisecond, func() { _ = leases.ReleaseLease(ctx, held) })
		if _, err := m.AssignRole(ctx, ops, "user_b", rbac.RoleUser); err != nil {
			t.Fatalf("AssignRole = %v", err)
		}
		if got := role(t, m, "user_b"); got != rbac.RoleUser {
			t.Errorf("role = %s, want user", got)
		}
		if _, err := leases.AcquireLease(ctx, useradmin.LeaseName, "another-process", time.Minute); err != nil {
			t.Errorf("the lock was not released after the change: %v", err)
		}
	})
	t.Run("an unreachable lease store fails the change with an error naming the lock", func(t *testing.T) {
		idp := steward.NewMemoryIdentity()
		idp.Put(admin("user_a"))
		idp.Put(admin("user_b"))
		m, _ := useradmin.New(idp, rbac.Default(), useradmin.WithLeases(downLeases{}))
		_, err := m.AssignRole(ctx, ops, "user_b", rbac.RoleUser)
		if err == nil || errors.Is(err, useradmin.ErrBusy) || !strings.Contains(err.Error(), "administrators lock") {
			t.Errorf("AssignRole = %v, want an error naming the administrators lock", err)
		}
		if got := role(t, m, "user_b"); got != rbac.RoleAdmin {
			t.Errorf("role = %s, want it unchanged", got)
		}
	})
	t.Run("over HTTP a busy lock is 503 with Retry-After", func(t *testing.T) {
		m, leases, _ := setup(t, useradmin.WithLockWait(0))
		if _, err := leases.AcquireLease(ctx, useradmin.LeaseName, "another-process", time.Minute); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPut, "/users/user_b/role", strings.NewReader(`{"role":"user"}`))
		req = req.WithContext(rbac.WithPrincipal(req.Context(), ops))
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("status %d, Retry-After %q; want 503 and 1 (%s)", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	})
}

// downLeases is a Leaser whose database is unreachable.
type downLeases struct{}

func (downLeases) AcquireLease(context.Context, string, string, time.Duration) (steward.Lease, error) {
	return steward.Lease{}, errors.New("dial tcp 127.0.0.1:5432: connection refused")
}

func (downLeases) RenewLease(context.Context, steward.Lease, time.Duration) (steward.Lease, error) {
	return steward.Lease{}, errors.New("dial tcp 127.0.0.1:5432: connection refused")
}

func (downLeases) ReleaseLease(context.Context, steward.Lease) error { return nil }

// TestRoleChangeReachesEveryProcess: an administrator's change made
// through a Manager in one process applies to the next request that a
// second process serves with the same session token, through
// sqlstore's RoleInvalidations on their shared database, although each
// process caches accounts for an hour.
func TestRoleChangeReachesEveryProcess(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		b := backends(t)["clerk"](t)
		var lives [2]*clerkadapter.LiveRoles
		for i, db := range []*sql.DB{db, reopen(t, db, d)} {
			s, err := sqlstore.New(db, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			lives[i] = clerkadapter.NewLiveRoles(b.idp, &clerkadapter.LiveRolesOptions{
				TTL: time.Hour, Invalidations: s.RoleInvalidations(), PollInterval: 10 * time.Millisecond,
				OnError: func(err error) { t.Errorf("process %d: %v", i, err) },
			})
		}
		ctx, stop := context.WithCancel(t.Context())
		var runs sync.WaitGroup
		defer runs.Wait()
		defer stop()
		for _, l := range lives {
			runs.Go(func() { _ = l.Run(ctx) })
		}
		m, _ := newManager(t, b, useradmin.WithRoleCache(lives[0]))
		auth := clerkadapter.NewSessionAuth(b.srv.ClientConfig(), &clerkadapter.SessionOptions{Roles: lives[1]})
		h := auth.Handler(rbac.Require(rbac.AdminUsers)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
		token := b.srv.SessionToken(b.plain)
		call := func() int {
			req := httptest.NewRequest(http.MethodGet, "/admin", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		until := func(what string, want int) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for call() != want {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the other process never answered %d", what, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if got := call(); got != http.StatusForbidden {
			t.Fatalf("before: %d, want 403", got)
		}
		admin := principalOf(t, m, b.idp, b.admin)
		if _, err := m.AssignRole(t.Context(), admin, b.plain, rbac.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		until("after assigning admin in the first process", http.StatusOK)
		if err := m.SetBanned(t.Context(), admin, b.plain, true); err != nil {
			t.Fatal(err)
		}
		until("after a ban in the first process", http.StatusForbidden)
	})
}
