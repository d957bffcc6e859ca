// Package sqldata is a privacy.DataStore over an application's own SQL
// tables, declared rather than coded. Declare where each table keeps the
// user ID (or which parent table leads to it), what to export and how to
// erase, and New checks the declarations against the database's catalog
// and builds the statements:
//
//	store, err := sqldata.New(ctx, db, sqldialect.Postgres, []sqldata.Table{
//		{Name: "user_profiles", UserColumn: "clerk_id", Category: "profile"},
//		{Name: "orders", UserColumn: "user_id",
//			Anonymise: []sqldata.Set{sqldata.Null("user_id"), sqldata.Null("email")}},
//		{Name: "order_items", Via: &sqldata.Via{Parent: "orders", Column: "order_id"}},
//		{Name: "activity_log", UserColumn: "user_id", References: []string{"user_profiles"}},
//	})
//
// It works on PostgreSQL (through pgx's database/sql driver) and SQLite
// (modernc.org/sqlite), and passes the privacytest DataStore suite on
// both. It imports neither driver: the Dialect comes from package
// sqldialect, and the program opens its database with the driver it
// uses (sqldialect/sqlite, sqldialect/postgres). Package exampleschema holds a small shop's tables declared this
// way, used by the tests, the benchmarks and the examples.
//
// # Export
//
// Export streams each table's rows of the user with one query and a
// cursor, in declaration order and by key within a table, as records of
// the table's Category; memory stays flat however many rows a user has.
//
// # Rows that belong to several people
//
// A row can name more than one user: a note its author shared with
// someone, a message with a sender and a recipient, a transfer between
// two accounts. Declare such a table once per column that holds a user
// ID, each declaration with a Role of its own, and say for each what the
// user sees and what erasing them does:
//
//	{Name: "notes", Role: "author", UserColumn: "author_id", Category: "notes"},
//	{Name: "notes", Role: "recipient", UserColumn: "recipient_id", Category: "sharedWithMe",
//		Anonymise: []sqldata.Set{sqldata.Null("recipient_id")}},
//	{Name: "attachments", Via: &sqldata.Via{Parent: "notes", Role: "author", Column: "note_id"}},
//
// The author's export holds the notes they wrote, the recipient's those
// shared with them; neither holds the other's ID, since a declaration's
// default Columns leave out the other declarations' user columns (list
// one in Columns to export it anyway). Erasing the author deletes their
// notes and the attachments reached through the author's declaration
// (Via.Role picks it); erasing the recipient only removes them from the
// notes shared with them, so the author's view is as it was. To keep a
// shared note for its recipient after the author's erasure, anonymise
// the author's declaration instead (Null("author_id")). A row of which a
// user holds both roles is erased by each declaration in turn.
//
// # Erase
//
// Erase deletes the user's rows, or, for tables that declare Anonymise,
// keeps them and overwrites the named columns with NULL, a fixed value, a
// value derived from the user ID (a pseudonym) or the time of the erasure
// (ErasedAt). Tables are erased children first: a table before the
// parent it reaches through Via, before the tables it lists in
// References, and before the declared tables its foreign keys point to
// (read from the catalog, when the key would otherwise stop the
// parent's erasure); a cycle is rejected by New.
//
// Each table is worked in bounded batches (WithBatchSize, Table.BatchSize),
// each its own short transaction, so no lock is held for long. A batch is
// one statement that picks at most n of the rows still to do by key:
//
//	DELETE FROM "t" WHERE "t"."id" IN (SELECT "t"."id" FROM "t" WHERE "t"."user_id" = ? LIMIT 1000)
//
// (on PostgreSQL "= ANY(ARRAY(SELECT ...))", so rows are fetched by key
// even when the user owns most of the table). Rows anonymised through Via
// still belong to the user afterwards, so such a table is worked in key
// order instead, each batch starting after the last key of the one
// before, and a final pass from the start picks up rows added behind it.
// A batch only picks rows that still belong to the user and are not yet
// anonymised, so Erase is idempotent, and after a crash between batches
// calling it again does the rest.
//
// For users with very many rows, index the user column (and each Via
// column); PostgreSQL then erases a million rows across five tables at
// well over 100,000 rows a second with no transaction longer than some
// tens of milliseconds (see BenchmarkErase).
//
// # Keep, then delete
//
// Some records must outlive their user's erasure for a fixed time and
// then go: invoices kept seven years for the tax authority, say.
// Anonymise them at erasure and stamp the time with ErasedAt:
//
//	{Name: "invoices", UserColumn: "customer",
//		Anonymise: []sqldata.Set{sqldata.Null("customer"), sqldata.Null("billing_address"),
//			sqldata.ErasedAt("anonymised_at")}},
//
// and let a retention policy delete them that long after the stamp,
// through a retention/sqltarget Target whose TimeColumn is the stamp:
// rows never anonymised have NULL there and are never deleted by it.
//
//	kept, err := sqltarget.New(ctx, db, d, sqltarget.Table{Name: "invoices", TimeColumn: "anonymised_at"})
//	policy := retention.Policy{Name: "erased_invoices", Target: kept, MaxAge: 7 * 365 * 24 * time.Hour, Action: retention.Delete}
//
// WithNow sets the clock ErasedAt reads.
//
// # One-to-one tables keyed by the user ID
//
// A table whose primary key is the user ID (user_settings(user_id PRIMARY
// KEY, ...)) can keep its row under a pseudonym, on both dialects:
// Anonymise the key column with Derived, which must give every user a
// different value (a keyed hash does). NULL cannot stand in a key, and a
// Fixed value would collide at the second erasure; New refuses both. To
// keep the user's key as it is, declare another unique column as Key
// (on SQLite rowid is always there) and delete or anonymise the rest.
//
// # Checks against the schema
//
// Every table and column name is checked against the catalog by New
// (SQLite: pragma_table_info; PostgreSQL: pg_catalog, in current_schema())
// and always quoted in statements; user IDs and anonymisation values are
// always bind parameters, never SQL text. A user ID must also pass
// steward.ValidateUserID. ValidateIdentifiers, RowKey, ColumnType and
// QuoteIdent make the same checks available to other code that builds
// SQL from declared names.
//
// New also reads the schema's foreign keys, unique indexes and NOT NULL
// columns, and refuses a declaration that would pass today and fail at
// some user's erasure:
//   - a table that is not declared but has a foreign key to a declared
//     one, or to another such table (its rows hang off users' rows: they
//     would be missing from exports, and could make erasures fail
//     half-way); declare it, with Via, or name it in WithUndeclared when
//     it holds no personal data and its key lets erasure through (ON
//     DELETE CASCADE or SET NULL; under a table that erasure empties by
//     cascade, CASCADE or SET NULL too);
//   - a declared table that keeps its rows (Anonymise) with a foreign key
//     still pointing at rows that erasure deletes;
//   - a declared table whose foreign key points at its own rows (replies
//     to comments) and stops their deletion (ON DELETE NO ACTION or
//     RESTRICT): another user's reply, or the user's own left to a later
//     batch, would fail the erasure; make the key ON DELETE CASCADE or SET
//     NULL, or Anonymise the rows;
//   - a Fixed value on a column of a unique index or primary key, which
//     the second erased user would repeat, and overwrites that cover a
//     whole unique index with one value per user (Derived, ErasedAt),
//     which a user's second row would repeat (the user column alone, as
//     in a one-to-one table, is fine);
//   - Null on a NOT NULL column or on the key, ErasedAt on a column that
//     cannot hold times.
//
// What the catalog cannot tell is whose rows a declared table's key points
// at. A table that finds its rows by UserColumn and has a key to another
// declared table is erased before it, which is enough when its rows point
// at their own user's rows (order_items.user_id beside order_items.order_id).
// When they can point at other users' rows (likes of someone's note), those
// would stop the note's deletion; declare the table once more, Via the
// parent along that key, so that erasing the note's author erases the
// likes of their notes too:
//
//	{Name: "likes", Role: "liker", UserColumn: "user_id"},
//	{Name: "likes", Role: "onMyNotes", Via: &sqldata.Via{Parent: "notes", Column: "note_id"}},
//
// or make the key ON DELETE CASCADE or SET NULL.
//
// New takes a context, unlike most constructors, because it reads the
// catalog; a declaration that names a missing table or column fails there,
// never half-way through an erasure.
//
// # Errors
//
// New and ValidateIdentifiers return a *DeclarationError naming the table
// (and role) and field at fault, wrapping ErrInvalidDeclaration (a
// declaration that cannot work: empty or control-character names, both
// or neither of UserColumn and Via, a table declared twice without
// distinct Roles, undeclared parents, references or Via roles, a cycle,
// an anonymisation that keeps the user ID, a table with no usable key,
// and the schema checks above), ErrUndeclaredTable (an undeclared table
// with a foreign key to a declared one; it wraps ErrInvalidDeclaration),
// ErrUnknownTable or ErrUnknownColumn; or the database's error while
// reading the catalog. When several undeclared tables are at fault New
// names them all, as errors joined (errors.As finds the first).
//
// New, ValidateIdentifiers, RowKey and ColumnType return an error
// wrapping sqldialect.ErrUnknownDialect for a dialect other than
// sqldialect.Postgres and sqldialect.SQLite (sqlstore.Postgres and
// sqlstore.SQLite are the same values).
//
// Export and Erase return errors wrapping steward.ErrInvalidUserID for an
// invalid user ID, the context's error when it is cancelled (Erase stops
// between batches), or the database's error, naming the table. Error
// strings never contain user IDs or row data.
package sqldata
