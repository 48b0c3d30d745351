package core_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/postgres"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
)

// A database made before webhook policies referenced their project keeps
// the policies of live projects, drops those of deleted ones, and from
// then on a project's deletion takes its policies with it.
func TestWebhookPoliciesGoWithTheirProject(t *testing.T) {
	ctx := context.Background()
	list := core.Migrations()
	before := -1
	for i, m := range list {
		if m.Owner == "webhook" && m.Name == "webhook policies go with their project" {
			before = i
		}
	}
	if before < 0 {
		t.Fatal("no migration for webhook policies' project")
	}
	run := func(t *testing.T, db *sqldb.DB) {
		defer db.Close()
		if err := sqldb.Migrate(ctx, db, list[:before]); err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.SQL().ExecContext(ctx, db.Dialect().Rewrite(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`INSERT INTO projects (id, name, created, updated) VALUES (100, 'live', 0, 0), (101, 'doomed', 0, 0)`)
		policy := `INSERT INTO webhook_policies (project_id, name, description, targets, event_types, creator, enabled, created, updated) VALUES (?, ?, '', '[]', '[]', 'admin', TRUE, 0, 0)`
		exec(policy, 100, "kept")
		exec(policy, 101, "doomed")
		exec(policy, 999, "orphan") // a project deleted before the fix
		if err := sqldb.Migrate(ctx, db, list); err != nil {
			t.Fatal(err)
		}
		exec(policy, 100, "new") // the id sequence still works
		exec(`DELETE FROM projects WHERE id = 101`)
		rows, err := db.SQL().QueryContext(ctx, `SELECT name FROM webhook_policies ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		if len(names) != 2 || names[0] != "kept" || names[1] != "new" {
			t.Errorf("policies after migrating and deleting a project: %v, want [kept new]", names)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		run(t, db)
	})
	if testing.Short() {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		db, err := postgres.Open(ctx, pgtest.Start(t).NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		run(t, db)
	})
}
