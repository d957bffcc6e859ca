package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/privacytest"
	"github.com/stewardlabs/steward/sqlstore"
)

// TestRequestsOnCreate: the hook writes in the transaction that creates
// the request, so its row and the request are committed together or not
// at all, and a request refused by a constraint never reaches the hook.
func TestRequestsOnCreate(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := t.Context()
			s := requestsStore(t, d)
			if _, err := s.DB().ExecContext(ctx, `CREATE TABLE outbox (request_id TEXT PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			var fail error
			var seen []int64
			reqs := s.Requests().OnCreate(func(ctx context.Context, tx *sql.Tx, r privacy.Request) error {
				seen = append(seen, r.Version)
				if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO outbox (request_id) VALUES (?)`), r.ID); err != nil {
					return err
				}
				return fail
			})
			newReq := func(id, user string) privacy.Request {
				now := time.Now().UTC().Truncate(time.Microsecond)
				return privacy.Request{ID: id, Kind: privacy.KindErasure, UserID: user, Regime: privacy.GDPR,
					Status: privacy.StatusPending, ReceivedAt: now, DueAt: now.AddDate(0, 1, 0), UpdatedAt: now}
			}
			if err := reqs.Create(ctx, newReq("req_ok", "user_a")); err != nil {
				t.Fatal(err)
			}
			fail = errors.New("queue refused the job")
			if err := reqs.Create(ctx, newReq("req_rolled_back", "user_b")); !errors.Is(err, fail) {
				t.Errorf("Create with a failing hook = %v, want its error", err)
			}
			fail = nil
			if err := reqs.Create(ctx, newReq("req_second_open", "user_a")); !errors.Is(err, privacy.ErrActiveRequest) {
				t.Errorf("Create of a second open erasure = %v, want ErrActiveRequest", err)
			}
			if err := reqs.Create(ctx, newReq("req_ok", "user_c")); !errors.Is(err, privacy.ErrDuplicateRequest) {
				t.Errorf("Create of a taken ID = %v, want ErrDuplicateRequest", err)
			}
			if _, err := s.Requests().Get(ctx, "req_rolled_back"); !errors.Is(err, privacy.ErrRequestNotFound) {
				t.Errorf("the request whose hook failed: Get = %v, want ErrRequestNotFound", err)
			}
			var outbox []string
			rows, err := s.DB().QueryContext(ctx, `SELECT request_id FROM outbox ORDER BY request_id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				outbox = append(outbox, id)
			}
			if diff := cmp.Diff([]string{"req_ok"}, outbox); diff != "" {
				t.Errorf("rows the hook committed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{1, 1}, seen); diff != "" {
				t.Errorf("versions the hook saw (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestsOnCreateConformance: Requests with a hook are still a
// RequestStore.
func TestRequestsOnCreateConformance(t *testing.T) {
	s := requestsStore(t, sqlstore.SQLite)
	privacytest.RunRequestStoreConformance(t, func(ctx context.Context, t *testing.T) (privacy.RequestStore, error) {
		if _, err := s.DB().ExecContext(ctx, "DELETE FROM steward_privacy_requests"); err != nil {
			return nil, err
		}
		return s.Requests().OnCreate(func(context.Context, *sql.Tx, privacy.Request) error { return nil }), nil
	})
}
