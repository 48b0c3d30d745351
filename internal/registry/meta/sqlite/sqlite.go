// Package sqlite opens the registry's metadata alone in a SQLite database
// file (see sqldb/sqlite for the database's settings), for tests and tools
// that need the registry's tables without lading's other services, and
// holds the collection locks of an SQLite database: garbage collections
// lock the file <database>.gc-lock with flock(2) (see meta.Lock). lading
// serve opens the database itself and migrates every service's tables
// (registry/server).
package sqlite

import (
	"context"

	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
)

// Open opens (creating if needed) the database file at path, with the
// registry's tables.
func Open(ctx context.Context, path string, opts ...meta.Option) (*meta.SQL, error) {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, db, meta.Migrations); err != nil {
		db.Close()
		return nil, err
	}
	return meta.New(db, append([]meta.Option{meta.OwnDB(), meta.WithCollectionLocks(Locks(path))}, opts...)...), nil
}

// Dialect is SQLite's dialect.
var Dialect = sqlite.Dialect

// Locks returns the collection locks of the SQLite database at path.
func Locks(path string) meta.CollectionLocks { return newLocks(path) }
