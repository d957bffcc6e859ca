package riverjobs

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardlabs/steward/background"
	"github.com/stewardlabs/steward/privacy"
)

func TestNewValidates(t *testing.T) {
	svc, err := privacy.NewService(users())
	if err != nil {
		t.Fatal(err)
	}
	runner, err := background.New(background.WithPrivacy(svc))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := background.New(background.WithPrivacy(svc), background.WithInterval(background.Requests, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	db := &sql.DB{}
	for _, c := range []struct {
		name   string
		runner *background.Runner
		db     *sql.DB
		opts   []Option
	}{
		{"a nil runner", nil, db, nil},
		{"a nil database", runner, nil, nil},
		{"an interval under a second", fast, db, nil},
		{"an erasure timeout under a second", runner, db, []Option{WithErasureTimeout(time.Millisecond)}},
		{"an export timeout under a second", runner, db, []Option{WithExportTimeout(0)}},
		{"no workers", runner, db, []Option{WithMaxWorkers(0)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.runner, c.db, c.opts...); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	jobs, err := New(runner, db, WithMaxWorkers(3), WithErasureTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if q := jobs.Queues()[Queue]; q.MaxWorkers != 3 {
		t.Errorf("queue config %+v, want 3 workers", q)
	}
	if w := (&requestWorker[ErasureArgs]{timeout: jobs.erasureTimeout}); w.Timeout(nil) != time.Minute {
		t.Errorf("erasure timeout %v, want 1m", w.Timeout(nil))
	}
	workers := river.NewWorkers()
	if err := jobs.AddWorkers(workers); err != nil {
		t.Fatal(err)
	}
	if err := jobs.AddWorkers(workers); err == nil {
		t.Error("registering the workers twice succeeded")
	}
	if err := jobs.AddWorkers(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("AddWorkers(nil) = %v, want ErrInvalidConfig", err)
	}
}
