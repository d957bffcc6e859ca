package sqldata_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqldialect/sqlite"
	"github.com/stewardlabs/steward/sqlstore"
)

// Declare an application's tables and get export and erasure for them:
// profiles are deleted, invoices are kept for the books with the
// customer replaced by a keyed pseudonym.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqldata")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlstore.OpenSQLite(filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE profiles (user_id TEXT PRIMARY KEY, name TEXT, email TEXT)`,
		`CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, amount_cents INTEGER)`,
		`INSERT INTO profiles VALUES ('user_123', 'Ada', 'ada@example.com'), ('user_456', 'Grace', 'grace@example.com')`,
		`INSERT INTO invoices VALUES (1, 'user_123', 4200), (2, 'user_456', 1000), (3, 'user_123', 990)`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			log.Fatal(err)
		}
	}

	key := []byte("pseudonym key, kept out of the database")
	pseudonym := func(userID string) (any, error) {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(userID))
		return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:12], nil
	}
	store, err := sqldata.New(ctx, db, sqlstore.SQLite, []sqldata.Table{
		{Name: "profiles", UserColumn: "user_id", Category: "profile",
			Columns: []sqldata.Column{{Name: "name"}, {Name: "email"}}},
		{Name: "invoices", UserColumn: "customer",
			Columns:   []sqldata.Column{{Name: "id"}, {Name: "amount_cents", As: "amountCents"}},
			Anonymise: []sqldata.Set{sqldata.Derived("customer", pseudonym)}},
	})
	if err != nil {
		log.Fatal(err)
	}

	for rec, err := range store.Export(ctx, "user_123") {
		if err != nil {
			log.Fatal(err)
		}
		line, _ := json.Marshal(rec)
		fmt.Println(string(line))
	}
	erased, err := store.Erase(ctx, "user_123")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("erased:", erased.Count)

	rows, err := db.QueryContext(ctx, `SELECT id, customer FROM invoices ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var customer string
		if err := rows.Scan(&id, &customer); err != nil {
			log.Fatal(err)
		}
		fmt.Println("invoice", id, customer)
	}
	// Output:
	// {"category":"profile","data":{"email":"ada@example.com","name":"Ada"}}
	// {"category":"invoices","data":{"amountCents":4200,"id":1}}
	// {"category":"invoices","data":{"amountCents":990,"id":3}}
	// erased: 3
	// invoice 1 hmac-sha256:02bc68bead26
	// invoice 2 user_456
	// invoice 3 hmac-sha256:02bc68bead26
}

// The example shop schema: create it, seed a user, export and erase.
func Example_exampleSchema() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqldata")
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
	seeded, err := exampleschema.Seed(ctx, db, sqlstore.SQLite, "user_123", 41, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("seeded: %+v\n", seeded)

	store, err := sqldata.New(ctx, db, sqlstore.SQLite, exampleschema.Tables())
	if err != nil {
		log.Fatal(err)
	}
	perCategory := map[string]int{}
	for rec, err := range store.Export(ctx, "user_123") {
		if err != nil {
			log.Fatal(err)
		}
		perCategory[rec.Category]++
	}
	fmt.Println("exported:", perCategory)

	erased, err := store.Erase(ctx, "user_123")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Name(), "erased:", erased.Count)
	// Output:
	// seeded: {Profiles:1 Orders:8 OrderItems:8 Preferences:4 Activity:20}
	// exported: map[activityLog:20 orderItems:8 orders:8 preferences:4 profile:1]
	// application_database erased: 41
}

// A note its author shared with another user belongs to both: declare
// the table once per user column, each with a Role. Each export leaves
// the other user's ID out; erasing the recipient only unlinks them, and
// the author's view stays as it was.
func ExampleNew_sharedRows() {
	ctx := context.Background()
	db, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, author_id TEXT, recipient_id TEXT, body TEXT)`,
		`INSERT INTO notes VALUES (1, 'user_ada', 'user_bob', 'Lunch on Friday?'), (2, 'user_ada', NULL, 'Groceries')`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			log.Fatal(err)
		}
	}
	store, err := sqldata.New(ctx, db, sqlite.Dialect, []sqldata.Table{
		{Name: "notes", Role: "author", UserColumn: "author_id", Category: "notes"},
		{Name: "notes", Role: "recipient", UserColumn: "recipient_id", Category: "sharedWithMe",
			Columns:   []sqldata.Column{{Name: "id"}, {Name: "body"}},
			Anonymise: []sqldata.Set{sqldata.Null("recipient_id")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	show := func(userID string) {
		for rec, err := range store.Export(ctx, userID) {
			if err != nil {
				log.Fatal(err)
			}
			line, _ := json.Marshal(rec)
			fmt.Println(userID, string(line))
		}
	}
	show("user_ada")
	show("user_bob")
	erased, err := store.Erase(ctx, "user_bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("erased user_bob:", erased.Count)
	show("user_ada")
	show("user_bob")
	// Output:
	// user_ada {"category":"notes","data":{"author_id":"user_ada","body":"Lunch on Friday?","id":1}}
	// user_ada {"category":"notes","data":{"author_id":"user_ada","body":"Groceries","id":2}}
	// user_bob {"category":"sharedWithMe","data":{"body":"Lunch on Friday?","id":1}}
	// erased user_bob: 1
	// user_ada {"category":"notes","data":{"author_id":"user_ada","body":"Lunch on Friday?","id":1}}
	// user_ada {"category":"notes","data":{"author_id":"user_ada","body":"Groceries","id":2}}
}
