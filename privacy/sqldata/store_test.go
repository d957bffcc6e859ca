package sqldata_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/privacy/sqldata/exampleschema"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

var seedTime = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)

// shop creates the example schema in db and returns a store over it.
func shop(t *testing.T, db *sql.DB, d sqlstore.Dialect, opts ...sqldata.Option) *sqldata.Store {
	t.Helper()
	ctx := context.Background()
	if err := exampleschema.Create(ctx, db, d); err != nil {
		t.Fatal(err)
	}
	s, err := sqldata.New(ctx, db, d, exampleschema.Tables(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seed(t *testing.T, db *sql.DB, d sqlstore.Dialect, userID string, rows int) exampleschema.Counts {
	t.Helper()
	c, err := exampleschema.Seed(context.Background(), db, d, userID, rows, seedTime)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// categories counts a user's exported records by category.
func categories(t *testing.T, s privacy.DataStore, userID string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for rec, err := range s.Export(context.Background(), userID) {
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		got[rec.Category]++
	}
	return got
}

func wantCategories(c exampleschema.Counts) map[string]int {
	m := map[string]int{}
	add := func(k string, n int) {
		if n > 0 {
			m[k] += n
		}
	}
	add("profile", c.Profiles)
	add("orders", c.Orders)
	add("orderItems", c.OrderItems)
	add("preferences", c.Preferences)
	add("activityLog", c.Activity)
	return m
}

// rowCount counts all rows of a table, whoever they belong to.
func rowCount(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExportThenErase(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s := shop(t, db, d)
		alice := seed(t, db, d, "user_alice", 41)
		bob := seed(t, db, d, "user_bob", 23)

		if diff := cmp.Diff(wantCategories(alice), categories(t, s, "user_alice")); diff != "" {
			t.Errorf("export of user_alice by category (-want +got):\n%s", diff)
		}
		if got := s.Name(); got != sqldata.DefaultName {
			t.Errorf("Name() = %q, want %q", got, sqldata.DefaultName)
		}

		er, err := s.Erase(ctx, "user_alice")
		if err != nil {
			t.Fatalf("Erase: %v", err)
		}
		if diff := cmp.Diff(privacy.Erased{Count: alice.Total()}, er); diff != "" {
			t.Errorf("Erase counts every seeded row (-want +got):\n%s", diff)
		}
		if got := categories(t, s, "user_alice"); len(got) != 0 {
			t.Errorf("after Erase, export of user_alice = %v, want nothing", got)
		}
		if diff := cmp.Diff(wantCategories(bob), categories(t, s, "user_bob")); diff != "" {
			t.Errorf("erasing user_alice must leave user_bob alone (-want +got):\n%s", diff)
		}
		// Orders and their items stay for bookkeeping, anonymised.
		if got, want := rowCount(t, db, "orders"), alice.Orders+bob.Orders; got != want {
			t.Errorf("orders rows = %d, want %d (orders are kept)", got, want)
		}
		if got, want := rowCount(t, db, "order_items"), alice.OrderItems+bob.OrderItems; got != want {
			t.Errorf("order_items rows = %d, want %d (items are kept)", got, want)
		}
		var left int
		if err := db.QueryRow(`SELECT count(*) FROM orders WHERE user_id IS NULL AND email IS NULL AND shipping_address IS NULL AND total_cents > 0`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != alice.Orders {
			t.Errorf("anonymised orders with totals kept = %d, want %d", left, alice.Orders)
		}
		if err := db.QueryRow(`SELECT count(*) FROM order_items WHERE gift_message IS NULL`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != alice.OrderItems {
			t.Errorf("order_items with gift message cleared = %d, want %d", left, alice.OrderItems)
		}

		again, err := s.Erase(ctx, "user_alice")
		if err != nil {
			t.Fatalf("second Erase: %v", err)
		}
		if again != (privacy.Erased{}) {
			t.Errorf("second Erase = %+v, want zero: erasing is idempotent", again)
		}
	})
}

func TestExportRecord(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := shop(t, db, d)
		seed(t, db, d, "user_alice", 1)
		var got []privacy.Record
		for rec, err := range s.Export(context.Background(), "user_alice") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec)
		}
		if len(got) != 1 {
			t.Fatalf("got %d records, want the profile only: %v", len(got), got)
		}
		created, ok := got[0].Data["createdAt"].(time.Time)
		if !ok || !created.Equal(seedTime.AddDate(-1, 0, 0)) {
			t.Errorf("createdAt = %#v, want %v as time.Time", got[0].Data["createdAt"], seedTime.AddDate(-1, 0, 0))
		}
		delete(got[0].Data, "createdAt")
		want := privacy.Record{Category: "profile", Data: map[string]any{
			"clerkId": "user_alice", "displayName": "Example User", "bio": "Likes tea and long walks.",
		}}
		if diff := cmp.Diff(want, got[0]); diff != "" {
			t.Errorf("profile record (-want +got):\n%s", diff)
		}
	})
}

func TestExportStopsEarly(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := shop(t, db, d)
		seed(t, db, d, "user_alice", 50)
		n := 0
		for _, err := range s.Export(context.Background(), "user_alice") {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
		// The connection the broken-off query held is back in the pool.
		if got := db.Stats().InUse; got != 0 {
			t.Errorf("connections in use after breaking off an export = %d, want 0", got)
		}
	})
}

