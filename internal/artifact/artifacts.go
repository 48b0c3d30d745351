package artifact

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Artifact is a manifest or an index of a repository.
type Artifact struct {
	ID                int64
	ProjectID         int64
	RepositoryID      int64
	RepositoryName    string
	Digest            string
	Type              string
	MediaType         string
	ManifestMediaType string
	ArtifactType      string
	Size              int64
	PushTime          time.Time
	PullTime          time.Time
	Annotations       map[string]string
	References        []Reference
	Tags              []Tag
	// Accessories are filled when asked for (WithAccessories).
	Accessories []Accessory
}

// Include asks a listing for more than the artifacts' own fields.
type Include int

// What a listing may include.
const (
	// WithAccessories fills each artifact's accessories.
	WithAccessories Include = iota + 1
)

// notAccessory leaves accessories out of listings, as Harbor does: they
// are shown with their subject.
const notAccessory = "NOT EXISTS (SELECT 1 FROM artifact_accessories x WHERE x.artifact_id = a.id)"

// Tag is a tag of an artifact.
type Tag struct {
	ID           int64
	RepositoryID int64
	ArtifactID   int64
	Name         string
	PushTime     time.Time
	PullTime     time.Time
}

// ArtifactFields are the keys an artifact listing may filter and sort by.
var ArtifactFields = query.Fields{
	"id":                  {Column: "a.id", Kind: query.Int},
	"digest":              {Column: "a.digest"},
	"type":                {Column: "a.type"},
	"media_type":          {Column: "a.media_type"},
	"manifest_media_type": {Column: "a.manifest_media_type"},
	"artifact_type":       {Column: "a.artifact_type"},
	"size":                {Column: "a.size", Kind: query.Int},
	"push_time":           {Column: "a.push_time", Kind: query.Time},
	"pull_time":           {Column: "a.pull_time", Kind: query.Time},
	// Uncorrelated, so the tags are searched once, not once per artifact.
	"tags": {Column: "t.name", Match: "a.id IN (SELECT t.artifact_id FROM artifact_tags t WHERE %s)"},
}

// TagFields are the keys a tag listing may filter and sort by.
var TagFields = query.Fields{
	"id":        {Column: "t.id", Kind: query.Int},
	"name":      {Column: "t.name"},
	"push_time": {Column: "t.push_time", Kind: query.Time},
	"pull_time": {Column: "t.pull_time", Kind: query.Time},
}

const artifactCols = `a.id, a.repository_id, a.digest, a.type, a.media_type, a.manifest_media_type, a.artifact_type, a.size, a.push_time, a.pull_time, a.annotations, a.refs`

func scanArtifact(row sqldb.Row, repo Repository) (Artifact, error) {
	var a Artifact
	var push, pull int64
	var ann, refs string
	if err := row.Scan(&a.ID, &a.RepositoryID, &a.Digest, &a.Type, &a.MediaType, &a.ManifestMediaType, &a.ArtifactType, &a.Size, &push, &pull, &ann, &refs); err != nil {
		return a, err
	}
	a.ProjectID, a.RepositoryName = repo.ProjectID, repo.Name
	a.PushTime, a.PullTime = sqldb.Time(push), sqldb.Time(pull)
	if ann != "" && ann != "null" {
		json.Unmarshal([]byte(ann), &a.Annotations)
	}
	if refs != "" && refs != "null" {
		json.Unmarshal([]byte(refs), &a.References)
	}
	return a, nil
}

// tagsFilter turns Harbor's special tag queries, tags=nil (untagged) and
// tags=* (tagged), into conditions, and removes them from q.
func tagsFilter(q query.Query) (query.Query, []string) {
	var extra []string
	var conds []query.Cond
	for _, c := range q.Conds {
		if c.Key == "tags" && c.Op == query.Exact && len(c.Values) == 1 {
			switch fmt.Sprint(c.Values[0]) {
			case "nil":
				extra = append(extra, "NOT EXISTS (SELECT 1 FROM artifact_tags t WHERE t.artifact_id = a.id)")
				continue
			case "*":
				extra = append(extra, "EXISTS (SELECT 1 FROM artifact_tags t WHERE t.artifact_id = a.id)")
				continue
			}
		}
		conds = append(conds, c)
	}
	q.Conds = conds
	return q, extra
}

