package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/stewardlabs/steward/sqlstore"
)

// Open a SQLite database file, create the schema, and run Migrate again to
// show it is a no-op the second time.
func Example() {
	dir, err := os.MkdirTemp("", "steward-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "steward.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if err := store.Migrate(ctx); err != nil {
			log.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM steward_schema_migrations WHERE version = 1").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("base migration recorded", n, "time")
	// Output: base migration recorded 1 time
}

func ExampleDialect_Rebind() {
	q := "SELECT value FROM steward_meta WHERE key = ? AND value <> '?'"
	fmt.Println(sqlstore.Postgres.Rebind(q))
	fmt.Println(sqlstore.SQLite.Rebind(q))
	// Output:
	// SELECT value FROM steward_meta WHERE key = $1 AND value <> '?'
	// SELECT value FROM steward_meta WHERE key = ? AND value <> '?'
}
