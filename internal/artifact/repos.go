package artifact

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Repository is a repository of a project.
type Repository struct {
	ID            int64
	ProjectID     int64
	Name          string // "project/repo"
	Description   string
	ArtifactCount int64
	PullCount     int64
	Created       time.Time
	Updated       time.Time
}

// The distribution spec's repository path components.
var repoRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// CheckRepoName checks a repository's name within its project.
func CheckRepoName(name string) error {
	if len(name) == 0 || len(name) > 255 || !repoRe.MatchString(name) {
		return errdefs.InvalidArgument(fmt.Errorf("repository name %.60q is invalid: lower-case path components of letters and digits separated by '.', '_', '__' or '-'", name))
	}
	return nil
}

const repoCols = `r.id, r.project_id, r.name, r.description, r.pull_count, r.created, r.updated,
	(SELECT COUNT(*) FROM artifacts a WHERE a.repository_id = r.id)`

func scanRepo(row sqldb.Row) (Repository, error) {
	var r Repository
	var created, updated int64
	err := row.Scan(&r.ID, &r.ProjectID, &r.Name, &r.Description, &r.PullCount, &created, &updated, &r.ArtifactCount)
	r.Created, r.Updated = sqldb.Time(created), sqldb.Time(updated)
	return r, err
}

// RepoFields are the keys a repository listing may filter and sort by.
var RepoFields = query.Fields{
	"id":            {Column: "r.id", Kind: query.Int},
	"name":          {Column: "r.name"},
	"project_id":    {Column: "r.project_id", Kind: query.Int},
	"pull_count":    {Column: "r.pull_count", Kind: query.Int},
	"creation_time": {Column: "r.created", Kind: query.Time},
	"update_time":   {Column: "r.updated", Kind: query.Time},
}

// Repositories lists a project's repositories.
func (s *Service) Repositories(ctx context.Context, who access.Subject, ref project.Ref, q query.Query, page query.Page) ([]Repository, int64, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.List, access.Repository)
	if err != nil {
		return nil, 0, err
	}
	return s.listRepos(ctx, "r.project_id = ?", []any{p.ID}, q, page)
}

// AllRepositories lists the repositories of every project the subject may
// see (Harbor's /repositories).
func (s *Service) AllRepositories(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Repository, int64, error) {
	cond, args, err := s.projects.VisibleSQL(ctx, who, "r.project_id")
	if err != nil {
		return nil, 0, err
	}
	return s.listRepos(ctx, cond, args, q, page)
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func (s *Service) listRepos(ctx context.Context, scope string, scopeArgs []any, q query.Query, page query.Page) ([]Repository, int64, error) {
	c, err := q.SQL(s.db.Dialect(), RepoFields, "r.created DESC", "r.id")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL(scope)
	args := append(scopeArgs, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_repos r`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("repositories", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+repoCols+` FROM artifact_repos r`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("repositories", err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("repositories", err)
		}
		out = append(out, r)
	}
	return out, total, s.db.Wrap("repositories", rows.Err())
}

// repo authorizes an action on a project's repository and returns it.
func (s *Service) repo(ctx context.Context, who access.Subject, ref project.Ref, name string, a access.Action, r access.Resource) (access.ProjectInfo, Repository, error) {
	p, err := s.projects.Authorize(ctx, who, ref, a, r)
	if err != nil {
		return p, Repository{}, err
	}
	if err := CheckRepoName(name); err != nil {
		return p, Repository{}, err
	}
	repo, err := scanRepo(s.db.QueryRow(ctx, `SELECT `+repoCols+` FROM artifact_repos r WHERE r.name = ? AND r.project_id = ?`, p.Name+"/"+name, p.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return p, Repository{}, errdefs.NotFound(fmt.Errorf("repository %s/%s not found", p.Name, name))
	}
	return p, repo, s.db.Wrap("repository", err)
}

// Repository returns a repository.
func (s *Service) Repository(ctx context.Context, who access.Subject, ref project.Ref, name string) (Repository, error) {
	_, r, err := s.repo(ctx, who, ref, name, access.Read, access.Repository)
	return r, err
}

// UpdateRepository changes a repository's description. The change is
// audited (update_repository) in its transaction, as lading audits every
// update of the resources it serves; Harbor (2.13 and later) records
// none for it: its audit resolvers match a project's own URL, not its
// repositories'.
func (s *Service) UpdateRepository(ctx context.Context, who access.Subject, ref project.Ref, name, description string) error {
	p, r, err := s.repo(ctx, who, ref, name, access.Update, access.Repository)
	if err != nil {
		return err
	}
	if len(description) > 64<<10 {
		return errdefs.InvalidArgument(errors.New("description longer than 64 KiB"))
	}
	return s.db.Tx(ctx, "update repository", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE artifact_repos SET description = ?, updated = ? WHERE id = ?`, description, sqldb.Nanos(s.db.Now()), r.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "repository", Resource: r.Name,
			Description: "update repository: " + r.Name})
	})
}

