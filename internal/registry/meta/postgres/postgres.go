// Package postgres opens the registry's metadata alone in a PostgreSQL
// database (see sqldb/postgres), for tests and tools that need the
// registry's tables without lading's other services.
package postgres

import (
	"context"

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
	return meta.New(db, append(opts, meta.OwnDB())...), nil
}

// Dialect is PostgreSQL's dialect.
var Dialect = postgres.Dialect
