package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/sqldialect"
)

// Requests is the privacy.RequestStore over the table
// steward_privacy_requests (migration 0003). Steps are stored as a JSON
// array; times to the microsecond (in SQLite as fixed-width UTC text).
// A user has at most one open erasure request and one pending export,
// enforced by partial unique indexes, so concurrent Erase and StartExport
// calls in several processes agree on one request.
//
// Requests is also the privacy.Ledger over steward_privacy_ledger
// (migration 0012; see [Ledger] to keep it in another database) and a
// privacy.RequestPurger.
//
// Requests is a privacy.RequestClaimer: a claim is two columns of the
// request's row (migration 0010) set by one conditional UPDATE, with the
// expiry judged by the database's clock, so several processes sharing the
// database run each request one at a time.
//
// Requests is safe for concurrent use. Get one with [Store.Requests].
type Requests struct {
	db       *sql.DB
	d        Dialect
	onCreate CreateHook
}

// CreateHook is called inside the transaction that creates a request,
// after the request's row is inserted: an error rolls the row back. Job
// engines use it to enqueue a request's job in the same transaction
// (riverjobs.EnqueueTx), so that neither exists without the other.
type CreateHook func(ctx context.Context, tx *sql.Tx, r privacy.Request) error

var (
	_ privacy.RequestStore   = (*Requests)(nil)
	_ privacy.RequestClaimer = (*Requests)(nil)
	_ privacy.Ledger         = (*Requests)(nil)
	_ privacy.RequestPurger  = (*Requests)(nil)
)

// Requests returns the privacy.RequestStore over this database. Run
// [Store.Migrate] first.
func (s *Store) Requests() *Requests { return &Requests{db: s.db, d: s.dialect} }

// OnCreate returns Requests over the same table that call hook in the
// transaction that creates each request (Create): the request is stored
// only if hook succeeds, and what hook writes in tx is committed only
// with the request. A nil hook removes it.
func (r *Requests) OnCreate(hook CreateHook) *Requests {
	c := *r
	c.onCreate = hook
	return &c
}

// sqliteTime is how SQLite columns hold times: fixed width, so text order
// is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// timeArg encodes t for a query; the zero time is NULL.
func (r *Requests) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if r.d == SQLite {
		return t.Format(sqliteTime)
	}
	return t
}

// scanTime reads a time column of either dialect; NULL is the zero time.
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = x.UTC()
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	default:
		return fmt.Errorf("sqlstore: cannot read %T as a time", v)
	}
	return nil
}

func (s scanTime) parse(x string) error {
	t, err := time.Parse(time.RFC3339Nano, x)
	if err != nil {
		return fmt.Errorf("sqlstore: reading time %q: %w", x, err)
	}
	*s.t = t.UTC()
	return nil
}

const requestColumns = `id, kind, user_id, actor, regime, status, received_at, due_at, extended_at,
	extension_reason, reason, updated_at, completed_at, location, steps, not_before, expires_at, version`

// requestReadColumns are requestColumns and the claim (migration 0010).
const requestReadColumns = requestColumns + `, claim_owner, claim_expires`

// openStatuses are the statuses of privacy.Status.Open, for SQL.
const openStatuses = `('pending', 'partial', 'held')`

// args returns r's column values in requestColumns order, without the
// version.
func (r *Requests) args(req privacy.Request) ([]any, error) {
	steps := req.Steps
	if steps == nil {
		steps = []privacy.Step{}
	}
	b, err := json.Marshal(steps)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encoding steps of request %q: %w", req.ID, err)
	}
	return []any{
		req.ID, string(req.Kind), req.UserID, req.Actor, string(req.Regime), string(req.Status),
		r.timeArg(req.ReceivedAt), r.timeArg(req.DueAt), r.timeArg(req.ExtendedAt),
		req.ExtensionReason, req.Reason, r.timeArg(req.UpdatedAt), r.timeArg(req.CompletedAt),
		req.Location, string(b), r.timeArg(req.NotBefore), r.timeArg(req.ExpiresAt),
	}, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRequest(row rowScanner) (privacy.Request, error) {
	var (
		req                  privacy.Request
		kind, regime, status string
		steps                string
	)
	err := row.Scan(&req.ID, &kind, &req.UserID, &req.Actor, &regime, &status,
		scanTime{&req.ReceivedAt}, scanTime{&req.DueAt}, scanTime{&req.ExtendedAt},
		&req.ExtensionReason, &req.Reason, scanTime{&req.UpdatedAt}, scanTime{&req.CompletedAt},
		&req.Location, &steps, scanTime{&req.NotBefore}, scanTime{&req.ExpiresAt},
		&req.Version, &req.ClaimedBy, leaseTime{&req.ClaimExpires})
	if err != nil {
		return privacy.Request{}, err
	}
	if req.ClaimedBy == "" {
		req.ClaimExpires = time.Time{}
	}
	req.Kind, req.Regime, req.Status = privacy.Kind(kind), privacy.Regime(regime), privacy.Status(status)
	if err := json.Unmarshal([]byte(steps), &req.Steps); err != nil {
		return privacy.Request{}, fmt.Errorf("sqlstore: decoding steps of request %q: %w", req.ID, err)
	}
	return req, nil
}

