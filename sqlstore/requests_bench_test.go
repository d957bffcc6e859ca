package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// unclaimed hides the RequestClaimer of a RequestStore: the Service then
// runs requests without claims in the database (the path before claims).
type unclaimed struct{ privacy.RequestStore }

// BenchmarkEraseClaimOverhead erases users through a Service on the SQL
// request store, alternating in one loop between the claimed path (claim,
// fenced checkpoints, release) and the same store with its claims hidden,
// and reports the extra time claims cost per erasure step. Run with
// STEWARD_TEST_POSTGRES_DSN set for PostgreSQL.
func BenchmarkEraseClaimOverhead(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.SQLite} {
		b.Run(string(d), func(b *testing.B) {
			if d == sqlstore.Postgres && os.Getenv(sqltest.PostgresDSNEnv) == "" {
				b.Skipf("set %s", sqltest.PostgresDSNEnv)
			}
			ctx := context.Background()
			s, err := sqlstore.New(sqltest.Open(b, d), d)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			idp := steward.NewMemoryIdentity()
			var stores []privacy.DataStore
			for i := range 4 {
				stores = append(stores, privacy.NewMemoryStore(fmt.Sprintf("store%d", i)))
			}
			const steps = 4 + 1 // the stores and the identity
			mk := func(rs privacy.RequestStore) *privacy.Service {
				svc, err := privacy.NewService(idp, privacy.WithStores(stores...), privacy.WithRequestStore(rs))
				if err != nil {
					b.Fatal(err)
				}
				return svc
			}
			claimed, plain := mk(s.Requests()), mk(unclaimed{s.Requests()})
			var tClaimed, tPlain time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j, svc := range []*privacy.Service{claimed, plain} {
					id := fmt.Sprintf("user_%d_%d", i, j)
					idp.Put(steward.User{ID: id})
					start := time.Now()
					if res, err := svc.Erase(ctx, id); err != nil || !res.Success {
						b.Fatalf("Erase: %+v, %v", res, err)
					}
					if j == 0 {
						tClaimed += time.Since(start)
					} else {
						tPlain += time.Since(start)
					}
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(tClaimed.Microseconds())/n/1000, "ms/erasure-claimed")
			b.ReportMetric(float64(tPlain.Microseconds())/n/1000, "ms/erasure-unclaimed")
			b.ReportMetric(float64((tClaimed-tPlain).Microseconds())/n/1000/steps, "ms-overhead/step")
		})
	}
}
