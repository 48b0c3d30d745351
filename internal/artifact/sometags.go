package artifact

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
)

// ArtifactsSomeTags is Artifacts with, for each artifact, its first limit
// tags by name and the number of all its tags: pages that list the
// artifacts of a repository whose artifacts have thousands of tags stay
// fast. include is Artifacts'; authorization is Artifacts'.
func (s *Service) ArtifactsSomeTags(ctx context.Context, who access.Subject, ref project.Ref, repoName string, q query.Query, page query.Page, limit int, include ...Include) ([]Artifact, map[int64]int64, int64, error) {
	arts, total, err := s.Artifacts(ctx, who, ref, repoName, q, page, false, include...)
	if err != nil || len(arts) == 0 {
		return arts, nil, total, err
	}
	idx := map[int64]int{}
	args := make([]any, 0, len(arts)+1)
	for i, a := range arts {
		idx[a.ID] = i
		args = append(args, a.ID)
	}
	counts := map[int64]int64{}
	rows, err := s.db.Query(ctx, `SELECT artifact_id, COUNT(*) FROM artifact_tags WHERE artifact_id IN (`+marks(len(args))+`) GROUP BY artifact_id`, args...)
	if err != nil {
		return nil, nil, 0, s.db.Wrap("tags", err)
	}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, nil, 0, s.db.Wrap("tags", err)
		}
		counts[id] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, 0, s.db.Wrap("tags", err)
	}
	// One indexed range scan per artifact (artifact_tags_artifact), each
	// stopping after limit rows, in one statement: the cost follows the
	// rows shown, not the artifacts' tag counts.
	var sb strings.Builder
	targs := make([]any, 0, 2*len(arts))
	for i, a := range arts {
		if i > 0 {
			sb.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&sb, `SELECT * FROM (SELECT id, repository_id, artifact_id, name, push_time, pull_time FROM artifact_tags WHERE artifact_id = ? ORDER BY name LIMIT ?) t%d`, i)
		targs = append(targs, a.ID, limit)
	}
	rows, err = s.db.Query(ctx, sb.String(), targs...)
	if err != nil {
		return nil, nil, 0, s.db.Wrap("tags", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, nil, 0, s.db.Wrap("tags", err)
		}
		i := idx[t.ArtifactID]
		arts[i].Tags = append(arts[i].Tags, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, s.db.Wrap("tags", err)
	}
	for i := range arts {
		slices.SortFunc(arts[i].Tags, func(a, b Tag) int { return strings.Compare(a.Name, b.Name) })
	}
	return arts, counts, total, nil
}