// DeleteRepository deletes a repository with its artifacts and tags.
func (s *Service) DeleteRepository(ctx context.Context, who access.Subject, ref project.Ref, name string) error {
	_, r, err := s.repo(ctx, who, ref, name, access.Delete, access.Repository)
	if err != nil {
		return err
	}
	if s.guard != nil {
		tags, err := s.tagsWhere(ctx, `SELECT name FROM artifact_tags WHERE repository_id = ? ORDER BY name`, r.ID)
		if err != nil {
			return err
		}
		if err := s.check(ctx, r.Name, tags); err != nil {
			return err
		}
	}
	roots, err := s.roots(ctx, r.ID)
	if err != nil {
		return err
	}
	if err := s.registry.DeleteRepository(ctx, r.Name); err != nil {
		return err
	}
	for _, a := range roots {
		s.registry.Deleted(ctx, r.Name, a.Digest, a.ManifestMediaType, "", who.Name)
	}
	return nil
}

// roots lists a repository's artifacts that stand on their own: neither
// the accessory of another (a subject or cosign's tag) nor the child of
// an index. Deleting the repository is told as their deletions.
func (s *Service) roots(ctx context.Context, repoID int64) ([]Artifact, error) {
	rows, err := s.db.Query(ctx, `SELECT a.digest, a.manifest_media_type FROM artifacts a
		WHERE a.repository_id = ? AND a.subject = ''
		AND NOT EXISTS (SELECT 1 FROM artifact_accessories x WHERE x.artifact_id = a.id)
		AND NOT EXISTS (SELECT 1 FROM artifacts p WHERE p.repository_id = a.repository_id AND p.refs LIKE '%"' || a.digest || '"%')
		ORDER BY a.id`, repoID)
	if err != nil {
		return nil, s.db.Wrap("repository artifacts", err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		if err := rows.Scan(&a.Digest, &a.ManifestMediaType); err != nil {
			return nil, s.db.Wrap("repository artifacts", err)
		}
		out = append(out, a)
	}
	return out, s.db.Wrap("repository artifacts", rows.Err())
}

// RepositoryCounts implements project.Contents.
func (s *Service) RepositoryCounts(ctx context.Context, projects []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(projects) == 0 {
		return out, nil
	}
	args := make([]any, len(projects))
	for i, p := range projects {
		args[i] = p
	}
	rows, err := s.db.Query(ctx, `SELECT project_id, COUNT(*) FROM artifact_repos WHERE project_id IN (`+marks(len(args))+`) GROUP BY project_id`, args...)
	if err != nil {
		return nil, s.db.Wrap("repository counts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, n int64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, s.db.Wrap("repository counts", rows.Err())
}

// Forget implements project.Contents.
func (s *Service) Forget(ctx context.Context, tx *sqldb.Tx, name string) error {
	if s.registry == nil {
		return nil
	}
	return s.registry.Forget(ctx, tx, name)
}
