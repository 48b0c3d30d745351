// Package sqlite opens the registry's metadata in a SQLite database file, the
// default when no PostgreSQL URL is configured.
//
// The driver is modernc.org/sqlite, a translation of SQLite's C sources to
// pure Go, rather than mattn/go-sqlite3: lading is one static binary built
// with CGO_ENABLED=0 and cross-compiled for every platform, and cgo would
// cost both (and a C toolchain in CI). The price is some speed on heavy
// write loads, which a registry's metadata does not have: writes are a few
// small rows per push, and larger installations use PostgreSQL.
//
// The database runs in WAL mode so readers never wait for the writer,
// with synchronous=FULL so a committed push survives a power cut, and every
// transaction starts IMMEDIATE: SQLite then serializes writers up front,
// which is the row locking meta.SQL relies on (see meta's package comment).
// Garbage collections lock the file <database>.gc-lock with flock(2) (see
// meta.Lock).
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/lading-dev/lading/internal/registry/meta"
)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string) (*meta.SQL, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	s, err := meta.NewSQL(ctx, db, Dialect, newLocks(path))
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect is SQLite's meta.Dialect.
var Dialect = meta.Dialect{
	Name:      "sqlite",
	OneWriter: true,
	Retryable: func(err error) bool {
		s := err.Error()
		return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
	},
	Schema: []string{
		`CREATE TABLE IF NOT EXISTS repositories (
			name TEXT PRIMARY KEY,
			created INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS blobs (
			digest TEXT PRIMARY KEY,
			size INTEGER NOT NULL,
			state TEXT NOT NULL,
			created INTEGER NOT NULL,
			updated INTEGER NOT NULL,
			claimed INTEGER NOT NULL DEFAULT 0,
			claims INTEGER NOT NULL DEFAULT 0,
			collector INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE IF NOT EXISTS repo_blobs (
			repo TEXT NOT NULL,
			digest TEXT NOT NULL,
			linked INTEGER NOT NULL,
			PRIMARY KEY (repo, digest))`,
		`CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs (digest)`,
		`CREATE TABLE IF NOT EXISTS manifests (
			repo TEXT NOT NULL,
			digest TEXT NOT NULL,
			media_type TEXT NOT NULL,
			size INTEGER NOT NULL,
			artifact_type TEXT NOT NULL,
			subject TEXT NOT NULL,
			annotations TEXT NOT NULL,
			created INTEGER NOT NULL,
			PRIMARY KEY (repo, digest))`,
		`CREATE INDEX IF NOT EXISTS manifests_digest ON manifests (digest)`,
		`CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject)`,
		`CREATE TABLE IF NOT EXISTS manifest_refs (
			repo TEXT NOT NULL,
			manifest TEXT NOT NULL,
			child TEXT NOT NULL,
			PRIMARY KEY (repo, manifest, child))`,
		`CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs (child, repo)`,
		`CREATE TABLE IF NOT EXISTS tags (
			repo TEXT NOT NULL,
			tag TEXT NOT NULL,
			digest TEXT NOT NULL,
			updated INTEGER NOT NULL,
			PRIMARY KEY (repo, tag))`,
		`CREATE INDEX IF NOT EXISTS tags_digest ON tags (repo, digest)`,
		`CREATE TABLE IF NOT EXISTS uploads (
			id TEXT PRIMARY KEY,
			repo TEXT NOT NULL,
			size INTEGER NOT NULL,
			chunks TEXT NOT NULL,
			hash_state BLOB,
			created INTEGER NOT NULL,
			updated INTEGER NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS uploads_updated ON uploads (updated)`,
	},
	Upgrades: []meta.Upgrade{
		// The collection that marked a blob deleting (see meta.Lock).
		{Check: `SELECT count(*) FROM pragma_table_info('blobs') WHERE name = 'collector'`,
			Apply: `ALTER TABLE blobs ADD COLUMN collector INTEGER NOT NULL DEFAULT 0`},
	},
}
