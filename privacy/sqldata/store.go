package sqldata

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/stewardlabs/steward"
	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqldialect"
)

// DefaultName is the Name of a Store built without WithName.
const DefaultName = "application_database"

// ErasedAtLayout is the form of the text ErasedAt writes on SQLite: RFC
// 3339 in UTC with nanoseconds, fixed width, so that it sorts as text,
// SQLite's date functions read it, and so does retention/sqltarget.
const ErasedAtLayout = "2006-01-02T15:04:05.000000000Z"

// DefaultBatchSize is how many rows one erase transaction touches when
// neither WithBatchSize nor Table.BatchSize says otherwise.
const DefaultBatchSize = 1000

// Store is a privacy.DataStore over declared tables of an application's
// own database. Build it with New; it is safe for concurrent use.
type Store struct {
	db         *sql.DB
	d          sqldialect.Dialect
	now        func() time.Time
	name       string
	tables     []*table // in declaration order: the export order
	eraseOrder []*table // children before parents
	observe    func(Batch)
	subjects   string // SELECT of every distinct user ID, for Subjects
}

var (
	_ privacy.DataStore     = (*Store)(nil)
	_ privacy.SubjectLister = (*Store)(nil)
)

// Batch describes one erase batch that changed rows, for progress
// reporting and metrics (see WithBatchObserver).
type Batch struct {
	// Table is the declared table name.
	Table string
	// Role is the declaration's Role, for a table declared under several.
	Role string
	// Rows is how many rows the batch deleted or anonymised.
	Rows int
	// Duration is how long the batch's transaction took.
	Duration time.Duration
}

// Option configures a Store.
type Option func(*config)

type config struct {
	name       string
	batchSize  int
	observe    func(Batch)
	now        func() time.Time
	undeclared []string
}

// WithName sets the store's Name, which privacy reports in
// DeletionResult.DeletedFrom and keeps in checkpoints; it must not change
// between releases. The default is DefaultName.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithBatchSize sets how many rows one erase transaction touches for
// tables that do not set Table.BatchSize. The default is DefaultBatchSize.
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithNow sets the clock whose time ErasedAt stamps on anonymised rows;
// the default is time.Now. Tests use it to put an erasure at a known
// time.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithUndeclared names tables of the database that are not declared
// although a foreign key of theirs points at a declared table, because
// they hold no personal data (a list of an order's status changes, say).
// New refuses such tables unless they are named here, and even then when
// the key would make an erasure fail (ON DELETE NO ACTION or RESTRICT
// towards rows Erase deletes, ON UPDATE NO ACTION or RESTRICT towards
// columns it overwrites). The same holds for undeclared tables whose keys
// point at such a table: name them too, and where erasure deletes rows
// of the table above by ON DELETE CASCADE, their keys must let the
// deletes through as well. A table outside PostgreSQL's current_schema()
// is named schema.table.
func WithUndeclared(tables ...string) Option {
	return func(c *config) { c.undeclared = append(c.undeclared, tables...) }
}

// WithBatchObserver calls f after every erase batch that changed rows,
// from the goroutine running Erase. f must be quick; it sees table names
// and counts, never user IDs.
func WithBatchObserver(f func(Batch)) Option { return func(c *config) { c.observe = f } }

// table is a declaration checked against the catalog, with its statements.
type table struct {
	name      string
	role      string
	category  string
	batchSize int
	sets      []Set
	exportAs  []string

	export query
	// A table erases with one statement per batch, or, when keyset is
	// set, in key order (see build): on PostgreSQL with batch[lo]; on
	// SQLite bound[lo] finds where a batch ends and rangeErase[lo][hi]
	// erases it. lo and hi say whether a batch is bounded below and above.
	erase      query
	keyset     bool
	batch      [2]query
	bound      [2]query
	rangeErase [2][2]query
}

