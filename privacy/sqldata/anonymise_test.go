package sqldata_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/sqlstore"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// forum is a schema with a two-level join path, a derived pseudonym and
// a table whose declared key is shared between users.
var forum = []string{
	`CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, nickname TEXT, status TEXT NOT NULL)`,
	`CREATE TABLE posts (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id), body TEXT)`,
	`CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES posts (id), body TEXT)`,
	`CREATE TABLE events (seq INTEGER NOT NULL, owner TEXT NOT NULL, kind TEXT NOT NULL)`,
	`INSERT INTO accounts VALUES (1, 'user_a', 'ada', 'active'), (2, 'user_b', 'bob', 'active')`,
	`INSERT INTO posts VALUES (10, 1, 'a1'), (11, 1, 'a2'), (12, 2, 'b1')`,
	`INSERT INTO comments VALUES (100, 10, 'on a1'), (101, 11, 'on a2'), (102, 12, 'on b1'), (103, 10, 'again on a1')`,
	`INSERT INTO events VALUES (1, 'user_a', 'x'), (1, 'user_b', 'x'), (2, 'user_a', 'y'), (2, 'user_b', 'y'), (3, 'user_a', 'z')`,
}

func pseudonym(userID string) (any, error) {
	m := hmac.New(sha256.New, []byte("test key"))
	m.Write([]byte(userID))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:16], nil
}

