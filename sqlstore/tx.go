package sqlstore

import (
	"context"
	"database/sql"
)

// beginWrite starts a read-write transaction that holds the database's
// write lock before its first read. On SQLite it makes a write that
// changes nothing as the transaction's first statement: a deferred
// transaction (what a DSN without _txlock=immediate gives) that read
// first and wrote later would fail at once with SQLITE_BUSY when another
// connection wrote in between, instead of waiting under busy_timeout, so
// several Loggers or workers on one file would see each other's writes as
// errors. With _txlock=immediate (sqlite.Open) the lock is held already
// and the statement costs nothing. On PostgreSQL it is BeginTx.
func beginWrite(ctx context.Context, db *sql.DB, d Dialect) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil || d != SQLite {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+migrationsTable+" WHERE 0"); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}
