// Package sqldbtest opens fresh metadata databases for tests: SQLite in a
// temporary directory, or a database on a real PostgreSQL server started
// for the test (see registry/meta/pgtest).
package sqldbtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/postgres"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
)

// SQLite opens a new SQLite database migrated to list; it is closed when
// the test ends.
func SQLite(t testing.TB, list []sqldb.Migration) *sqldb.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, db, list)
}

// Postgres opens a new database on srv (pgtest.Start) migrated to list.
func Postgres(t testing.TB, srv *pgtest.Server, list []sqldb.Migration) *sqldb.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), srv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	return migrated(t, db, list)
}

func migrated(t testing.TB, db *sqldb.DB, list []sqldb.Migration) *sqldb.DB {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	if err := sqldb.Migrate(context.Background(), db, list); err != nil {
		t.Fatal(err)
	}
	return db
}

// Each runs fn as a subtest on SQLite and, when short is false, on
// PostgreSQL, each with a new database migrated to list.
func Each(t *testing.T, list []sqldb.Migration, fn func(t *testing.T, db *sqldb.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, list)) })
	if testing.Short() {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.Start(t)
		fn(t, Postgres(t, srv, list))
	})
}
