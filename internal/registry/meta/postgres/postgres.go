// Package postgres opens the registry's metadata alone in a PostgreSQL
// database (see sqldb/postgres), for tests and tools that need the
// registry's tables without lading's other services, and holds the
// collection locks of a PostgreSQL database. A garbage collection holds
// session-level advisory locks on a connection of its own (see
// advisoryLocks), which PostgreSQL releases when the session ends.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/postgres"
)

// Open connects to the database at url (postgres://user:pass@host/db?...)
// and creates the registry's tables if needed.
func Open(ctx context.Context, url string, opts ...meta.Option) (*meta.SQL, error) {
	db, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, db, meta.Migrations); err != nil {
		db.Close()
		return nil, err
	}
	return meta.New(db, append([]meta.Option{meta.OwnDB(), meta.WithCollectionLocks(Locks(db.SQL()))}, opts...)...), nil
}

// Dialect is PostgreSQL's dialect.
var Dialect = postgres.Dialect

// Locks returns the collection locks of the PostgreSQL database db.
func Locks(db *sql.DB) meta.CollectionLocks { return advisoryLocks{db} }

// collectionKey is the advisory lock that one collection at a time holds
// ("ladinggc"); each collection also holds one keyed by its id.
const collectionKey = 0x6c6164696e676763

// advisoryLocks are the collection locks of a PostgreSQL database:
// session-level advisory locks taken on a connection kept for the
// collection. PostgreSQL releases them when that session ends, and a
// session ends when its client dies (the kernel closes the socket).
type advisoryLocks struct{ db *sql.DB }

// Lock implements meta.CollectionLocks.
func (a advisoryLocks) Lock(ctx context.Context, id int64) (*meta.Lock, error) {
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Waits for the collection before; cancelling ctx cancels the wait.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(collectionKey)); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, id); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock_all()`)
		conn.Close()
		return nil, err
	}
	check := func(ctx context.Context) error {
		var held bool
		err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1)`, id).Scan(&held)
		if err == nil && !held {
			err = errors.New("the lock is gone")
		}
		if err != nil {
			return errdefs.Unavailable(fmt.Errorf("postgres: collection lock lost: %w", err))
		}
		return nil
	}
	release := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The connection goes back to the pool: it must hold nothing.
		_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`)
		conn.Close()
		return err
	}
	return meta.NewLock(id, check, release), nil
}

// Held implements meta.CollectionLocks: the claim's transaction can take
// collection id's lock only if its session has ended (the transaction's
// own hold ends with it).
func (advisoryLocks) Held(ctx context.Context, tx *sql.Tx, id int64) (bool, error) {
	var got bool
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, id).Scan(&got); err != nil {
		return false, err
	}
	return !got, nil
}
