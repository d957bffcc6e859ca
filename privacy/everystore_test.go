package privacy_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// backend is where one run of the proofs below keeps its requests and
// the application's data: memory, or one SQL database.
type backend struct {
	name  string
	reqs  privacy.RequestStore
	data  privacy.DataStore
	seed  func(t *testing.T, userID string) // gives userID some rows
	count func(t *testing.T, userID string) int
}

func backends(t *testing.T) []func(t *testing.T) backend {
	mem := func(t *testing.T) backend {
		store := privacy.NewMemoryStore("app")
		return backend{
			name: "memory", reqs: privacy.NewMemoryRequestStore(), data: store,
			seed: func(_ *testing.T, id string) {
				store.Add(id, privacy.Record{Category: "orders", Data: map[string]any{"total": 1}},
					privacy.Record{Category: "activity", Data: map[string]any{"action": "login"}})
			},
			count: func(_ *testing.T, id string) int { return store.Len(id) },
		}
	}
	sqlBackend := func(d sqlstore.Dialect) func(t *testing.T) backend {
		return func(t *testing.T) backend {
			ctx := context.Background()
			db := sqltest.Open(t, d)
			st, err := sqlstore.New(db, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := exampleschema.Create(ctx, db, d); err != nil {
				t.Fatal(err)
			}
			data, err := sqldata.New(ctx, db, d, exampleschema.Tables(), sqldata.WithName("app"))
			if err != nil {
				t.Fatal(err)
			}
			return backend{
				name: string(d), reqs: st.Requests(), data: data,
				seed: func(t *testing.T, id string) {
					if _, err := exampleschema.Seed(ctx, db, d, id, 10, time.Now()); err != nil {
						t.Fatal(err)
					}
				},
				count: func(t *testing.T, id string) int { return sqlRows(t, db, d, id) },
			}
		}
	}
	return []func(t *testing.T) backend{mem, sqlBackend(sqlstore.SQLite), sqlBackend(sqlstore.Postgres)}
}

// sqlRows counts userID's rows in the example schema.
func sqlRows(t *testing.T, db *sql.DB, d sqlstore.Dialect, userID string) int {
	t.Helper()
	n := 0
	for _, q := range []string{
		`SELECT COUNT(*) FROM user_profiles WHERE clerk_id = ?`,
		`SELECT COUNT(*) FROM orders WHERE user_id = ?`,
		`SELECT COUNT(*) FROM user_preferences WHERE user_id = ?`,
		`SELECT COUNT(*) FROM activity_log WHERE user_id = ?`,
	} {
		q = d.Rebind(q)
		var c int
		if err := db.QueryRow(q, userID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// lateWriter is an identity provider whose DeleteUser lets the
// application write one more row for the user first, as a session still
// working during the identity step would.
type lateWriter struct {
	*steward.MemoryIdentity
	write func(userID string)
}

func (l lateWriter) DeleteUser(ctx context.Context, userID string) error {
	if l.write != nil {
		l.write(userID)
	}
	return l.MemoryIdentity.DeleteUser(ctx, userID)
}

// TestProofsInEveryStore runs the erasure's proofs as an adopting team
// would, with requests and data in memory, SQLite and PostgreSQL: a row
// written mid-way does not survive, the user stays fenced, the finished
// request holds pseudonyms, queued exports go with the user, an unknown
// user is reported as such, a grace period can be cancelled, and Replay
// re-erases a user whose rows came back.
func TestProofsInEveryStore(t *testing.T) {
	for _, mk := range backends(t) {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			idp := steward.NewMemoryIdentity()
			for _, id := range []string{"user_gone", "user_stays", "user_later"} {
				idp.Put(steward.User{ID: id, EmailAddresses: []steward.EmailAddress{{ID: "e1", Address: id + "@example.com"}}})
				b.seed(t, id)
			}
			late := lateWriter{MemoryIdentity: idp}
			late.write = func(id string) { b.seed(t, id) }
			sink := audit.NewMemorySink()
			log, err := audit.NewLogger(sink, audit.WithKey("k1", bytes.Repeat([]byte{3}, 32)))
			if err != nil {
				t.Fatal(err)
			}
			blobs := privacy.NewMemoryBlobs()
			done := make(chan privacy.Request, 4)
			newService := func(opts ...privacy.Option) *privacy.Service {
				base := []privacy.Option{privacy.WithStores(b.data), privacy.WithAudit(log), privacy.WithRequestStore(b.reqs),
					privacy.WithRetry(fastRetry), privacy.WithBlobWriter(blobs), privacy.WithNotifier(notifier{done})}
				svc, err := privacy.NewService(late, append(base, opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = svc.Close(ctx) })
				return svc
			}
			svc := newService()

			// A queued export, finished before the erasure.
			exp, err := svc.StartExport(ctx, "user_gone")
			if err != nil {
				t.Fatal(err)
			}
			if note := <-done; note.Status != privacy.StatusCompleted {
				t.Fatalf("export %s is %s", exp, note.Status)
			}
			if len(blobs.Names()) != 1 {
				t.Fatalf("blobs after the export: %v", blobs.Names())
			}

			before := b.count(t, "user_gone")
			res, err := svc.Erase(ctx, "user_gone")
			if err != nil || !res.Success {
				t.Fatalf("Erase = %+v, %v", res, err)
			}
			if n := b.count(t, "user_gone"); n != 0 {
				t.Errorf("%d rows written during the identity step survived a successful erasure", n)
			}
			if res.Erased["app"] < before {
				t.Errorf("erased %d in app, want at least %d (both passes)", res.Erased["app"], before)
			}
			if n := b.count(t, "user_stays"); n == 0 {
				t.Error("another user's rows went too")
			}
			if names := blobs.Names(); len(names) != 0 {
				t.Errorf("blobs after the erasure: %v", names)
			}
			if r, err := svc.Request(ctx, exp); err != nil || r.Status != privacy.StatusExpired || !r.Pseudonymous() {
				t.Errorf("the erased user's export: %+v, %v; want expired, pseudonymous", r, err)
			}
			req, err := svc.Request(ctx, res.RequestID)
			if err != nil || !req.Pseudonymous() || req.Actor == "user_gone" {
				t.Errorf("the completed request names %q by %q, %v; want pseudonyms", req.UserID, req.Actor, err)
			}
			// Another instance over the same stores keeps the user fenced.
			other := newService()
			if err := other.CheckFence(ctx, "user_gone"); !errors.Is(err, privacy.ErrErased) {
				t.Errorf("CheckFence after the erasure = %v, want ErrErased", err)
			}
			if _, err := other.StartExport(ctx, "user_stays"); err != nil {
				t.Errorf("StartExport of another user = %v", err)
			}
			<-done

			// An unknown user: nothing counted for the identity.
			res, err = svc.Erase(ctx, "user_typo")
			if err != nil || !res.IdentityNotFound || res.Erased["identity"] != 0 {
				t.Errorf("Erase of an unknown user = %+v, %v; want IdentityNotFound", res, err)
			}

			// A grace period the user takes back.
			graced := newService(privacy.WithGracePeriod(time.Hour))
			res, err = graced.Erase(ctx, "user_later")
			if !errors.Is(err, privacy.ErrScheduled) || res.NotBefore.IsZero() {
				t.Fatalf("Erase with a grace period = %+v, %v; want ErrScheduled", res, err)
			}
			if err := graced.CheckFence(ctx, "user_later"); err != nil {
				t.Errorf("CheckFence during the grace period = %v", err)
			}
			self := rbac.WithPrincipal(ctx, rbac.Principal{UserID: "user_later", Role: "user", EmailVerified: true})
			if r, err := graced.Cancel(self, res.RequestID, "changed my mind"); err != nil || r.Status != privacy.StatusCancelled {
				t.Errorf("Cancel by the user in the grace period = %+v, %v", r, err)
			}
			if n := b.count(t, "user_later"); n == 0 {
				t.Error("a cancelled erasure erased the user's rows")
			}
			if _, err := graced.Erase(ctx, "user_later"); !errors.Is(err, privacy.ErrScheduled) {
				t.Errorf("a new Erase after a cancel = %v, want ErrScheduled", err)
			}

			// A restore brings the erased user's rows back: Replay erases
			// them, and nobody else's.
			b.seed(t, "user_gone")
			stays := b.count(t, "user_stays")
			n, err := svc.Replay(ctx)
			if err != nil || n != 1 {
				t.Errorf("Replay = %d, %v; want 1", n, err)
			}
			if got := b.count(t, "user_gone"); got != 0 {
				t.Errorf("%d rows of the erased user after Replay", got)
			}
			if got := b.count(t, "user_stays"); got != stays {
				t.Errorf("Replay changed another user: %d rows, want %d", got, stays)
			}
			if err := audit.Verify(sink.Events(ctx, 0)); err != nil {
				t.Error(err)
			}

			// After their proof period the finished requests go; the
			// ledger stays and keeps fencing the user.
			target, err := svc.FinishedRequests()
			if err != nil {
				t.Fatal(err)
			}
			for {
				n, err := target.Purge(ctx, time.Now().Add(time.Hour), 100, nil)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			for r, err := range b.reqs.List(ctx, privacy.RequestFilter{}) {
				if err != nil {
					t.Fatal(err)
				}
				if !r.Status.Open() {
					t.Errorf("request %s (%s) survived the purge", r.ID, r.Status)
				}
			}
			if err := other.CheckFence(ctx, "user_gone"); !errors.Is(err, privacy.ErrErased) {
				t.Errorf("CheckFence after the purge = %v, want ErrErased", err)
			}
			if n, err := svc.Replay(ctx); n != 0 || err != nil {
				t.Errorf("Replay after the purge = %d, %v; want nothing to do", n, err)
			}
		})
	}
}
