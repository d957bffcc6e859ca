package privacycenter_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/audit"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// sqlWorld is a privacy center over sqlstore, as an application with a
// database builds it: requests, the ledger, consent, legal holds and
// the audit chain in SQLite or PostgreSQL, exports in a directory.
func sqlWorld(t *testing.T, db *sql.DB, d sqlstore.Dialect, opts ...privacycenter.Option) (*world, *sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.New(db, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, clock: &clock{}, user: "user_alice", admin: "user_admin",
		roles: map[string]rbac.Role{"user_alice": rbac.RoleUser, "user_admin": rbac.RoleAdmin}}
	mem := steward.NewMemoryIdentity(steward.WithNow(w.clock.Now))
	for _, id := range []string{w.user, w.admin} {
		mem.Put(steward.User{ID: id, FirstName: "Test", EmailAddresses: []steward.EmailAddress{{Address: id + "@example.com", Verified: true}}})
	}
	w.idp = mem
	orders := privacy.NewMemoryStore("orders")
	orders.Add(w.user, privacy.Record{Category: "orders", Data: map[string]any{"id": "ord_1", "total": 42}})
	w.log, err = audit.NewLogger(st.AuditSink(), audit.WithKey("k1", bytes.Repeat([]byte{9}, 32)), audit.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.log.Close(context.Background()) })
	blobs, err := privacy.NewDirBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.svc, err = privacy.NewService(w.idp,
		privacy.WithStores(orders, consent.NewDataStore(st.Consent())),
		privacy.WithAudit(w.log),
		privacy.WithRequestStore(st.Requests()),
		privacy.WithBlobWriter(blobs),
		privacy.WithHoldChecker(retention.Checker{Holds: st.Holds()}),
		privacy.WithAuthorizer(rbac.Default()),
		privacy.WithGracePeriod(grace),
		privacy.WithNow(w.clock.Now),
		privacy.WithResumeAfter(0),
		privacy.WithRetry(privacy.Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.svc.Close(context.Background()) })
	w.cons, err = consent.NewManager(st.Consent(), w.idp, consent.WithAudit(w.log), consent.WithFence(w.svc), consent.WithNow(w.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	w.center, err = privacycenter.New(w.svc, w.cons, append([]privacycenter.Option{
		privacycenter.WithAudit(w.log),
		privacycenter.WithAuditReader(st.AuditSink()),
		privacycenter.WithHolds(retention.AuditedHolds{Holds: st.Holds(), Audit: w.log}),
		privacycenter.WithNow(w.clock.Now),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// TestSQLStores runs the self-service and admin pages over both SQL
// dialects: what the memory stores show, the database's stores show.
func TestSQLStores(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		w, _ := sqlWorld(t, db, d, privacycenter.WithPageSize(2))
		bg := context.Background()

		// Self-service: what we hold, a queued export downloaded, consent,
		// an erasure cancelled within the grace period.
		w.run([]step{
			{name: "overview", method: "GET", path: "/privacy/", user: "user", status: 200, has: []string{"<td>orders</td><td>orders</td><td class=\"num\">1</td>"}},
			{name: "start an export", method: "POST", path: "/privacy/export", user: "user", form: form(), status: 303, locates: "/privacy/export?done=export-started"},
			{name: "save consent", method: "POST", path: "/privacy/consent", user: "user", form: form("marketing", "on"), status: 303, locates: "/privacy/consent?done=consent-saved"},
			{name: "consent shows it", method: "GET", path: "/privacy/consent", user: "user", status: 200, has: []string{`name="marketing" checked`}},
		})
		var exportID string
		waitFor(t, "the export", func() bool {
			for r, err := range w.svc.Requests(bg, privacy.RequestFilter{UserID: w.user, Kind: privacy.KindExport, Statuses: []privacy.Status{privacy.StatusCompleted}}) {
				if err != nil {
					t.Fatal(err)
				}
				exportID = r.ID
			}
			return exportID != ""
		})
		rec := w.call("GET", "/privacy/export/download?requestId="+exportID, w.user, nil)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "ord_1") {
			t.Errorf("download: %d\n%s", rec.Code, excerpt(rec.Body.String()))
		}
		w.run([]step{
			{name: "delete", method: "POST", path: "/privacy/delete", user: "user", form: form("confirm", "yes"), status: 303, locates: "/privacy/delete?done=deletion-planned"},
			{name: "countdown", method: "GET", path: "/privacy/delete", user: "user", status: 200, has: []string{"Cancel the deletion"}},
		})
		erasure := w.openErasure(w.user)
		w.run([]step{
			{name: "requests", method: "GET", path: "/privacy/requests", user: "user", status: 200, has: []string{"Account deletion"}},
			{name: "cancel", method: "POST", path: "/privacy/delete/cancel", user: "user", form: form("requestId", erasure.ID), status: 303, locates: "/privacy/delete?done=deletion-cancel"},
		})

		// Admin: three erasures received 40, 20 and 5 days ago.
		var ids []string
		for i, days := range []int{40, 20, 5} {
			id, err := w.svc.QueueErasure(bg, "user_q"+string(rune('a'+i)), privacy.ReceivedAt(w.clock.Now().Add(-time.Duration(days)*24*time.Hour)), privacy.SkipGracePeriod())
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rec = w.call("GET", "/privacy/admin", w.admin, nil)
		next := strings.ReplaceAll(linkBefore(rec.Body.String(), `" rel="next"`), "&amp;", "&")
		w.run([]step{
			{name: "first page", method: "GET", path: "/privacy/admin", user: "admin", status: 200,
				has: []string{ids[0], ids[1], `rel="next"`, "days overdue", "hmac-sha256:k1:"}, hasNot: []string{ids[2]}},
			{name: "second page", method: "GET", path: next, user: "admin", status: 200, has: []string{ids[2]}, hasNot: []string{ids[0], ids[1]}},
			{name: "overdue", method: "GET", path: "/privacy/admin?overdue=1", user: "admin", status: 200, has: []string{ids[0]}, hasNot: []string{ids[1], ids[2]}},
			{name: "exports", method: "GET", path: "/privacy/admin?kind=export&status=all", user: "admin", status: 200, has: []string{exportID}, hasNot: []string{ids[0]}},
			{name: "a user", method: "GET", path: "/privacy/admin", user: "user", status: 403},
			{name: "request", method: "GET", path: "/privacy/admin/requests/" + ids[0], user: "admin", status: 200, has: []string{"Timeline", "Audit events of this request"}},
			{name: "extend", method: "POST", path: "/privacy/admin/requests/" + ids[0] + "/extend", user: "admin", form: form("reason", "complex"), status: 303, locates: "/privacy/admin/requests/" + ids[0] + "?done=extended"},
			{name: "no longer overdue", method: "GET", path: "/privacy/admin?overdue=1", user: "admin", status: 200, hasNot: []string{ids[0]}},
			{name: "hold", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/hold", user: "admin", form: form("reason", "litigation"), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=held"},
			{name: "held shows", method: "GET", path: "/privacy/admin/requests/" + ids[1], user: "admin", status: 200, has: []string{"Release the hold", "litigation"}},
			{name: "release", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/release", user: "admin", form: form(), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=released"},
			{name: "resume", method: "POST", path: "/privacy/admin/requests/" + ids[1] + "/resume", user: "admin", form: form(), status: 303, locates: "/privacy/admin/requests/" + ids[1] + "?done=resumed"},
			{name: "cancel", method: "POST", path: "/privacy/admin/requests/" + ids[2] + "/cancel", user: "admin", form: form("reason", "duplicate"), status: 303, locates: "/privacy/admin/requests/" + ids[2] + "?done=cancelled"},
			{name: "lookup", method: "GET", path: "/privacy/admin/lookup?userId={user}", user: "admin", status: 200, has: []string{"<code>" + w.user + "</code>", "<td>export</td>"}},
			{name: "audit chain", method: "GET", path: "/privacy/admin/audit", user: "admin", status: 200, has: []string{"intact"}},
		})
		if r, err := w.svc.Request(bg, ids[0]); err != nil || r.ExtendedAt.IsZero() {
			t.Errorf("extended request: %+v, %v", r, err)
		}
		rec = w.call("GET", "/privacy/admin/requests.csv?status=all", w.admin, nil)
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil || rec.Code != 200 || len(rows) != 1+5 || strings.Contains(rec.Body.String(), "user_") {
			t.Errorf("CSV: %d, %v, rows %v: want a header and 5 requests, no user IDs", rec.Code, err, rows)
		}
	})
}
