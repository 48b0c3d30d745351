package artifact

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lading-dev/lading/internal/errdefs"

	"github.com/lading-dev/lading/internal/sqldb"
)

// What lading's own jobs read of the view (a scan of every artifact, the
// events of a re-evaluated report): no permission is checked here, the
// callers act on lading's behalf.

const walkCols = artifactCols + `, r.project_id, r.name`

func (s *Service) walk(ctx context.Context, query string, args ...any) ([]Artifact, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, s.db.Wrap("artifacts", err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		a, err := scanWalked(rows)
		if err != nil {
			return nil, s.db.Wrap("artifacts", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.db.Wrap("artifacts", err)
	}
	if err := s.fillTags(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func scanWalked(row sqldb.Row) (Artifact, error) {
	var a Artifact
	var push, pull int64
	var ann, refs string
	if err := row.Scan(&a.ID, &a.RepositoryID, &a.Digest, &a.Type, &a.MediaType, &a.ManifestMediaType, &a.ArtifactType, &a.Size, &push, &pull, &ann, &refs,
		&a.ProjectID, &a.RepositoryName); err != nil {
		return a, err
	}
	a.PushTime, a.PullTime = sqldb.Time(push), sqldb.Time(pull)
	if ann != "" && ann != "null" {
		json.Unmarshal([]byte(ann), &a.Annotations)
	}
	if refs != "" && refs != "null" {
		json.Unmarshal([]byte(refs), &a.References)
	}
	return a, nil
}

// Page returns up to limit artifacts whose id is above after, in id
// order, across every repository, with their tags.
func (s *Service) Page(ctx context.Context, after int64, limit int) ([]Artifact, error) {
	return s.walk(ctx, `SELECT `+walkCols+` FROM artifacts a JOIN artifact_repos r ON r.id = a.repository_id
		WHERE a.id > ? ORDER BY a.id LIMIT ?`, after, limit)
}

// ByDigest returns the artifacts with the manifest digest dgst, in every
// repository, with their tags.
func (s *Service) ByDigest(ctx context.Context, dgst string) ([]Artifact, error) {
	return s.walk(ctx, `SELECT `+walkCols+` FROM artifacts a JOIN artifact_repos r ON r.id = a.repository_id
		WHERE a.digest = ? ORDER BY a.id`, dgst)
}

// InRepository returns the artifact dgst of repo ("project/name"), with
// its tags and its children's ids; errdefs.ErrNotFound when repo has none.
func (s *Service) InRepository(ctx context.Context, repo, dgst string) (Artifact, error) {
	list, err := s.walk(ctx, `SELECT `+walkCols+` FROM artifacts a JOIN artifact_repos r ON r.id = a.repository_id
		WHERE r.name = ? AND a.digest = ?`, repo, dgst)
	if err != nil {
		return Artifact{}, err
	}
	if len(list) == 0 {
		return Artifact{}, errdefs.NotFound(fmt.Errorf("artifact %s@%s not found", repo, dgst))
	}
	if err := s.fillChildIDs(ctx, list[0].RepositoryID, list); err != nil {
		return Artifact{}, err
	}
	return list[0], nil
}
