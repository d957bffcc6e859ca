package sqldata_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/sqldialect"
	"github.com/stewardlabs/steward/sqlstore/sqltest"
)

// notes is a note-sharing schema: a note has an author and, when shared,
// a recipient; attachments belong to the note's author.
var notes = []string{
	`CREATE TABLE notes (id INTEGER PRIMARY KEY, author_id TEXT, recipient_id TEXT, body TEXT NOT NULL)`,
	`CREATE TABLE attachments (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES notes (id), name TEXT NOT NULL)`,
	`INSERT INTO notes VALUES (1, 'user_ada', 'user_bob', 'for Bob'), (2, 'user_ada', NULL, 'private'), (3, 'user_bob', 'user_ada', 'for Ada'), (4, 'user_cy', 'user_bob', 'from Cy')`,
	`INSERT INTO attachments VALUES (10, 1, 'plan.pdf'), (11, 3, 'reply.txt')`,
}

// noteTables declares notes twice: as their author's (deleted at the
// author's erasure, or kept for the recipient with the author removed)
// and as their recipient's (who is only unlinked).
func noteTables(authorKeeps bool) []sqldata.Table {
	author := sqldata.Table{Name: "notes", Role: "author", UserColumn: "author_id", Category: "notes"}
	if authorKeeps {
		author.Anonymise = []sqldata.Set{sqldata.Null("author_id")}
	}
	return []sqldata.Table{
		author,
		{Name: "notes", Role: "recipient", UserColumn: "recipient_id", Category: "sharedWithMe",
			Anonymise: []sqldata.Set{sqldata.Null("recipient_id")}},
		{Name: "attachments", Via: &sqldata.Via{Parent: "notes", Role: "author", Column: "note_id"}, Category: "attachments",
			Columns: []sqldata.Column{{Name: "note_id", As: "noteId"}, {Name: "name"}}},
	}
}

func records(t *testing.T, s privacy.DataStore, userID string) []privacy.Record {
	t.Helper()
	got := exportAll(t, s, userID)
	for i := range got {
		for k, v := range got[i].Data {
			if n, ok := v.(int64); ok {
				got[i].Data[k] = int(n)
			}
		}
	}
	return got
}

func note(category string, id int, body string, extra ...any) privacy.Record {
	data := map[string]any{"id": id, "body": body}
	for i := 0; i+1 < len(extra); i += 2 {
		data[extra[i].(string)] = extra[i+1]
	}
	return privacy.Record{Category: category, Data: data}
}

// TestSharedRows: a row with two subjects is exported to each without
// the other's ID, and erasing one subject leaves the other's view as it
// should be.
func TestSharedRows(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		exec(t, db, notes...)
		s, err := sqldata.New(ctx, db, d, noteTables(false))
		if err != nil {
			t.Fatal(err)
		}
		wantAda := []privacy.Record{
			note("notes", 1, "for Bob", "author_id", "user_ada"),
			note("notes", 2, "private", "author_id", "user_ada"),
			note("sharedWithMe", 3, "for Ada", "recipient_id", "user_ada"),
			{Category: "attachments", Data: map[string]any{"noteId": 1, "name": "plan.pdf"}},
		}
		wantBob := []privacy.Record{
			note("notes", 3, "for Ada", "author_id", "user_bob"),
			note("sharedWithMe", 1, "for Bob", "recipient_id", "user_bob"),
			note("sharedWithMe", 4, "from Cy", "recipient_id", "user_bob"),
			{Category: "attachments", Data: map[string]any{"noteId": 3, "name": "reply.txt"}},
		}
		if diff := cmp.Diff(wantAda, records(t, s, "user_ada")); diff != "" {
			t.Errorf("Ada's export, without Bob's ID (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantBob, records(t, s, "user_bob")); diff != "" {
			t.Errorf("Bob's export, without Ada's or Cy's ID (-want +got):\n%s", diff)
		}

		// Erasing Bob deletes his note (and its attachment) and unlinks
		// him from the notes shared with him; Ada's view is unchanged.
		er, err := s.Erase(ctx, "user_bob")
		if err != nil || er.Count != 4 {
			t.Fatalf("Erase(Bob) = %+v, %v; want 4 rows (his note, its attachment, two shares)", er, err)
		}
		wantAda = []privacy.Record{wantAda[0], wantAda[1], wantAda[3]} // Bob's note to her went with him
		if diff := cmp.Diff(wantAda, records(t, s, "user_ada")); diff != "" {
			t.Errorf("Ada's export after Bob's erasure (-want +got):\n%s", diff)
		}
		if got := records(t, s, "user_bob"); len(got) != 0 {
			t.Errorf("Bob's export after his erasure: %v", got)
		}
		var recipients int
		if err := db.QueryRow(`SELECT count(*) FROM notes WHERE recipient_id = 'user_bob' OR author_id = 'user_bob'`).Scan(&recipients); err != nil || recipients != 0 {
			t.Errorf("%d notes still name Bob (%v)", recipients, err)
		}
		if er, err := s.Erase(ctx, "user_bob"); err != nil || er.Count != 0 {
			t.Errorf("erasing Bob again = %+v, %v; want nothing", er, err)
		}
	})
}

// TestSharedRowsKeptForTheOtherSubject: when the author's declaration
// anonymises instead of deleting, the recipient keeps the note after the
// author's erasure, without the author.
func TestSharedRowsKeptForTheOtherSubject(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
		ctx := context.Background()
		exec(t, db, notes...)
		exec(t, db, `DROP TABLE attachments`) // only the notes matter here
		s, err := sqldata.New(ctx, db, d, noteTables(true)[:2])
		if err != nil {
			t.Fatal(err)
		}
		before := records(t, s, "user_bob")
		if _, err := s.Erase(ctx, "user_ada"); err != nil {
			t.Fatal(err)
		}
		// Bob's view: his own note to Ada (Ada unlinked from it, which
		// his export never showed) and the notes shared with him, Ada's
		// among them.
		if diff := cmp.Diff(before, records(t, s, "user_bob")); diff != "" {
			t.Errorf("Bob's export changed with Ada's erasure (-want +got):\n%s", diff)
		}
		if got := records(t, s, "user_ada"); len(got) != 0 {
			t.Errorf("Ada's export after her erasure: %v", got)
		}
		var left int
		if err := db.QueryRow(`SELECT count(*) FROM notes`).Scan(&left); err != nil || left != 4 {
			t.Errorf("%d notes left (%v), want all 4", left, err)
		}
	})
}
