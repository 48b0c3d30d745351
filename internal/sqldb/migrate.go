package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Migration is one step of the schema: statements run in one transaction.
// Statements may use the type tokens of Dialect.Expand.
type Migration struct {
	// Owner is the package that owns the tables ("registry/meta",
	// "identity", "project").
	Owner string
	// Name says what the step does; it is recorded and compared, so it
	// must not change once released.
	Name string
	// SQL are the statements.
	SQL []string
	// Func, when set, runs after SQL in the same transaction, for what
	// statements cannot say (a column added only where it is missing, a
	// data migration).
	Func func(ctx context.Context, tx *Tx) error
}

// Migrate brings the database's schema up to list: it applies, in order
// and each in its own transaction, the migrations not yet recorded. It
// fails, changing nothing, when the recorded migrations are not a prefix
// of list (a newer binary migrated the database, or the list was
// reordered). Concurrent callers (replicas starting together) are
// serialized by the database.
func Migrate(ctx context.Context, db *DB, list []Migration) error {
	create := db.d.Expand(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version {{int}} PRIMARY KEY,
		owner {{text}} NOT NULL,
		name {{text}} NOT NULL,
		applied {{int}} NOT NULL)`)
	err := db.Tx(ctx, "create schema_migrations", func(tx *Tx) error {
		if db.d.MigrationLock != "" {
			if _, err := tx.ExecDirect(ctx, db.d.MigrationLock); err != nil {
				return err
			}
		}
		_, err := tx.ExecDirect(ctx, create)
		return err
	})
	if err != nil {
		return err
	}
	for i, m := range list {
		version := int64(i + 1)
		err := db.Tx(ctx, fmt.Sprintf("migration %d (%s: %s)", version, m.Owner, m.Name), func(tx *Tx) error {
			if db.d.MigrationLock != "" {
				if _, err := tx.ExecDirect(ctx, db.d.MigrationLock); err != nil {
					return err
				}
			}
			var owner, name string
			err := tx.tx.QueryRowContext(ctx, db.d.Rewrite(`SELECT owner, name FROM schema_migrations WHERE version = ?`), version).Scan(&owner, &name)
			if err == nil {
				if owner != m.Owner || name != m.Name {
					return errdefs.FailedPrecondition(fmt.Errorf("database migration %d is %q (%s), but this lading's is %q (%s): the database was migrated by another version", version, name, owner, m.Name, m.Owner))
				}
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for _, stmt := range m.SQL {
				if _, err := tx.ExecDirect(ctx, db.d.Expand(stmt)); err != nil {
					return fmt.Errorf("%.60s...: %w", strings.Join(strings.Fields(stmt), " "), err)
				}
			}
			if m.Func != nil {
				if err := m.Func(ctx, tx); err != nil {
					return err
				}
			}
			_, err = tx.ExecDirect(ctx, `INSERT INTO schema_migrations (version, owner, name, applied) VALUES (?, ?, ?, ?)`, version, m.Owner, m.Name, Nanos(db.Now()))
			return err
		})
		if err != nil {
			return err
		}
	}
	var newer int64
	if err := db.db.QueryRowContext(ctx, db.d.Rewrite(`SELECT COUNT(*) FROM schema_migrations WHERE version > ?`), int64(len(list))).Scan(&newer); err != nil {
		return db.Wrap("schema_migrations", err)
	}
	if newer > 0 {
		return errdefs.FailedPrecondition(fmt.Errorf("the database has %d migrations newer than this lading knows (%d): it was migrated by a newer version", newer, len(list)))
	}
	return nil
}

// Applied lists the recorded migrations' names, in order.
func Applied(ctx context.Context, db *DB) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT owner, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, db.Wrap("schema_migrations", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o, n string
		if err := rows.Scan(&o, &n); err != nil {
			return nil, err
		}
		out = append(out, o+": "+n)
	}
	return out, rows.Err()
}

// AddColumn adds a column to a table unless it has it already (decl may
// use the type tokens of Dialect.Expand).
func AddColumn(ctx context.Context, tx *Tx, table, column, decl string) error {
	var n int
	q := `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`
	if tx.Dialect().Numbered {
		q = `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`
	}
	if err := tx.tx.QueryRowContext(ctx, tx.Dialect().Rewrite(q), table, column).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := tx.ExecDirect(ctx, tx.Dialect().Expand("ALTER TABLE "+table+" ADD COLUMN "+column+" "+decl))
	return err
}
