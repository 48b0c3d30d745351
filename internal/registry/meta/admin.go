package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// PutTag implements Store.
func (s *SQL) PutTag(ctx context.Context, repo, tag, dgst string) error {
	return s.tx(ctx, "put tag "+tag, func(tx *sqldb.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`+s.d.ForShare, repo, dgst).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("manifest %s in %s", dgst, repo))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tags (repo, tag, digest, updated) VALUES (?, ?, ?, ?) ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`,
			repo, tag, dgst, nanos(s.now())); err != nil {
			return err
		}
		return s.hooks.TagPut(ctx, tx, repo, tag, dgst)
	})
}

// DeleteRepository implements Store.
func (s *SQL) DeleteRepository(ctx context.Context, repo string) error {
	return s.tx(ctx, "delete repository "+repo, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM repositories WHERE name = ?`, repo)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("repository %s", repo))
		}
		for _, q := range []string{`DELETE FROM tags WHERE repo = ?`, `DELETE FROM manifest_refs WHERE repo = ?`, `DELETE FROM manifests WHERE repo = ?`, `DELETE FROM uploads WHERE repo = ?`} {
			if _, err := tx.Exec(ctx, q, repo); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `DELETE FROM repo_blobs WHERE repo = ? RETURNING digest`, repo)
		if err != nil {
			return err
		}
		var digests []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			digests = append(digests, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range digests {
			if err := s.hooks.BlobUnlinked(ctx, tx, repo, d); err != nil {
				return err
			}
		}
		return s.hooks.RepositoryDeleted(ctx, tx, repo)
	})
}

// ForEachLink calls fn, in tx, for every blob link: the repository, the
// digest and the blob's size (to recount quotas).
func (s *SQL) ForEachLink(ctx context.Context, tx *sqldb.Tx, fn func(repo, dgst string, size int64) error) error {
	rows, err := tx.Query(ctx, `SELECT l.repo, l.digest, b.size FROM repo_blobs l JOIN blobs b ON b.digest = l.digest WHERE b.state <> ?`, StateDeleting)
	if err != nil {
		return err
	}
	type link struct {
		repo, dgst string
		size       int64
	}
	var all []link
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.repo, &l.dgst, &l.size); err != nil {
			rows.Close()
			return err
		}
		all = append(all, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range all {
		if err := fn(l.repo, l.dgst, l.size); err != nil {
			return err
		}
	}
	return nil
}

// Forget removes, in tx and without telling the hooks, everything of the
// repositories under prefix/ (a project being deleted): links, sessions,
// tags, manifests and the repositories themselves. Names compare byte by
// byte, so the range prefix/ to prefix0 is exactly the repositories
// under prefix/.
func (s *SQL) Forget(ctx context.Context, tx *sqldb.Tx, prefix string) error {
	lo, hi := prefix+"/", prefix+"0"
	for _, q := range []string{
		`DELETE FROM repo_blobs WHERE repo > ? AND repo < ?`,
		`DELETE FROM uploads WHERE repo > ? AND repo < ?`,
		`DELETE FROM tags WHERE repo > ? AND repo < ?`,
		`DELETE FROM manifest_refs WHERE repo > ? AND repo < ?`,
		`DELETE FROM manifests WHERE repo > ? AND repo < ?`,
		`DELETE FROM repositories WHERE name > ? AND name < ?`,
	} {
		if _, err := tx.Exec(ctx, q, lo, hi); err != nil {
			return err
		}
	}
	return nil
}