// Artifacts lists a repository's artifacts, newest first, with their tags
// when withTags (and their accessories when asked); accessories are not
// listed among the artifacts.
func (s *Service) Artifacts(ctx context.Context, who access.Subject, ref project.Ref, repoName string, q query.Query, page query.Page, withTags bool, include ...Include) ([]Artifact, int64, error) {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.List, access.Artifact)
	if err != nil {
		return nil, 0, err
	}
	q, extra := tagsFilter(q)
	c, err := q.SQL(s.db.Dialect(), s.fields, "a.push_time DESC", "a.id DESC")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL(append([]string{"a.repository_id = ?", notAccessory}, extra...)...)
	args := append([]any{repo.ID}, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifacts a`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("artifacts", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+artifactCols+` FROM artifacts a`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("artifacts", err)
	}
	out := []Artifact{}
	for rows.Next() {
		a, err := scanArtifact(rows, repo)
		if err != nil {
			rows.Close()
			return nil, 0, s.db.Wrap("artifacts", err)
		}
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, s.db.Wrap("artifacts", err)
	}
	if withTags {
		if err := s.fillTags(ctx, out); err != nil {
			return nil, 0, err
		}
	}
	if err := s.fillChildIDs(ctx, repo.ID, out); err != nil {
		return nil, 0, err
	}
	if slices.Contains(include, WithAccessories) {
		if err := s.fillAccessories(ctx, repo.ID, out); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// fillTags loads the tags of a page of artifacts in one query.
func (s *Service) fillTags(ctx context.Context, arts []Artifact) error {
	if len(arts) == 0 {
		return nil
	}
	idx := map[int64]int{}
	args := make([]any, len(arts))
	for i, a := range arts {
		idx[a.ID] = i
		args[i] = a.ID
	}
	rows, err := s.db.Query(ctx, `SELECT id, repository_id, artifact_id, name, push_time, pull_time FROM artifact_tags WHERE artifact_id IN (`+marks(len(args))+`) ORDER BY artifact_id, name`, args...)
	if err != nil {
		return s.db.Wrap("tags", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return s.db.Wrap("tags", err)
		}
		i := idx[t.ArtifactID]
		arts[i].Tags = append(arts[i].Tags, t)
	}
	return s.db.Wrap("tags", rows.Err())
}

// fillChildIDs sets the ids of indexes' children.
func (s *Service) fillChildIDs(ctx context.Context, repoID int64, arts []Artifact) error {
	for i := range arts {
		for j := range arts[i].References {
			r := &arts[i].References[j]
			err := s.db.QueryRow(ctx, `SELECT id FROM artifacts WHERE repository_id = ? AND digest = ?`, repoID, r.ChildDigest).Scan(&r.ChildID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return s.db.Wrap("references", err)
			}
		}
	}
	return nil
}

func scanTag(row sqldb.Row) (Tag, error) {
	var t Tag
	var push, pull int64
	err := row.Scan(&t.ID, &t.RepositoryID, &t.ArtifactID, &t.Name, &push, &pull)
	t.PushTime, t.PullTime = sqldb.Time(push), sqldb.Time(pull)
	return t, err
}

var digestRe = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

var tagRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// lookup finds an artifact of repo by digest or tag.
func (s *Service) lookup(ctx context.Context, repo Repository, ref string) (Artifact, error) {
	var row sqldb.Row
	switch {
	case strings.Contains(ref, ":"):
		if !digestRe.MatchString(ref) {
			return Artifact{}, errdefs.InvalidArgument(fmt.Errorf("reference %.80q is not a digest or a tag", ref))
		}
		row = s.db.QueryRow(ctx, `SELECT `+artifactCols+` FROM artifacts a WHERE a.repository_id = ? AND a.digest = ?`, repo.ID, ref)
	case tagRe.MatchString(ref):
		row = s.db.QueryRow(ctx, `SELECT `+artifactCols+` FROM artifacts a JOIN artifact_tags t ON t.artifact_id = a.id WHERE t.repository_id = ? AND t.name = ?`, repo.ID, ref)
	default:
		return Artifact{}, errdefs.InvalidArgument(fmt.Errorf("reference %.80q is not a digest or a tag", ref))
	}
	a, err := scanArtifact(row, repo)
	if errors.Is(err, sql.ErrNoRows) {
		return Artifact{}, errdefs.NotFound(fmt.Errorf("artifact %s:%s not found", repo.Name, ref))
	}
	return a, s.db.Wrap("artifact", err)
}

// Artifact returns one artifact, with its tags (and its accessories when
// asked).
func (s *Service) Artifact(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference string, include ...Include) (Artifact, error) {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.Read, access.Artifact)
	if err != nil {
		return Artifact{}, err
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return Artifact{}, err
	}
	list := []Artifact{a}
	if err := s.fillTags(ctx, list); err != nil {
		return Artifact{}, err
	}
	if err := s.fillChildIDs(ctx, repo.ID, list); err != nil {
		return Artifact{}, err
	}
	if slices.Contains(include, WithAccessories) {
		if err := s.fillAccessories(ctx, repo.ID, list); err != nil {
			return Artifact{}, err
		}
	}
	return list[0], nil
}

// DeleteArtifact deletes an artifact with its tags and its accessories
// (signatures, SBOMs, other referrers, and theirs) and, for an index, the
// children no other artifact references and no tag names, with theirs. An
// artifact referenced by an index cannot go (412).
func (s *Service) DeleteArtifact(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference string) error {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.Delete, access.Artifact)
	if err != nil {
		return err
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return err
	}
	if err := s.checkArtifact(ctx, repo, a.ID); err != nil {
		return err
	}
	var parent string
	err = s.db.QueryRow(ctx, `SELECT p.digest FROM artifacts p WHERE p.repository_id = ? AND p.refs LIKE ? LIMIT 1`, repo.ID, "%\""+a.Digest+"\"%").Scan(&parent)
	if err == nil {
		return errdefs.FailedPrecondition(fmt.Errorf("the artifact is referenced by other artifacts: index %s lists it", parent))
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return s.db.Wrap("delete artifact", err)
	}
	if err := s.deleteAccessories(ctx, repo, a.Digest); err != nil {
		return err
	}
	if err := s.registry.DeleteManifest(ctx, repo.Name, a.Digest); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			// %v: the class is FailedPrecondition (412), not Conflict.
			return errdefs.FailedPrecondition(fmt.Errorf("the artifact is referenced by other artifacts: %v", err))
		}
		return err
	}
	for _, c := range a.References {
		var tagged int
		if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_tags t JOIN artifacts x ON x.id = t.artifact_id WHERE x.repository_id = ? AND x.digest = ?`, repo.ID, c.ChildDigest).Scan(&tagged); err != nil {
			return s.db.Wrap("delete artifact", err)
		}
		if tagged > 0 {
			continue
		}
		if err := s.deleteAccessories(ctx, repo, c.ChildDigest); err != nil {
			return err
		}
		err := s.registry.DeleteManifest(ctx, repo.Name, c.ChildDigest)
		if err != nil && !errors.Is(err, errdefs.ErrConflict) && !errdefs.IsNotFound(err) {
			return err
		}
	}
	s.registry.Deleted(ctx, repo.Name, a.Digest, a.ManifestMediaType, "", who.Name)
	return nil
}

