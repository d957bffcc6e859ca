// Package sqltarget is a retention.Target over an application's own SQL
// table (PostgreSQL or SQLite): declare the table, its time column and,
// optionally, the column holding the user ID, and expired rows are purged
// or anonymised in bounded batches, each in a short transaction of its
// own.
//
//	activity, err := sqltarget.New(ctx, db, sqldialect.SQLite, sqltarget.Table{
//		Name: "activity_log", TimeColumn: "created_at", SubjectColumn: "user_id"})
//	policies := retention.DefaultPolicies(activity, nil) // no sessions table
//
// Names are checked against the database's catalog when the Target is
// made (with privacy/sqldata's ValidateIdentifiers) and always quoted;
// times, limits and user IDs are bind parameters.
//
// # Time columns
//
// A row expires when its time is strictly before the cutoff, compared as
// instants, to the nanosecond the column can hold. New reads the time
// column's declared type from the catalog and compares the cutoff in the
// column's own storage:
//
//   - PostgreSQL timestamptz: as a timestamptz (the cutoff rounded up to
//     the microsecond, so a row a microsecond older than it expires).
//   - PostgreSQL timestamp (without time zone): as the UTC wall clock.
//     pgx writes a time.Time's wall clock in its own zone, so write
//     t.UTC() to such columns.
//   - PostgreSQL date: a day, from midnight UTC.
//   - Integers (PostgreSQL smallint, integer, bigint; SQLite INTEGER,
//     BIGINT and any type SQLite gives integer affinity, and DATE,
//     DATETIME or TIMESTAMP columns that hold numbers): as a count of
//     Table.Epoch units since 1970 UTC, UnixSeconds or UnixMilliseconds
//     (or micro- and nanoseconds). Epoch must be given for such columns.
//     On SQLite a row holding text or a blob there (a time.Time passed to
//     an INTEGER column is stored as its text) fails Count, Purge and
//     Anonymise with ErrUnreadableTime: SQLite sorts it after every
//     number, so no cutoff would ever reach it.
//   - SQLite TEXT, VARCHAR and other text types, and DATE, DATETIME and
//     TIMESTAMP columns: as text in any of the forms the drivers and
//     SQLite write, read as instants with their offsets, so rows written
//     in -05:00 and +09:00 compare as the instants they are:
//     time.Time.String (modernc.org/sqlite's default rendering, such as
//     "2026-08-23 18:00:09.654946774 +0000 UTC", with or without its
//     " m=+0.0001" monotonic reading), "2006-01-02 15:04:05.999999999-07:00"
//     (modernc.org/sqlite's _time_format=sqlite, mattn/go-sqlite3), RFC 3339
//     with any offset or Z and any fraction, and without an offset (read as
//     UTC) "2006-01-02 15:04:05" (SQLite's datetime() and
//     CURRENT_TIMESTAMP), with T or a space, to the minute or the day.
//
// Anything else (REAL, BLOB, NUMERIC, a column without a declared type,
// PostgreSQL text, numeric or time) is refused by New with an error that
// names the column and its type and says what would work, as is Epoch on
// a column that does not hold integers, or its absence on one that does.
// A NULL time never expires.
//
// Text times cannot be compared as text: "2026-03-10T08:00:00-05:00" is
// later than "2026-03-10T12:00:00+09:00". On SQLite the database narrows
// the rows down by date (every form starts with the local date, and no
// offset exceeds a day), and the candidates are read, parsed and
// compared here, in the batch's transaction; only the rows found expired
// are deleted, by key, before it commits. A row whose text is in none of
// the forms fails the batch with ErrUnreadableTime and nothing of that
// batch is changed. Count reads the rows within two days of the cutoff,
// counts older dates without reading them, and fails with ErrUnreadableTime
// as Purge does for any value below them that is not text beginning with a
// date (SQLite sorts integers and reals before all text), so a dry run never
// reports rows the real run would refuse.
//
// # Legal holds
//
// The user IDs Purge and Count are told to leave out travel as one
// value, whatever their number: 100,000 holds work as one does. On
// PostgreSQL they are loaded, once per connection and list, into a
// temporary table (pg_temp.steward_sqltarget_holds, with a hash index;
// the database role needs the TEMPORARY privilege, which PUBLIC has by
// default), which each batch probes for each row it picks; Count passes
// them as one text[] parameter. On SQLite they pass as one JSON array
// (json_each), and each batch reads its rows' keys and subjects, checks
// them against the list here, and changes them by key.
//
// # Performance
//
// Each batch picks its rows through an index on the time column (create
// one), oldest first, continuing where the last batch of the same cutoff
// ended, and on PostgreSQL deletes them by ctid. (A ctid names a row only
// within its partition, so on a partitioned table a batch reads and locks
// its rows with their partition and changes them partition by
// partition; dropping whole old partitions remains the faster way to
// purge those.) Purging the 5,000,000
// expired rows of a 10,000,000-row timestamptz table in batches of 2,000
// runs at about a million rows a second with a median batch of about
// 2 ms, and with 100,000 holds in under twice the time
// (benchmarks/README.md). A batch that meets the sync phase of a
// checkpoint can wait for it, about 100 ms on a small server; a larger
// max_wal_size makes such checkpoints rarer.
//
// # Errors
//
// New returns sqldata's *DeclarationError for a missing table or column,
// an error wrapping ErrInvalidTable for an incomplete declaration, and
// one wrapping both ErrInvalidTable and ErrUnsupportedColumn for a time
// column it cannot compare. Count, Purge and Anonymise wrap
// ErrUnreadableTime for a time they cannot read, and otherwise return the
// database's errors, wrapped and naming the table; a batch that fails is
// rolled back whole, so the counts they return are what was committed.
package sqltarget
