package artifact

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lading-dev/lading/internal/sqldb"
)

// What lading's own jobs (retention, garbage collection of untagged
// artifacts) read of a repository: no permission is checked here, the
// callers act on lading's behalf.

// Candidate is an artifact of a repository as policies see it.
type Candidate struct {
	ID     int64
	Digest string
	Type   string
	Tags   []string
	// Created is when the artifact was pushed; PushTime and PullTime are
	// the latest push and pull of the artifact or of one of its tags (as
	// Harbor's retention counts them).
	Created  time.Time
	PushTime time.Time
	PullTime time.Time
}

// Candidates returns the artifacts of repo ("project/name") that stand on
// their own: not an index's child in the repository, not an accessory
// (an artifact with a subject), with their tags, in id order. An unknown
// repository has none.
func (s *Service) Candidates(ctx context.Context, repo string) ([]Candidate, error) {
	var repoID int64
	err := s.db.QueryRow(ctx, `SELECT id FROM artifact_repos WHERE name = ?`, repo).Scan(&repoID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.db.Wrap("candidates", err)
	}
	rows, err := s.db.Query(ctx, `SELECT id, digest, type, push_time, pull_time, refs, subject FROM artifacts WHERE repository_id = ? ORDER BY id`, repoID)
	if err != nil {
		return nil, s.db.Wrap("candidates", err)
	}
	var all []Candidate
	children := map[string]bool{}
	byID := map[int64]int{}
	for rows.Next() {
		var c Candidate
		var push, pull int64
		var refs, subject string
		if err := rows.Scan(&c.ID, &c.Digest, &c.Type, &push, &pull, &refs, &subject); err != nil {
			rows.Close()
			return nil, s.db.Wrap("candidates", err)
		}
		if refs != "" && refs != "null" && refs != "[]" {
			var rs []Reference
			if json.Unmarshal([]byte(refs), &rs) == nil {
				for _, r := range rs {
					children[r.ChildDigest] = true
				}
			}
		}
		if subject != "" {
			continue
		}
		c.Created, c.PushTime, c.PullTime = sqldb.Time(push), sqldb.Time(push), sqldb.Time(pull)
		byID[c.ID] = len(all)
		all = append(all, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.db.Wrap("candidates", err)
	}
	trows, err := s.db.Query(ctx, `SELECT artifact_id, name, push_time, pull_time FROM artifact_tags WHERE repository_id = ? ORDER BY artifact_id, name`, repoID)
	if err != nil {
		return nil, s.db.Wrap("candidates", err)
	}
	defer trows.Close()
	for trows.Next() {
		var id, push, pull int64
		var name string
		if err := trows.Scan(&id, &name, &push, &pull); err != nil {
			return nil, s.db.Wrap("candidates", err)
		}
		i, ok := byID[id]
		if !ok {
			continue
		}
		c := &all[i]
		c.Tags = append(c.Tags, name)
		if t := sqldb.Time(push); t.After(c.PushTime) {
			c.PushTime = t
		}
		if t := sqldb.Time(pull); t.After(c.PullTime) {
			c.PullTime = t
		}
	}
	if err := trows.Err(); err != nil {
		return nil, s.db.Wrap("candidates", err)
	}
	out := all[:0]
	for _, c := range all {
		if !children[c.Digest] || len(c.Tags) > 0 {
			out = append(out, c)
		}
	}
	return slices.Clip(out), nil
}

// Current returns the artifact dgst of repo as it is now (its tags and
// times, as Candidates has them); ok is false when it is gone.
func (s *Service) Current(ctx context.Context, repo, dgst string) (c Candidate, ok bool, err error) {
	var repoID, push, pull int64
	err = s.db.QueryRow(ctx, `SELECT a.repository_id, a.id, a.type, a.push_time, a.pull_time FROM artifacts a JOIN artifact_repos r ON r.id = a.repository_id WHERE r.name = ? AND a.digest = ?`,
		repo, dgst).Scan(&repoID, &c.ID, &c.Type, &push, &pull)
	if errors.Is(err, sql.ErrNoRows) {
		return Candidate{}, false, nil
	}
	if err != nil {
		return Candidate{}, false, s.db.Wrap("artifact", err)
	}
	c.Digest, c.Created, c.PushTime, c.PullTime = dgst, sqldb.Time(push), sqldb.Time(push), sqldb.Time(pull)
	rows, err := s.db.Query(ctx, `SELECT name, push_time, pull_time FROM artifact_tags WHERE artifact_id = ? ORDER BY name`, c.ID)
	if err != nil {
		return Candidate{}, false, s.db.Wrap("artifact", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name, &push, &pull); err != nil {
			return Candidate{}, false, s.db.Wrap("artifact", err)
		}
		c.Tags = append(c.Tags, name)
		if t := sqldb.Time(push); t.After(c.PushTime) {
			c.PushTime = t
		}
		if t := sqldb.Time(pull); t.After(c.PullTime) {
			c.PullTime = t
		}
	}
	return c, true, s.db.Wrap("artifact", rows.Err())
}

// AccessoryDigests returns the digests of the accessories of the artifact
// dgst of repo (signatures, SBOMs: OCI referrers and cosign's tag-named
// signatures alike), which go with their subject.
func (s *Service) AccessoryDigests(ctx context.Context, repo, dgst string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT a.digest FROM artifact_accessories x JOIN artifacts a ON a.id = x.artifact_id JOIN artifact_repos r ON r.id = x.repository_id
		WHERE r.name = ? AND x.subject_digest = ? ORDER BY a.id`, repo, dgst)
	if err != nil {
		return nil, s.db.Wrap("accessories", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, s.db.Wrap("accessories", err)
		}
		out = append(out, d)
	}
	return out, s.db.Wrap("accessories", rows.Err())
}

// RepositoryNames returns the names ("project/name") of a project's
// repositories, in name order.
func (s *Service) RepositoryNames(ctx context.Context, projectID int64) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT name FROM artifact_repos WHERE project_id = ? ORDER BY name`, projectID)
	if err != nil {
		return nil, s.db.Wrap("repositories", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.db.Wrap("repositories", err)
		}
		out = append(out, n)
	}
	return out, s.db.Wrap("repositories", rows.Err())
}

// TagsOf returns the tags of the artifact dgst of repo.
func (s *Service) TagsOf(ctx context.Context, repo, dgst string) ([]string, error) {
	tags, err := s.tagsWhere(ctx, `SELECT t.name FROM artifact_tags t JOIN artifacts a ON a.id = t.artifact_id JOIN artifact_repos r ON r.id = a.repository_id
		WHERE r.name = ? AND a.digest = ? ORDER BY t.name`, repo, dgst)
	if err != nil {
		return nil, fmt.Errorf("tags of %s@%s: %w", repo, dgst, err)
	}
	return tags, nil
}
