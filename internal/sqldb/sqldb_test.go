package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
)

var base = []sqldb.Migration{
	{Owner: "test", Name: "things", SQL: []string{
		`CREATE TABLE things (id {{id}}, name {{text}} NOT NULL UNIQUE, data {{bytes}}, flag {{bool}} NOT NULL DEFAULT FALSE)`,
	}},
	{Owner: "test", Name: "things by flag", SQL: []string{`CREATE INDEX things_flag ON things (flag)`}},
}

func TestMigrateAndTx(t *testing.T) {
	sqldbtest.Each(t, base, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		// Idempotent.
		if err := sqldb.Migrate(ctx, db, base); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		got, err := sqldb.Applied(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"test: things", "test: things by flag"}, got); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		// An appended migration is applied; a changed or shorter list
		// is refused.
		more := append(append([]sqldb.Migration{}, base...), sqldb.Migration{Owner: "test", Name: "more", SQL: []string{`ALTER TABLE things ADD COLUMN size {{int}} NOT NULL DEFAULT 0`}})
		if err := sqldb.Migrate(ctx, db, more); err != nil {
			t.Fatal(err)
		}
		if err := sqldb.Migrate(ctx, db, base); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("older list: %v, want ErrFailedPrecondition", err)
		}
		renamed := append([]sqldb.Migration{}, more...)
		renamed[1].Name = "renamed"
		if err := sqldb.Migrate(ctx, db, renamed); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("reordered list: %v, want ErrFailedPrecondition", err)
		}

		// A committed transaction runs its after-commit work; a
		// failed one neither writes nor runs it.
		ran := 0
		err = db.Tx(ctx, "insert", func(tx *sqldb.Tx) error {
			tx.AfterCommit(func() { ran++ })
			_, err := tx.Exec(ctx, `INSERT INTO things (name, data, flag) VALUES (?, ?, ?)`, "a", []byte{1, 2}, true)
			return err
		})
		if err != nil || ran != 1 {
			t.Fatalf("tx: %v, after-commit ran %d times", err, ran)
		}
		boom := errdefs.Conflict(errors.New("boom"))
		err = db.Tx(ctx, "fail", func(tx *sqldb.Tx) error {
			tx.AfterCommit(func() { ran++ })
			if _, err := tx.Exec(ctx, `INSERT INTO things (name) VALUES (?)`, "b"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || ran != 1 {
			t.Fatalf("failed tx: %v, after-commit ran %d times", err, ran)
		}
		var n int
		var flag bool
		var data []byte
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM things WHERE name = ?`, "b").Scan(&n); err != nil || n != 0 {
			t.Errorf("rolled back row: %d, %v", n, err)
		}
		if err := db.QueryRow(ctx, `SELECT flag, data FROM things WHERE name = ? AND flag = ?`, "a", true).Scan(&flag, &data); err != nil || !flag || len(data) != 2 {
			t.Errorf("row a: %v %v %v", flag, data, err)
		}
		// A unique violation is reported as such.
		_, err = db.Exec(ctx, `INSERT INTO things (name) VALUES (?)`, "a")
		if !sqldb.IsUniqueViolation(err) {
			t.Errorf("duplicate insert: %v", err)
		}
	})
}

func TestRewrite(t *testing.T) {
	d := sqldb.Dialect{Numbered: true}
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"a = '?' AND b = ?", "a = '?' AND b = $1"},
	} {
		if got := d.Rewrite(tc.in); got != tc.want {
			t.Errorf("Rewrite(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCloseWaitsForBackgroundPrepares: a transaction's first use of a
// query prepares it in the background; once Close returns, nothing of the
// database opens a connection again (with SQLite, that would make its
// files again in a directory the caller is removing).
func TestCloseWaitsForBackgroundPrepares(t *testing.T) {
	ctx := context.Background()
	for i := range 20 {
		dir := filepath.Join(t.TempDir(), "db")
		os.Mkdir(dir, 0o755)
		db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sqldb.Migrate(ctx, db, base); err != nil {
			t.Fatal(err)
		}
		err = db.Tx(ctx, "insert", func(tx *sqldb.Tx) error {
			for j := range 20 { // twenty queries never seen: twenty background prepares
				if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO things (name, flag) VALUES (?, %s)`, []string{"FALSE", "TRUE"}[j%2])+strings.Repeat(" ", j), fmt.Sprint(i, "-", j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// The last connection closed takes SQLite's -wal and -shm with it.
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("round %d: after Close the directory holds %v: a connection is still open", i, entries)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("removing the closed database's directory: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := os.Stat(dir); err == nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("round %d: the closed database made %v again", i, entries)
		}
	}
}

func TestListPage(t *testing.T) {
	sqldbtest.Each(t, base, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for i := range 5 {
			if _, err := db.Exec(ctx, `INSERT INTO things (name, flag) VALUES (?, ?)`, fmt.Sprint("n", i), i%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
		scan := func(r sqldb.Row) (string, error) { var n string; return n, r.Scan(&n) }
		got, total, err := sqldb.ListPage(ctx, db, "things", "name", " WHERE flag = ?", []any{true}, "name DESC LIMIT 2 OFFSET 1", scan)
		if err != nil || total != 3 || !slices.Equal(got, []string{"n2", "n0"}) {
			t.Errorf("ListPage = %v, %d, %v; want [n2 n0], 3", got, total, err)
		}
		if _, _, err := sqldb.ListPage(ctx, db, "nothings", "name", "", nil, "name", scan); err == nil || !strings.Contains(err.Error(), "nothings") {
			t.Errorf("ListPage of a missing table: %v", err)
		}
	})
}
