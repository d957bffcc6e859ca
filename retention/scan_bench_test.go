package retention_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/clerkadapter"
	"github.com/stewardlabs/steward/clerkadapter/clerktest"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/retention"
)

type noEraser struct{}

func (noEraser) Erase(context.Context, string, ...privacy.EraseOption) (privacy.DeletionResult, error) {
	return privacy.DeletionResult{}, fmt.Errorf("no erasure expected")
}

// BenchmarkInactiveScanRateLimited scans 100,000 users on clerktest, whose
// rate limit answers 429 past 25 requests a second, through the Clerk
// adapter limited to 95% of that, notifying the 100 inactive ones. It
// reports the request rate achieved as a share of the server's limit and
// the number of 429 answers, which must be zero.
//
//	go test -run '^$' -bench InactiveScan -benchtime 1x ./retention/
func BenchmarkInactiveScanRateLimited(b *testing.B) {
	const (
		users    = 100_000
		inactive = 100
		limit    = 25
	)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		b.StopTimer()
		srv := clerktest.NewServer(clerktest.WithRateLimit(limit, time.Second))
		created := now.Add(-800 * 24 * time.Hour)
		for i := 0; i < users; i++ {
			last := now.Add(-time.Hour)
			if i%(users/inactive) == 0 {
				last = now.Add(-400 * 24 * time.Hour)
			}
			srv.AddUser(steward.User{CreatedAt: created.Add(time.Duration(i) * time.Millisecond), LastActiveAt: last})
		}
		prov := clerkadapter.New(srv.ClientConfig(), clerkadapter.WithRateLimit(limit*95/100, time.Second), clerkadapter.WithPageSize(500))
		notes := &notifier{}
		engine, err := retention.NewEngine([]retention.Policy{{Name: "inactive_users", MaxAge: retention.InactiveUserAge,
			Action: retention.NotifyThenErase, GracePeriod: retention.InactiveGracePeriod, BatchSize: 500}},
			retention.WithIdentity(prov), retention.WithNotifier(notes), retention.WithEraser(noEraser{}),
			retention.WithNow(func() time.Time { return now }))
		if err != nil {
			b.Fatal(err)
		}
		srv.ResetRequests()
		b.StartTimer()
		start := time.Now()
		rep, err := engine.Run(context.Background(), retention.RunOptions{})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got := rep.Policies[0].Notified; got != inactive {
			b.Fatalf("notified %d users, want %d", got, inactive)
		}
		reqs := srv.Requests()
		tooMany := 0
		for _, r := range reqs {
			if r.Status == http.StatusTooManyRequests {
				tooMany++
			}
		}
		rate := float64(len(reqs)) / elapsed.Seconds()
		b.ReportMetric(float64(len(reqs)), "requests")
		b.ReportMetric(rate, "requests/s")
		b.ReportMetric(rate/limit, "share-of-limit")
		b.ReportMetric(float64(tooMany), "429s")
		if tooMany > 0 {
			b.Errorf("%d requests were answered 429", tooMany)
		}
		srv.Close()
		b.StartTimer()
	}
}