func forumTables() []sqldata.Table {
	return []sqldata.Table{
		{Name: "accounts", UserColumn: "owner", Columns: []sqldata.Column{{Name: "nickname"}, {Name: "status"}},
			Anonymise: []sqldata.Set{sqldata.Derived("owner", pseudonym), sqldata.Null("nickname"), sqldata.Fixed("status", "erased")}},
		{Name: "comments", Via: &sqldata.Via{Parent: "posts", Column: "post_id"}, Columns: []sqldata.Column{{Name: "body"}}},
		{Name: "posts", Via: &sqldata.Via{Parent: "accounts", Column: "account_id"}, Columns: []sqldata.Column{{Name: "body"}}},
		{Name: "events", UserColumn: "owner", Key: "seq", Columns: []sqldata.Column{{Name: "seq"}, {Name: "kind"}}},
	}
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func exportAll(t *testing.T, s privacy.DataStore, userID string) []privacy.Record {
	t.Helper()
	var got []privacy.Record
	for rec, err := range s.Export(context.Background(), userID) {
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		got = append(got, rec)
	}
	return got
}

func TestJoinPathsPseudonymsAndSharedKeys(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db, forum...)
		var order []string
		s, err := sqldata.New(ctx, db, d, forumTables(), sqldata.WithBatchSize(1),
			sqldata.WithBatchObserver(func(b sqldata.Batch) {
				if len(order) == 0 || order[len(order)-1] != b.Table {
					order = append(order, b.Table)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		rec := func(cat string, kv ...any) privacy.Record {
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return privacy.Record{Category: cat, Data: m}
		}
		want := []privacy.Record{
			rec("accounts", "nickname", "ada", "status", "active"),
			rec("comments", "body", "on a1"), rec("comments", "body", "on a2"), rec("comments", "body", "again on a1"),
			rec("posts", "body", "a1"), rec("posts", "body", "a2"),
			rec("events", "seq", int64(1), "kind", "x"), rec("events", "seq", int64(2), "kind", "y"), rec("events", "seq", int64(3), "kind", "z"),
		}
		if diff := cmp.Diff(want, exportAll(t, s, "user_a")); diff != "" {
			t.Errorf("export of user_a: declaration order, key order within a table (-want +got):\n%s", diff)
		}

		er, err := s.Erase(ctx, "user_a")
		if err != nil {
			t.Fatal(err)
		}
		if er.Count != 1+2+3+3 {
			t.Errorf("Erase count = %d, want 9", er.Count)
		}
		if diff := cmp.Diff([]string{"comments", "posts", "accounts", "events"}, order); diff != "" {
			t.Errorf("erase order: children before parents (-want +got):\n%s", diff)
		}
		p, _ := pseudonym("user_a")
		var owner, status string
		var nickname sql.NullString
		if err := db.QueryRow(`SELECT owner, nickname, status FROM accounts WHERE id = 1`).Scan(&owner, &nickname, &status); err != nil {
			t.Fatal(err)
		}
		if owner != p || nickname.Valid || status != "erased" {
			t.Errorf("anonymised account = (%q, %v, %q), want (%q, NULL, erased)", owner, nickname, status, p)
		}
		wantB := []privacy.Record{
			rec("accounts", "nickname", "bob", "status", "active"),
			rec("comments", "body", "on b1"),
			rec("posts", "body", "b1"),
			rec("events", "seq", int64(1), "kind", "x"), rec("events", "seq", int64(2), "kind", "y"),
		}
		if diff := cmp.Diff(wantB, exportAll(t, s, "user_b")); diff != "" {
			t.Errorf("user_b shares event keys with user_a and must keep every row (-want +got):\n%s", diff)
		}
		if got := exportAll(t, s, "user_a"); len(got) != 0 {
			t.Errorf("after Erase user_a exports %v", got)
		}
		if er, err := s.Erase(ctx, "user_a"); err != nil || er.Count != 0 {
			t.Errorf("second Erase = %+v, %v; want nothing to do", er, err)
		}
	})
}

// TestAnonymiseViaJoinPath keeps child rows reached through a parent and
// clears a column: the rows still match the user until the parent is
// done, so batches must skip rows already anonymised.
func TestAnonymiseViaJoinPath(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db, forum...)
		tables := forumTables()
		tables[1].Anonymise = []sqldata.Set{sqldata.Fixed("body", "[removed]")}
		tables[2].Anonymise = []sqldata.Set{sqldata.Null("body")}
		s, err := sqldata.New(ctx, db, d, tables, sqldata.WithBatchSize(1))
		if err != nil {
			t.Fatal(err)
		}
		er, err := s.Erase(ctx, "user_a")
		if err != nil {
			t.Fatal(err)
		}
		if er.Count != 9 {
			t.Errorf("Erase count = %d, want 9", er.Count)
		}
		var removed, nulls int
		if err := db.QueryRow(`SELECT count(*) FROM comments WHERE body = '[removed]'`).Scan(&removed); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM posts WHERE body IS NULL`).Scan(&nulls); err != nil {
			t.Fatal(err)
		}
		if removed != 3 || nulls != 2 {
			t.Errorf("comments removed = %d (want 3), posts nulled = %d (want 2)", removed, nulls)
		}
	})
}

func TestDerivedErrorStopsErase(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db, forum...)
		tables := forumTables()
		boom := errors.New("key store unavailable")
		tables[0].Anonymise[0] = sqldata.Derived("owner", func(userID string) (any, error) {
			return nil, fmt.Errorf("no pseudonym for %s: %w", userID, boom)
		})
		s, err := sqldata.New(ctx, db, d, tables)
		if err != nil {
			t.Fatal(err)
		}
		er, err := s.Erase(ctx, "user_a")
		if !errors.Is(err, boom) {
			t.Fatalf("Erase error = %v, want the Derived function's error", err)
		}
		if strings.Contains(err.Error(), "user_a") {
			t.Errorf("error %q contains the user ID", err)
		}
		if !strings.Contains(err.Error(), `"accounts"`) || !strings.Contains(err.Error(), `"owner"`) {
			t.Errorf("error %q does not name the table and column", err)
		}
		// Children were erased before the parent failed; that work stays.
		if er.Count != 5 {
			t.Errorf("Erase count = %d, want 5 (comments and posts)", er.Count)
		}
	})
}

// TestRowsAddedBehindTheCursor adds a row for the user, with a key the
// erasure has already passed, while Erase works through a table in key
// order: the pass that follows finds it.
func TestRowsAddedBehindTheCursor(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db, forum...)
		tables := forumTables()
		tables[1].Anonymise = []sqldata.Set{sqldata.Fixed("body", "[removed]")}
		tables[2].Anonymise = []sqldata.Set{sqldata.Null("body")}
		added := false
		s, err := sqldata.New(ctx, db, d, tables, sqldata.WithBatchSize(1),
			sqldata.WithBatchObserver(func(b sqldata.Batch) {
				if b.Table == "comments" && !added {
					added = true
					exec(t, db, `INSERT INTO comments VALUES (1, 10, 'late')`)
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		er, err := s.Erase(ctx, "user_a")
		if err != nil {
			t.Fatal(err)
		}
		var body string
		if err := db.QueryRow(`SELECT body FROM comments WHERE id = 1`).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if body != "[removed]" {
			t.Errorf("comment added behind the cursor has body %q, want it anonymised", body)
		}
		if er.Count != 10 {
			t.Errorf("Erase count = %d, want 10 (9 seeded rows and the late one)", er.Count)
		}
	})
}

// TestDatabaseErrorsDoNotRepeatUserIDs declares a user column whose type
// cannot hold the user ID: whatever the database says about the value,
// the error Erase returns does not contain it.
func TestDatabaseErrorsDoNotRepeatUserIDs(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
		ctx := context.Background()
		exec(t, db, `CREATE TABLE scores (id INTEGER PRIMARY KEY, owner BIGINT NOT NULL, points INTEGER)`,
			`INSERT INTO scores VALUES (1, 42, 7)`)
		s, err := sqldata.New(ctx, db, d, []sqldata.Table{{Name: "scores", UserColumn: "owner"}})
		if err != nil {
			t.Fatal(err)
		}
		const id = "user_2abcDEF0123456789"
		for rec, err := range s.Export(ctx, id) {
			if err == nil {
				t.Errorf("Export matched %v", rec)
				continue
			}
			if strings.Contains(err.Error(), id) {
				t.Errorf("Export error %q contains the user ID", err)
			}
		}
		_, err = s.Erase(ctx, id)
		if err != nil && strings.Contains(err.Error(), id) {
			t.Errorf("Erase error %q contains the user ID", err)
		}
		if d == sqlstore.Postgres && (err == nil || !strings.Contains(err.Error(), "[user ID]")) {
			// PostgreSQL quotes the value it could not read as a bigint.
			t.Errorf("Erase error = %v, want PostgreSQL's complaint with the value redacted", err)
		}
	})
}
