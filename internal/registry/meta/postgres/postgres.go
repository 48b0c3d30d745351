// Package postgres opens the registry's metadata in a PostgreSQL database,
// through pgx's database/sql driver, for installations that configure a
// database URL (several registry processes can then share one database).
//
// Text columns use the "C" collation so tags and repositories list in byte
// order, as the distribution spec requires, whatever the database's locale.
// Transactions run at READ COMMITTED; meta.SQL takes row locks (FOR UPDATE,
// FOR SHARE) where a push and the garbage collector meet, and retries
// deadlocks and serialization failures.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	s, err := meta.NewSQL(ctx, db, Dialect)
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
			claims BIGINT NOT NULL DEFAULT 0)`,
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
}