// New checks tables against each other and against db's catalog (names,
// keys, types, NOT NULL columns, unique indexes and the foreign keys that
// point at them, as the package doc lists) and returns a Store that
// exports and erases users' rows in them. It takes a context because it
// reads the catalog.
//
// Every error names the table and field at fault: a *DeclarationError
// wrapping ErrInvalidDeclaration, ErrUndeclaredTable, ErrUnknownTable or
// ErrUnknownColumn, or an error from the database while reading its
// catalog.
func New(ctx context.Context, db *sql.DB, d sqldialect.Dialect, tables []Table, opts ...Option) (*Store, error) {
	cfg := config{name: DefaultName, batchSize: DefaultBatchSize, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", ErrInvalidDeclaration)
	}
	if err := checkDialect(d); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.name) == "" {
		return nil, &DeclarationError{Field: "WithName", Err: fmt.Errorf("%w: empty store name", ErrInvalidDeclaration)}
	}
	if cfg.now == nil {
		return nil, &DeclarationError{Field: "WithNow", Err: fmt.Errorf("%w: nil clock", ErrInvalidDeclaration)}
	}
	if cfg.batchSize < 1 {
		return nil, &DeclarationError{Field: "WithBatchSize", Err: fmt.Errorf("%w: batch size %d is below 1", ErrInvalidDeclaration, cfg.batchSize)}
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("%w: no tables", ErrInvalidDeclaration)
	}
	decls := make([]Table, len(tables))
	copy(decls, tables)
	parents, err := checkDeclarations(d, decls)
	if err != nil {
		return nil, err
	}
	b := builder{d: d, decls: decls, parents: parents, infos: map[string]tableInfo{}, keys: make([]string, len(decls))}
	for _, t := range decls {
		k := nameKey(d, t.Name)
		if _, done := b.infos[k]; done {
			continue
		}
		info, err := lookupTable(ctx, db, d, t.Name)
		if err != nil {
			return nil, err
		}
		if err := lookupUniques(ctx, db, d, t.Name, &info); err != nil {
			return nil, err
		}
		b.infos[k] = info
	}
	if err := b.resolve(); err != nil {
		return nil, err
	}
	fks, err := lookupForeignKeys(ctx, db, d)
	if err != nil {
		return nil, err
	}
	extra, err := b.foreignKeys(fks, cfg.undeclared)
	if err != nil {
		return nil, err
	}
	order, err := eraseOrder(d, decls, extra)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, name: cfg.name, observe: cfg.observe, now: cfg.now}
	built := make([]*table, len(decls))
	for i := range decls {
		built[i] = b.build(i, cfg.batchSize)
		s.tables = append(s.tables, built[i])
	}
	for _, i := range order {
		s.eraseOrder = append(s.eraseOrder, built[i])
	}
	var parts []string
	for _, t := range decls {
		if t.UserColumn != "" {
			parts = append(parts, "SELECT "+QuoteIdent(d, t.UserColumn)+" AS subject FROM "+QuoteIdent(d, t.Name)+
				" WHERE "+QuoteIdent(d, t.UserColumn)+" IS NOT NULL")
		}
	}
	s.subjects = "SELECT subject FROM (" + strings.Join(parts, " UNION ") + ") AS subjects ORDER BY subject"
	return s, nil
}