// CopyArtifact copies an artifact named "project/repo@digest" or
// "project/repo:tag" into a repository, with its accessories (its
// signatures keep verifying there); the subject must be allowed to read
// it there and to create artifacts here.
func (s *Service) CopyArtifact(ctx context.Context, who access.Subject, ref project.Ref, repoName, from string) (Artifact, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.Create, access.Artifact)
	if err != nil {
		return Artifact{}, err
	}
	if err := CheckRepoName(repoName); err != nil {
		return Artifact{}, err
	}
	srcRepo, srcRef, err := parseFrom(from)
	if err != nil {
		return Artifact{}, err
	}
	srcProject, srcName, _ := strings.Cut(srcRepo, "/")
	_, src, err := s.repo(ctx, who, project.Ref{Name: srcProject}, srcName, access.Read, access.Artifact)
	if err != nil {
		return Artifact{}, err
	}
	found, err := s.lookup(ctx, src, srcRef)
	if err != nil {
		return Artifact{}, err
	}
	dst := p.Name + "/" + repoName
	if !strings.Contains(srcRef, ":") {
		// The copy tags dst: an immutable tag there may not move.
		var cur string
		err := s.db.QueryRow(ctx, `SELECT a.digest FROM artifact_tags t JOIN artifact_repos r ON r.id = t.repository_id JOIN artifacts a ON a.id = t.artifact_id WHERE r.name = ? AND t.name = ?`, dst, srcRef).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Artifact{}, s.db.Wrap("copy", err)
		}
		if err == nil && cur != found.Digest {
			if err := s.check(ctx, dst, []string{srcRef}); err != nil {
				return Artifact{}, err
			}
		}
	}
	dgst, err := s.registry.Copy(ctx, src.Name, srcRef, dst)
	if err != nil {
		return Artifact{}, err
	}
	if err := s.copyAccessories(ctx, src, dgst, dst); err != nil {
		return Artifact{}, err
	}
	return s.Artifact(ctx, who, project.Ref{ID: p.ID}, repoName, dgst)
}

