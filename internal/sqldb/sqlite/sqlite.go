// Package sqlite opens lading's metadata database in a SQLite file, the
// default when no PostgreSQL URL is configured.
//
// The driver is modernc.org/sqlite, a translation of SQLite's C sources to
// pure Go, rather than mattn/go-sqlite3: lading is one static binary built
// with CGO_ENABLED=0 and cross-compiled for every platform, and cgo would
// cost both (and a C toolchain in CI). The price is some speed on heavy
// write loads, which a registry's metadata does not have.
//
// The database runs in WAL mode so readers never wait for the writer, with
// synchronous=FULL so a committed change survives a power cut, and every
// transaction starts IMMEDIATE: SQLite then serializes writers up front,
// which is the row locking the services rely on. Foreign keys are
// enforced.
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

	"github.com/lading-dev/lading/internal/sqldb"
)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string) (*sqldb.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
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
	return sqldb.New(db, Dialect), nil
}

// Dialect is SQLite's dialect.
var Dialect = sqldb.Dialect{
	Name:      "sqlite",
	OneWriter: true,
	ILike:     "LIKE", // case-insensitive for ASCII
	Retryable: func(err error) bool {
		s := err.Error()
		return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
	},
	Types: map[string]string{
		"id":    "INTEGER PRIMARY KEY AUTOINCREMENT",
		"int":   "INTEGER",
		"text":  "TEXT",
		"bytes": "BLOB",
		"bool":  "BOOLEAN",
	},
}
