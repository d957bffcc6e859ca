package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/retentiontest"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

func TestHoldsConformance(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, _ *sql.DB, d sqlstore.Dialect) {
		retentiontest.RunHoldStoreConformance(t, func(t *testing.T) retention.HoldStore {
			s, err := sqlstore.New(sqltest.Open(t, d), d)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s.Holds()
		})
	})
}