// checkArtifact asks the guard whether the tags of an artifact may go.
func (s *Service) checkArtifact(ctx context.Context, repo Repository, id int64) error {
	if s.guard == nil {
		return nil
	}
	tags, err := s.tagsWhere(ctx, `SELECT name FROM artifact_tags WHERE artifact_id = ? ORDER BY name`, id)
	if err != nil {
		return err
	}
	return s.check(ctx, repo.Name, tags)
}

func (s *Service) tagsWhere(ctx context.Context, stmt string, args ...any) ([]string, error) {
	rows, err := s.db.Query(ctx, stmt, args...)
	if err != nil {
		return nil, s.db.Wrap("tags", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, s.db.Wrap("tags", err)
		}
		out = append(out, t)
	}
	return out, s.db.Wrap("tags", rows.Err())
}

// parseFrom reads "project/repo@digest" or "project/repo:tag".
func parseFrom(from string) (repo, ref string, err error) {
	if i := strings.LastIndexByte(from, '@'); i > 0 {
		repo, ref = from[:i], from[i+1:]
	} else if i := strings.LastIndexByte(from, ':'); i > strings.LastIndexByte(from, '/') && i > 0 {
		repo, ref = from[:i], from[i+1:]
	}
	p, name, ok := strings.Cut(repo, "/")
	if repo == "" || ref == "" || !ok || project.CheckName(p) != nil || CheckRepoName(name) != nil {
		return "", "", errdefs.InvalidArgument(fmt.Errorf("from %.100q: want project/repository@digest or project/repository:tag", from))
	}
	return repo, ref, nil
}

// Tags lists the tags of an artifact.
func (s *Service) Tags(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference string, q query.Query, page query.Page) ([]Tag, int64, error) {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.List, access.Tag)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), TagFields, "t.name ASC", "t.id")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL("t.artifact_id = ?")
	args := append([]any{a.ID}, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_tags t`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("tags", err)
	}
	rows, err := s.db.Query(ctx, `SELECT t.id, t.repository_id, t.artifact_id, t.name, t.push_time, t.pull_time FROM artifact_tags t`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("tags", err)
	}
	defer rows.Close()
	out := []Tag{}
	for rows.Next() {
		t, err := scanTag(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("tags", err)
		}
		out = append(out, t)
	}
	return out, total, s.db.Wrap("tags", rows.Err())
}

// CreateTag tags an artifact; a tag already in the repository is a
// conflict.
func (s *Service) CreateTag(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference, tag string) error {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.Create, access.Tag)
	if err != nil {
		return err
	}
	if !tagRe.MatchString(tag) {
		return errdefs.InvalidArgument(fmt.Errorf("tag %.80q is invalid: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", tag))
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_tags WHERE repository_id = ? AND name = ?`, repo.ID, tag).Scan(&n); err != nil {
		return s.db.Wrap("tag", err)
	}
	if n > 0 {
		return errdefs.Conflict(fmt.Errorf("tag %s already exists in %s", tag, repo.Name))
	}
	return s.registry.PutTag(ctx, repo.Name, tag, a.Digest)
}

// DeleteTag deletes a tag of an artifact.
func (s *Service) DeleteTag(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference, tag string) error {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.Delete, access.Tag)
	if err != nil {
		return err
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM artifact_tags WHERE artifact_id = ? AND name = ?`, a.ID, tag).Scan(&n); err != nil {
		return s.db.Wrap("tag", err)
	}
	if n == 0 {
		return errdefs.NotFound(fmt.Errorf("tag %s of %s@%s not found", tag, repo.Name, a.Digest))
	}
	if err := s.check(ctx, repo.Name, []string{tag}); err != nil {
		return err
	}
	if err := s.registry.DeleteTag(ctx, repo.Name, tag); err != nil {
		return err
	}
	s.registry.Deleted(ctx, repo.Name, a.Digest, a.ManifestMediaType, tag, who.Name)
	return nil
}