// Subjects implements privacy.SubjectLister: the distinct values of every
// declared UserColumn that are valid user IDs, in order, read with one
// streaming query (a UNION of the tables), so memory stays flat however
// many users there are. Tables reached through Via hold no user ID of
// their own; their users are their parents'. Values that anonymisation
// left behind (a Derived pseudonym, a Fixed marker) are yielded only
// when they pass steward.ValidateUserID; Service.Replay looks each up in
// its Ledger, so they find nothing there.
func (s *Store) Subjects(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		rows, err := s.db.QueryContext(ctx, s.subjects)
		if err != nil {
			yield("", fmt.Errorf("sqldata: listing subjects: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var v any
			if err := rows.Scan(&v); err != nil {
				yield("", fmt.Errorf("sqldata: listing subjects: %w", err))
				return
			}
			var id string
			switch x := v.(type) {
			case string:
				id = x
			case []byte:
				id = string(x)
			default:
				id = fmt.Sprint(x)
			}
			if steward.ValidateUserID(id) != nil {
				continue
			}
			if !yield(id, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield("", fmt.Errorf("sqldata: listing subjects: %w", err))
		}
	}
}

// Name returns the store's name (WithName; default DefaultName).
func (s *Store) Name() string { return s.name }

// Export yields the user's rows, table by table in declaration order and
// by Key within a table, each as a Record of its table's Category holding
// the exported columns under their export names, with values as the
// driver returns them (times in UTC). Each table is read with one
// streaming query, so memory stays flat however many rows there are; the
// query holds one connection of db until its rows are consumed or the
// loop stops, so on a pool of one connection (SQLite's ":memory:") the
// loop body must not query the same database.
//
// An invalid user ID yields one error wrapping steward.ErrInvalidUserID;
// a database error ends the sequence with that error, naming the table.
func (s *Store) Export(ctx context.Context, userID string) iter.Seq2[privacy.Record, error] {
	return func(yield func(privacy.Record, error) bool) {
		if err := steward.ValidateUserID(userID); err != nil {
			yield(privacy.Record{}, fmt.Errorf("sqldata: export: %w", err))
			return
		}
		for _, t := range s.tables {
			if !s.exportTable(ctx, t, userID, yield) {
				return
			}
		}
	}
}

func (s *Store) exportTable(ctx context.Context, t *table, userID string, yield func(privacy.Record, error) bool) bool {
	fail := func(err error) bool {
		yield(privacy.Record{}, fmt.Errorf("sqldata: export %s: %w", strconv.Quote(t.name), redact(err, userID)))
		return false
	}
	rows, err := s.db.QueryContext(ctx, t.export.sql, bind{userID: userID}.args(t.export.slots)...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	vals := make([]any, len(t.exportAs))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fail(err)
		}
		data := make(map[string]any, len(vals))
		for i, as := range t.exportAs {
			if tm, ok := vals[i].(time.Time); ok {
				// The driver's zone is the process's; an export should
				// read the same wherever it was made.
				vals[i] = tm.UTC()
			}
			data[as] = vals[i]
			vals[i] = nil
		}
		if !yield(privacy.Record{Category: t.category, Data: data}, nil) {
			return false
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return true
}

// Erase deletes the user's rows, or anonymises them in tables that
// declare Anonymise, children before parents. Each table is worked in
// batches of at most its batch size; each batch is one statement and so
// one transaction of its own, and no lock is held between batches.
//
// Erase is idempotent and resumable: a batch only picks rows still
// belonging to the user (and, when anonymising, not yet anonymised), so
// after a failure or a crash between batches, calling Erase again does the
// rest. Count is the number of rows this call deleted or anonymised, also
// when it returns an error (the work done before the error stays done).
//
// An invalid user ID returns an error wrapping steward.ErrInvalidUserID;
// a cancelled ctx stops Erase between batches with ctx's error; a
// database error, or an error from a Derived function, names the table.
func (s *Store) Erase(ctx context.Context, userID string) (privacy.Erased, error) {
	if err := steward.ValidateUserID(userID); err != nil {
		return privacy.Erased{}, fmt.Errorf("sqldata: erase: %w", err)
	}
	total := 0
	at := s.now().UTC()
	for _, t := range s.eraseOrder {
		n, err := s.eraseTable(ctx, t, userID, at)
		total += n
		if err != nil {
			return privacy.Erased{Count: total}, fmt.Errorf("sqldata: erase %s: %w", strconv.Quote(t.name), redact(err, userID))
		}
	}
	return privacy.Erased{Count: total}, nil
}

func (s *Store) eraseTable(ctx context.Context, t *table, userID string, at time.Time) (int, error) {
	v := bind{userID: userID, values: make([]any, len(t.sets))}
	for i, set := range t.sets {
		switch set.kind {
		case setFixed:
			v.values[i] = set.value
		case setDerived:
			x, err := set.derive(userID)
			if err != nil {
				return 0, fmt.Errorf("Anonymise[%d] (column %s): %w", i, strconv.Quote(set.column), err)
			}
			v.values[i] = x
		case setErasedAt:
			v.values[i] = at
			if s.d == sqldialect.SQLite {
				v.values[i] = at.Format(ErasedAtLayout)
			}
		case setErasedDay:
			day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
			if day.Before(at) {
				day = day.AddDate(0, 0, 1)
			}
			v.values[i] = day
		}
	}
	if t.keyset {
		return s.eraseKeyset(ctx, t, v)
	}
	a := v.args(t.erase.slots)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := time.Now()
		res, err := s.db.ExecContext(ctx, t.erase.sql, a...)
		if err != nil {
			return total, err
		}
		took := time.Since(start)
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += int(n)
		s.observed(t, int(n), took)
	}
}

// eraseKeyset works through t's rows in key order, each batch in a
// transaction of its own. A pass ends with a batch that finds fewer rows
// than the batch size; a pass that changed rows is followed by another
// from the start, which catches rows added behind it and normally finds
// nothing.
func (s *Store) eraseKeyset(ctx context.Context, t *table, v bind) (int, error) {
	total, pass, lo := 0, 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := time.Now()
		batch := s.keysetBatchSQLite
		if t.batch[0].sql != "" {
			batch = s.keysetBatchPostgres
		}
		n, full, err := batch(ctx, t, &v, lo)
		if err != nil {
			return total, err
		}
		took := time.Since(start)
		total += n
		pass += n
		if n > 0 {
			s.observed(t, n, took)
		}
		switch {
		case full:
			lo = 1
		case pass > 0:
			pass, lo = 0, 0
		default:
			return total, nil
		}
	}
}

// keysetBatchPostgres erases one batch after v.lo (when lo is 1) with one
// statement and sets v.lo to the batch's last key; full says the batch
// found as many rows as it could take.
func (s *Store) keysetBatchPostgres(ctx context.Context, t *table, v *bind, lo int) (n int, full bool, err error) {
	q := t.batch[lo]
	var changed, picked int
	var last any
	if err := s.db.QueryRowContext(ctx, q.sql, v.args(q.slots)...).Scan(&changed, &picked, &last); err != nil {
		return 0, false, err
	}
	v.lo = last
	return changed, picked == t.batchSize, nil
}

// keysetBatchSQLite does what keysetBatchPostgres does with two
// statements in one transaction: find the key of the batch's last row,
// then erase the rows up to it (or all the rest when there are fewer).
func (s *Store) keysetBatchSQLite(ctx context.Context, t *table, v *bind, lo int) (n int, full bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	hi := 0
	q := t.bound[lo]
	switch err := tx.QueryRowContext(ctx, q.sql, v.args(q.slots)...).Scan(&v.hi); err {
	case nil:
		hi = 1
	case sql.ErrNoRows:
	default:
		return 0, false, err
	}
	q = t.rangeErase[lo][hi]
	res, err := tx.ExecContext(ctx, q.sql, v.args(q.slots)...)
	if err != nil {
		return 0, false, err
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	v.lo = v.hi
	return int(affected), hi == 1, nil
}

func (s *Store) observed(t *table, n int, took time.Duration) {
	if s.observe != nil {
		s.observe(Batch{Table: t.name, Role: t.role, Rows: n, Duration: took})
	}
}

// redact keeps userID out of an error's text. A database may quote a
// parameter it could not use ("invalid input syntax for type bigint:
// ..."), and a Derived function may name its input; the text then says
// "[user ID]" instead, while errors.Is and errors.As still reach the
// original error.
func redact(err error, userID string) error {
	if err == nil || userID == "" || !strings.Contains(err.Error(), userID) {
		return err
	}
	return &redactedError{err: err, text: strings.ReplaceAll(err.Error(), userID, "[user ID]")}
}

type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
