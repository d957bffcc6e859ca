package benchmarks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacycenter"
	"github.com/stewardlabs/steward/rbac"
	"github.com/stewardlabs/steward/sqlstore"
)

// BenchmarkPrivacyCenterQueue renders the admin queue of the privacy
// center (GET /privacy/admin?status=all, every request, 50 a page) over
// STEWARD_BENCH_REQUESTS requests (default 100,000) in PostgreSQL, and in
// the same run the same queue unpaginated (one page as large as the
// table), the render an adopter hand-writes from an iterator. It reports
// the first page's server time (the median of 21 renders), the
// unpaginated render's, and their ratio.
func BenchmarkPrivacyCenterQueue(b *testing.B) {
	n := 100_000
	if v := os.Getenv("STEWARD_BENCH_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("STEWARD_BENCH_REQUESTS=%q: want a positive count", v)
		}
	}
	_, db, _ := benchSchema(b)
	ctx := context.Background()
	store, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		b.Fatal(err)
	}
	// n requests received a minute apart over the last n minutes: one in
	// ten open (each user has at most one open erasure), the others
	// completed and pseudonymous, as a queue in production holds.
	steps := `[{"name":"fence","kind":"fence","status":"done","attempts":1,"erased":1},` +
		`{"name":"app","kind":"store","status":"done","attempts":1,"erased":12},` +
		`{"name":"identity","kind":"identity","status":"done","attempts":1,"erased":1},` +
		`{"name":"final_pass","kind":"final_pass","status":"done","attempts":1},` +
		`{"name":"ledger","kind":"ledger","status":"done","attempts":1},` +
		`{"name":"audit","kind":"audit","status":"done","attempts":1}]`
	if _, err := db.ExecContext(ctx, `INSERT INTO steward_privacy_requests
		(id, kind, user_id, actor, regime, status, received_at, due_at, updated_at, completed_at, steps, version)
		SELECT 'req_' || lpad(g::text, 32, '0'),
		       CASE WHEN g % 3 = 0 THEN 'export' ELSE 'erasure' END,
		       CASE WHEN g % 10 = 0 THEN 'user_' || g ELSE 'hmac-sha256:k1:' || md5(g::text) || md5(g::text) END,
		       'system:bench', 'gdpr',
		       CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'completed' END,
		       now() - (($1 - g) * interval '1 minute'),
		       now() - (($1 - g) * interval '1 minute') + interval '1 month',
		       now(),
		       CASE WHEN g % 10 = 0 THEN NULL ELSE now() END,
		       $2, 1
		FROM generate_series(1, $1) AS g`, n, steps); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE steward_privacy_requests`); err != nil {
		b.Fatal(err)
	}
	idp := steward.NewMemoryIdentity()
	svc, err := privacy.NewService(idp, privacy.WithRequestStore(store.Requests()))
	if err != nil {
		b.Fatal(err)
	}
	cons, err := consent.NewManager(consent.NewMemoryStore(), idp)
	if err != nil {
		b.Fatal(err)
	}
	paged, err := privacycenter.New(svc, cons)
	if err != nil {
		b.Fatal(err)
	}
	whole, err := privacycenter.New(svc, cons, privacycenter.WithPageSize(n+1))
	if err != nil {
		b.Fatal(err)
	}
	admin := rbac.Principal{UserID: "user_admin", Role: rbac.RoleAdmin, EmailVerified: true}
	render := func(c *privacycenter.Center) (time.Duration, int) {
		r := httptest.NewRequest(http.MethodGet, "/privacy/admin?status=all", nil)
		r = r.WithContext(rbac.WithPrincipal(r.Context(), admin))
		rec := httptest.NewRecorder()
		start := time.Now()
		c.Handler().ServeHTTP(rec, r)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			b.Fatalf("the queue answered %d", rec.Code)
		}
		return d, strings.Count(rec.Body.String(), `<td><a href="/privacy/admin/requests/`)
	}
	render(paged) // warm the connection pool and the caches
	b.ResetTimer()
	var first, all []time.Duration
	for range b.N {
		var ds []time.Duration
		for range 21 {
			d, rows := render(paged)
			if rows != privacycenter.DefaultPageSize {
				b.Fatalf("the first page shows %d requests, want %d", rows, privacycenter.DefaultPageSize)
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		first = append(first, ds[len(ds)/2])
		d, rows := render(whole)
		if rows != n {
			b.Fatalf("the unpaginated queue shows %d requests, want %d", rows, n)
		}
		all = append(all, d)
	}
	b.StopTimer()
	slices.Sort(first)
	slices.Sort(all)
	f, a := first[len(first)/2], all[len(all)/2]
	b.ReportMetric(float64(f.Microseconds())/1000, "first-page-ms")
	b.ReportMetric(float64(a.Microseconds())/1000, "unpaginated-ms")
	b.ReportMetric(float64(a)/float64(f), "unpaginated/first-page")
	b.Logf("%d requests: first page %v, unpaginated %v (%.0f×)", n, f, a, float64(a)/float64(f))
}
