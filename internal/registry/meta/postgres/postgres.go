// Package postgres opens the registry's metadata in a PostgreSQL database,
// through pgx's database/sql driver, for installations that configure a
// database URL (several registry processes can then share one database).
//
// Text columns use the "C" collation so tags and repositories list in byte
// order, as the distribution spec requires, whatever the database's locale.
// Transactions run at READ COMMITTED; meta.SQL takes row locks (FOR UPDATE,
// FOR SHARE) where a push and the garbage collector meet, and retries
// deadlocks and serialization failures. A garbage collection holds
// session-level advisory locks on a connection of its own (see
// advisoryLocks), which PostgreSQL releases when the session ends.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
)

// Open connects to the database at url (postgres://user:pass@host/db?...)
// and creates the schema if needed.
func Open(ctx context.Context, url string) (*meta.SQL, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("postgres: %w", err))
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, errdefs.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	s, err := meta.NewSQL(ctx, db, Dialect, advisoryLocks{db})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// The pgx driver registers itself as "pgx" when its stdlib package is
// imported; refer to it so the import is explicit.
var _ = stdlib.GetDefaultDriver

// Dialect is PostgreSQL's meta.Dialect.
var Dialect = meta.Dialect{
	Name:      "postgres",
	Numbered:  true,
	ForUpdate: " FOR UPDATE",
	ForShare:  " FOR SHARE",
	Retryable: func(err error) bool {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			// serialization_failure, deadlock_detected,
			// unique_violation (two first inserts raced).
			return pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "23505"
		}
		return false
	},
	Schema: []string{
		// Serialize concurrent first starts creating the schema.
		`SELECT pg_advisory_xact_lock(7213)`,
		`CREATE TABLE IF NOT EXISTS repositories (
			name TEXT COLLATE "C" PRIMARY KEY,
			created BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS blobs (
			digest TEXT COLLATE "C" PRIMARY KEY,
			size BIGINT NOT NULL,
			state TEXT NOT NULL,
			created BIGINT NOT NULL,
			updated BIGINT NOT NULL,
			claimed BIGINT NOT NULL DEFAULT 0,
			claims BIGINT NOT NULL DEFAULT 0,
			collector BIGINT NOT NULL DEFAULT 0)`,
		`CREATE TABLE IF NOT EXISTS repo_blobs (
			repo TEXT COLLATE "C" NOT NULL,
			digest TEXT COLLATE "C" NOT NULL,
			linked BIGINT NOT NULL,
			PRIMARY KEY (repo, digest))`,
		`CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs (digest)`,
		`CREATE TABLE IF NOT EXISTS manifests (
			repo TEXT COLLATE "C" NOT NULL,
			digest TEXT COLLATE "C" NOT NULL,
			media_type TEXT NOT NULL,
			size BIGINT NOT NULL,
			artifact_type TEXT NOT NULL,
			subject TEXT COLLATE "C" NOT NULL,
			annotations TEXT NOT NULL,
			created BIGINT NOT NULL,
			PRIMARY KEY (repo, digest))`,
		`CREATE INDEX IF NOT EXISTS manifests_digest ON manifests (digest)`,
		`CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject)`,
		`CREATE TABLE IF NOT EXISTS manifest_refs (
			repo TEXT COLLATE "C" NOT NULL,
			manifest TEXT COLLATE "C" NOT NULL,
			child TEXT COLLATE "C" NOT NULL,
			PRIMARY KEY (repo, manifest, child))`,
		`CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs (child, repo)`,
		`CREATE TABLE IF NOT EXISTS tags (
			repo TEXT COLLATE "C" NOT NULL,
			tag TEXT COLLATE "C" NOT NULL,
			digest TEXT COLLATE "C" NOT NULL,
			updated BIGINT NOT NULL,
			PRIMARY KEY (repo, tag))`,
		`CREATE INDEX IF NOT EXISTS tags_digest ON tags (repo, digest)`,
		`CREATE TABLE IF NOT EXISTS uploads (
			id TEXT COLLATE "C" PRIMARY KEY,
			repo TEXT COLLATE "C" NOT NULL,
			size BIGINT NOT NULL,
			chunks TEXT NOT NULL,
			hash_state BYTEA,
			created BIGINT NOT NULL,
			updated BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS uploads_updated ON uploads (updated)`,
	},
	Upgrades: []meta.Upgrade{
		// The collection that marked a blob deleting (see meta.Lock).
		// Checked first: ALTER TABLE locks the table out even when
		// it has nothing to do.
		{Check: `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'blobs' AND column_name = 'collector'`,
			Apply: `ALTER TABLE blobs ADD COLUMN collector BIGINT NOT NULL DEFAULT 0`},
	},
}

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