func TestInvalidUserIDs(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		s := shop(t, db, d)
		c := seed(t, db, d, "user_alice", 30)
		for _, id := range []string{
			"",
			"x' OR '1'='1",
			"user_alice' OR '1'='1",
			"'; DROP TABLE orders; --",
			"user_alice; DROP TABLE activity_log",
			`user_alice" OR 1=1 --`,
			"user_alice\x00",
		} {
			t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
				er, err := s.Erase(ctx, id)
				if !errors.Is(err, steward.ErrInvalidUserID) {
					t.Errorf("Erase(%q) error = %v, want steward.ErrInvalidUserID", id, err)
				}
				if er != (privacy.Erased{}) {
					t.Errorf("Erase(%q) = %+v, want zero", id, er)
				}
				if id != "" && err != nil && strings.Contains(err.Error(), id) {
					t.Errorf("error %q repeats the user ID", err)
				}
				for _, err := range s.Export(ctx, id) {
					if !errors.Is(err, steward.ErrInvalidUserID) {
						t.Errorf("Export(%q) yielded %v, want steward.ErrInvalidUserID", id, err)
					}
				}
			})
		}
		if diff := cmp.Diff(wantCategories(c), categories(t, s, "user_alice")); diff != "" {
			t.Errorf("user_alice's data after the attempts (-want +got):\n%s", diff)
		}
	})
}

// TestResumeAfterCrash stops Erase between batches, as a crash would, and
// checks that erasing again does the rest and nothing is counted twice.
func TestResumeAfterCrash(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		if err := exampleschema.Create(context.Background(), db, d); err != nil {
			t.Fatal(err)
		}
		other := seed(t, db, d, "user_bob", 20)
		for _, stopAfter := range []int{1, 7, 20} {
			t.Run(fmt.Sprintf("stop after batch %d", stopAfter), func(t *testing.T) {
				user := fmt.Sprintf("user_%d", stopAfter)
				c := seed(t, db, d, user, 200)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				batches := 0
				var sizes []int
				s, err := sqldata.New(ctx, db, d, exampleschema.Tables(),
					sqldata.WithBatchSize(7),
					sqldata.WithBatchObserver(func(b sqldata.Batch) {
						sizes = append(sizes, b.Rows)
						if batches++; batches == stopAfter {
							cancel()
						}
					}))
				if err != nil {
					t.Fatal(err)
				}
				first, err := s.Erase(ctx, user)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Erase with ctx cancelled after batch %d: err = %v, want context.Canceled", stopAfter, err)
				}
				sum := 0
				for _, n := range sizes {
					if n > 7 {
						t.Errorf("a batch changed %d rows, more than the batch size 7", n)
					}
					sum += n
				}
				if first.Count != sum {
					t.Errorf("interrupted Erase counted %d, batches changed %d", first.Count, sum)
				}
				rest, err := s.Erase(context.Background(), user)
				if err != nil {
					t.Fatalf("resumed Erase: %v", err)
				}
				if got, want := first.Count+rest.Count, c.Total(); got != want {
					t.Errorf("interrupted + resumed Erase counted %d, want %d (every row once)", got, want)
				}
				if got := categories(t, s, user); len(got) != 0 {
					t.Errorf("after resuming, export = %v, want nothing", got)
				}
				if diff := cmp.Diff(wantCategories(other), categories(t, s, "user_bob")); diff != "" {
					t.Errorf("user_bob's data (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestWithName(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		s := shop(t, db, d, sqldata.WithName("shop"))
		if got := s.Name(); got != "shop" {
			t.Errorf("Name() = %q, want %q", got, "shop")
		}
	})
}

func cmpDiff(want, got any) string { return cmp.Diff(want, got) }