// isUniqueViolation reports a unique-constraint error of either driver.
func isUniqueViolation(err error) bool { return sqldialect.IsUniqueViolation(err) }

// Create stores req with Version 1, as privacy.RequestStore documents.
func (r *Requests) Create(ctx context.Context, req privacy.Request) error {
	if req.ID == "" {
		return fmt.Errorf("%w: ID is empty", privacy.ErrInvalidRequest)
	}
	args, err := r.args(req)
	if err != nil {
		return err
	}
	q := r.d.Rebind(`INSERT INTO steward_privacy_requests (` + requestColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING`)
	if r.onCreate == nil {
		res, err := r.db.ExecContext(ctx, q, args...)
		return r.created(ctx, req, res, err)
	}
	tx, err := beginWrite(ctx, r.db, r.d)
	if err != nil {
		return fmt.Errorf("sqlstore: creating request %q: %w", req.ID, err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, q, args...)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = errNotInserted
		}
	}
	if err != nil {
		_ = tx.Rollback() // before looking at why, from another connection
		if errors.Is(err, errNotInserted) {
			err = nil
		}
		return r.created(ctx, req, zeroRows{}, err)
	}
	req.Version = 1
	if err := r.onCreate(ctx, tx, req); err != nil {
		return fmt.Errorf("sqlstore: creating request %q: %w", req.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: creating request %q: committing: %w", req.ID, err)
	}
	return nil
}

// errNotInserted is an INSERT that stored no row.
var errNotInserted = errors.New("no row inserted")

// zeroRows is the result of an INSERT that stored nothing.
type zeroRows struct{}

func (zeroRows) LastInsertId() (int64, error) { return 0, nil }
func (zeroRows) RowsAffected() (int64, error) { return 0, nil }

// created checks the result of the INSERT of req.
func (r *Requests) created(ctx context.Context, req privacy.Request, res sql.Result, err error) error {
	if err != nil {
		if isUniqueViolation(err) {
			return r.whyNotCreated(ctx, req)
		}
		return fmt.Errorf("sqlstore: creating request %q: %w", req.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: creating request %q: %w", req.ID, err)
	} else if n == 0 {
		return r.whyNotCreated(ctx, req)
	}
	return nil
}

// whyNotCreated names the constraint that refused req.
func (r *Requests) whyNotCreated(ctx context.Context, req privacy.Request) error {
	var one int
	err := r.db.QueryRowContext(ctx, r.d.Rebind(`SELECT 1 FROM steward_privacy_requests WHERE id = ?`), req.ID).Scan(&one)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %q", privacy.ErrDuplicateRequest, req.ID)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: creating request %q: %w", req.ID, err)
	}
	return fmt.Errorf("%w: creating request %q", privacy.ErrActiveRequest, req.ID)
}

// Get returns the request, or an error wrapping privacy.ErrRequestNotFound.
func (r *Requests) Get(ctx context.Context, id string) (privacy.Request, error) {
	row := r.db.QueryRowContext(ctx, r.d.Rebind(`SELECT `+requestReadColumns+` FROM steward_privacy_requests WHERE id = ?`), id)
	req, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return privacy.Request{}, fmt.Errorf("%w: %q", privacy.ErrRequestNotFound, id)
	}
	if err != nil {
		return privacy.Request{}, fmt.Errorf("sqlstore: reading request %q: %w", id, err)
	}
	return req, nil
}

// Update replaces the request when req.Version is the stored version, as
// privacy.RequestStore documents. ID and Kind are not changed; UserID is
// (to its pseudonym, when the request finishes).
func (r *Requests) Update(ctx context.Context, req privacy.Request) error {
	args, err := r.args(req)
	if err != nil {
		return err
	}
	// args: id, kind, then the mutable columns.
	set := append([]any{}, args[2:]...)
	q := r.d.Rebind(`UPDATE steward_privacy_requests SET
			user_id = ?, actor = ?, regime = ?, status = ?, received_at = ?, due_at = ?, extended_at = ?,
			extension_reason = ?, reason = ?, updated_at = ?, completed_at = ?, location = ?, steps = ?,
			not_before = ?, expires_at = ?, version = version + 1
		WHERE id = ? AND version = ?`)
	res, err := r.db.ExecContext(ctx, q, append(set, req.ID, req.Version)...)
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: updating request %q", privacy.ErrActiveRequest, req.ID)
		}
		return fmt.Errorf("sqlstore: updating request %q: %w", req.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: updating request %q: %w", req.ID, err)
	}
	if n == 1 {
		return nil
	}
	var version int64
	err = r.db.QueryRowContext(ctx, r.d.Rebind(`SELECT version FROM steward_privacy_requests WHERE id = ?`), req.ID).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %q", privacy.ErrRequestNotFound, req.ID)
	case err != nil:
		return fmt.Errorf("sqlstore: updating request %q: %w", req.ID, err)
	}
	return fmt.Errorf("%w: request %q is at version %d, not %d", privacy.ErrConflict, req.ID, version, req.Version)
}

// List yields the matching requests ordered by received time then ID,
// reading rows as it yields. Do not write to a single-connection
// database (SQLite ":memory:") while iterating.
func (r *Requests) List(ctx context.Context, f privacy.RequestFilter) iter.Seq2[privacy.Request, error] {
	return func(yield func(privacy.Request, error) bool) {
		if f.Limit < 0 {
			yield(privacy.Request{}, fmt.Errorf("%w: Limit is negative (%d)", privacy.ErrInvalidRequest, f.Limit))
			return
		}
		var where []string
		var args []any
		if f.Kind != "" {
			where, args = append(where, "kind = ?"), append(args, string(f.Kind))
		}
		if f.UserID != "" {
			where, args = append(where, "user_id = ?"), append(args, f.UserID)
		}
		if len(f.Statuses) > 0 {
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(f.Statuses)), ", ")
			where = append(where, "status IN ("+marks+")")
			for _, s := range f.Statuses {
				args = append(args, string(s))
			}
		}
		if !f.DueBefore.IsZero() {
			where, args = append(where, "due_at < ?"), append(args, r.timeArg(f.DueBefore))
		}
		if !f.UpdatedBefore.IsZero() {
			where, args = append(where, "updated_at < ?"), append(args, r.timeArg(f.UpdatedBefore))
		}
		if !f.ExpiresBefore.IsZero() {
			where, args = append(where, "expires_at IS NOT NULL AND expires_at < ?"), append(args, r.timeArg(f.ExpiresBefore))
		}
		if !f.After.IsZero() {
			// A row comparison, which both dialects answer from the
			// (received_at, id) indexes of migration 0013.
			where, args = append(where, "(received_at, id) > (?, ?)"), append(args, r.timeArg(f.After.ReceivedAt), f.After.ID)
		}
		q := `SELECT ` + requestReadColumns + ` FROM steward_privacy_requests`
		if len(where) > 0 {
			q += ` WHERE ` + strings.Join(where, " AND ")
		}
		q += ` ORDER BY received_at, id`
		if f.Limit > 0 {
			q += fmt.Sprintf(` LIMIT %d`, f.Limit)
		}
		rows, err := r.db.QueryContext(ctx, r.d.Rebind(q), args...)
		if err != nil {
			yield(privacy.Request{}, fmt.Errorf("sqlstore: listing requests: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			req, err := scanRequest(rows)
			if err != nil {
				yield(privacy.Request{}, fmt.Errorf("sqlstore: listing requests: %w", err))
				return
			}
			if !yield(req, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(privacy.Request{}, fmt.Errorf("sqlstore: listing requests: %w", err))
		}
	}
}
