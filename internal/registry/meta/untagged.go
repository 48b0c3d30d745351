package meta

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lading-dev/lading/internal/sqldb"
)

// Manifest references are what keeps an untagged manifest: an index of
// its repository that lists it, or a subject it refers to (a signature,
// an SBOM). Garbage collection with delete_untagged deletes the others.

// Ref names a manifest of a repository.
type Ref struct {
	Repo, Digest string
}

// Untagged lists up to limit manifests after the one named by after (in
// repository, digest order) that were created before before, that no tag
// points at, no index of their repository lists, and whose subject, if
// they have one, is gone from the repository.
func (s *SQL) Untagged(ctx context.Context, before time.Time, after Ref, limit int) ([]Ref, error) {
	rows, err := s.db.Query(ctx, `SELECT m.repo, m.digest FROM manifests m
		WHERE (m.repo > ? OR (m.repo = ? AND m.digest > ?)) AND m.created < ?
		AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
		AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo = m.repo AND r.child = m.digest AND r.manifest <> m.digest)
		AND (m.subject = '' OR NOT EXISTS (SELECT 1 FROM manifests x WHERE x.repo = m.repo AND x.digest = m.subject))
		ORDER BY m.repo, m.digest LIMIT ?`, after.Repo, after.Repo, after.Digest, nanos(before), limit)
	if err != nil {
		return nil, s.wrap("untagged manifests", err)
	}
	defer rows.Close()
	var out []Ref
	for rows.Next() {
		var r Ref
		if err := rows.Scan(&r.Repo, &r.Digest); err != nil {
			return nil, s.wrap("untagged manifests", err)
		}
		out = append(out, r)
	}
	return out, s.wrap("untagged manifests", rows.Err())
}

// DeleteUntagged deletes a manifest as DeleteManifest does, but only if,
// under its row lock, no tag points at it and no index lists it: it
// reports false, deleting nothing, when the manifest is gone or was
// tagged or listed meanwhile.
func (s *SQL) DeleteUntagged(ctx context.Context, repo, dgst string) (bool, error) {
	deleted := false
	err := s.tx(ctx, "delete untagged manifest "+dgst, func(tx *sqldb.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`+s.d.ForUpdate, repo, dgst).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, q := range []string{
			`SELECT 1 FROM tags WHERE repo = ? AND digest = ? LIMIT 1`,
			`SELECT 1 FROM manifest_refs WHERE repo = ? AND child = ? AND manifest <> child LIMIT 1`,
		} {
			err := tx.QueryRow(ctx, q, repo, dgst).Scan(&one)
			if err == nil {
				return nil // kept meanwhile
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, dgst); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM manifest_refs WHERE repo = ? AND manifest = ?`, repo, dgst); err != nil {
			return err
		}
		deleted = true
		return s.hooks.ManifestDeleted(ctx, tx, repo, dgst)
	})
	return deleted, err
}

// untagged is the condition for a manifest m to be one that Untagged
// lists (one placeholder: its before).
const untagged = `m.created < ?
	AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo = m.repo AND r.child = m.digest AND r.manifest <> m.digest)
	AND (m.subject = '' OR NOT EXISTS (SELECT 1 FROM manifests x WHERE x.repo = m.repo AND x.digest = m.subject))`

// collectableUntagged is collectable with the manifests that untagged
// takes counted as gone: neither they nor their references keep a blob
// (placeholders: untagged's before twice, then collectable's three).
const collectableUntagged = `NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest AND NOT (` + untagged + `))
	AND NOT EXISTS (SELECT 1 FROM manifest_refs k JOIN manifests m ON m.repo = k.repo AND m.digest = k.manifest
		WHERE k.child = b.digest AND NOT (` + untagged + `))
	AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest AND l.linked >= ?)
	AND b.updated < ?
	AND (b.claims = 0 OR b.claimed < ?)`

// GCCandidatesUntagged implements Collector.
func (s *SQL) GCCandidatesUntagged(ctx context.Context, before, untaggedBefore time.Time, after string, limit int) ([]Blob, error) {
	args := append([]any{after, StateDeleting, nanos(untaggedBefore), nanos(untaggedBefore)}, s.cutoffs(before)...)
	rows, err := s.db.Query(ctx, `SELECT b.digest, b.size, b.state, b.updated FROM blobs b WHERE b.digest > ? AND (b.state = ? OR (`+
		collectableUntagged+`)) ORDER BY b.digest LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, s.wrap("gc candidates", err)
	}
	defer rows.Close()
	var out []Blob
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, s.wrap("gc candidates", err)
		}
		out = append(out, b)
	}
	return out, s.wrap("gc candidates", rows.Err())
}
