// Package exampleschema is a small shop's tables, declared for
// sqldata: a user's profile (keyed by the identity provider's user ID),
// orders that are kept for bookkeeping but anonymised on erasure, their
// line items (reached through orders), preferences and an activity log
// with timestamps. Tests, benchmarks and the examples build on it.
//
//	exampleschema.Create(ctx, db, sqldialect.SQLite)
//	exampleschema.Seed(ctx, db, sqldialect.SQLite, "user_123", 20, time.Now())
//	store, err := sqldata.New(ctx, db, sqldialect.SQLite, exampleschema.Tables())
//
// Erasing a user deletes their profile, preferences and activity, sets
// the user ID, e-mail and shipping address of their orders to NULL
// (totals stay), and clears the gift messages of the orders' items.
//
// # Errors
//
// Create and Seed return an error wrapping sqldialect.ErrUnknownDialect for
// a dialect other than sqldialect.Postgres and sqldialect.SQLite, Seed fails
// for fewer than one row, and otherwise the database's error comes back
// prefixed with "exampleschema: create" or "exampleschema: seed". A failed
// call leaves nothing behind: each runs in one transaction.
package exampleschema
