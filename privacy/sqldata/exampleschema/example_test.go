package exampleschema_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
)

// Create the shop's tables in a SQLite file and give a user a hundred
// rows across them.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "exampleschema")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "shop.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := exampleschema.Create(ctx, db, sqlstore.SQLite); err != nil {
		log.Fatal(err)
	}
	c, err := exampleschema.Seed(ctx, db, sqlstore.SQLite, "user_123", 100, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v, %d rows\n", c, c.Total())
	for _, t := range exampleschema.Tables() {
		fmt.Println(t.Name, "→", t.Category)
	}
	// Output:
	// {Profiles:1 Orders:19 OrderItems:19 Preferences:9 Activity:52}, 100 rows
	// user_profiles → profile
	// orders → orders
	// order_items → orderItems
	// user_preferences → preferences
	// activity_log → activityLog
}
