package riverjobs_test

import (
	"database/sql"
	"fmt"
	"slices"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/consent"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/riverjobs"
)

func Example() {
	// sql.Open connects lazily: New makes no query.
	db, _ := sql.Open("pgx", "postgres://app@db.internal/app")
	idp := steward.NewMemoryIdentity()
	svc, _ := privacy.NewService(idp)
	consents, _ := consent.NewManager(consent.NewMemoryStore(), idp)
	runner, _ := background.New(background.WithPrivacy(svc), background.WithConsent(consents))

	jobs, err := riverjobs.New(runner, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		fmt.Println(err)
		return
	}
	periodic := jobs.PeriodicJobs()
	fmt.Println(len(periodic), "periodic jobs")
	var queues []string
	for name, q := range jobs.Queues() {
		queues = append(queues, fmt.Sprintf("%s (%d workers)", name, q.MaxWorkers))
	}
	slices.Sort(queues)
	fmt.Println(queues)
	// Output:
	// 3 periodic jobs
	// [steward (10 workers)]
}
