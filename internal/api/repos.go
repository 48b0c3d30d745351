package api

import (
	"net/http"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// repositoryJSON is Harbor's Repository.
type repositoryJSON struct {
	ID            int64     `json:"id"`
	ProjectID     int64     `json:"project_id"`
	Name          string    `json:"name"`
	Description   string    `json:"description"`
	ArtifactCount int64     `json:"artifact_count"`
	PullCount     int64     `json:"pull_count"`
	CreationTime  time.Time `json:"creation_time"`
	UpdateTime    time.Time `json:"update_time"`
}

func toRepository(r artifact.Repository) repositoryJSON {
	return repositoryJSON{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Description: r.Description, ArtifactCount: r.ArtifactCount,
		PullCount: r.PullCount, CreationTime: r.Created.UTC(), UpdateTime: r.Updated.UTC()}
}

// tagJSON is Harbor's Tag.
type tagJSON struct {
	ID           int64     `json:"id"`
	RepositoryID int64     `json:"repository_id"`
	ArtifactID   int64     `json:"artifact_id"`
	Name         string    `json:"name"`
	PushTime     time.Time `json:"push_time"`
	PullTime     time.Time `json:"pull_time"`
	Immutable    bool      `json:"immutable"`
}

func toTag(t artifact.Tag) tagJSON {
	return tagJSON{ID: t.ID, RepositoryID: t.RepositoryID, ArtifactID: t.ArtifactID, Name: t.Name, PushTime: t.PushTime.UTC(), PullTime: t.PullTime.UTC()}
}

type referenceJSON struct {
	ParentID    int64              `json:"parent_id"`
	ChildID     int64              `json:"child_id"`
	ChildDigest string             `json:"child_digest"`
	Platform    *artifact.Platform `json:"platform,omitempty"`
	Annotations map[string]string  `json:"annotations,omitempty"`
	URLs        []string           `json:"urls,omitempty"`
}

// artifactJSON is Harbor's Artifact.
type artifactJSON struct {
	ID                int64             `json:"id"`
	Type              string            `json:"type"`
	MediaType         string            `json:"media_type"`
	ManifestMediaType string            `json:"manifest_media_type"`
	ArtifactType      string            `json:"artifact_type,omitempty"`
	ProjectID         int64             `json:"project_id"`
	RepositoryID      int64             `json:"repository_id"`
	RepositoryName    string            `json:"repository_name"`
	Digest            string            `json:"digest"`
	Size              int64             `json:"size"`
	Icon              string            `json:"icon"`
	PushTime          time.Time         `json:"push_time"`
	PullTime          time.Time         `json:"pull_time"`
	ExtraAttrs        map[string]any    `json:"extra_attrs"`
	Annotations       map[string]string `json:"annotations"`
	References        []referenceJSON   `json:"references"`
	Tags              []tagJSON         `json:"tags"`
	AdditionLinks     map[string]any    `json:"addition_links"`
	Labels            []any             `json:"labels"`
	Accessories       []accessoryJSON   `json:"accessories"`
	// ScanOverview and SBOMOverview are filled when asked for
	// (with_scan_overview, with_sbom_overview).
	ScanOverview map[string]scanapi.ReportSummary `json:"scan_overview,omitempty"`
	SBOMOverview *scanapi.SBOMOverview            `json:"sbom_overview,omitempty"`
}

func toArtifact(a artifact.Artifact) artifactJSON {
	out := artifactJSON{ID: a.ID, Type: a.Type, MediaType: a.MediaType, ManifestMediaType: a.ManifestMediaType, ArtifactType: a.ArtifactType,
		ProjectID: a.ProjectID, RepositoryID: a.RepositoryID, RepositoryName: a.RepositoryName, Digest: a.Digest, Size: a.Size,
		PushTime: a.PushTime.UTC(), PullTime: a.PullTime.UTC(), ExtraAttrs: map[string]any{}, Annotations: a.Annotations,
		References: []referenceJSON{}, Tags: []tagJSON{}, AdditionLinks: map[string]any{}, Labels: []any{}, Accessories: accessories(a.Accessories)}
	for _, r := range a.References {
		out.References = append(out.References, referenceJSON{ParentID: a.ID, ChildID: r.ChildID, ChildDigest: r.ChildDigest, Platform: r.Platform, Annotations: r.Annotations, URLs: r.URLs})
	}
	for _, t := range a.Tags {
		out.Tags = append(out.Tags, toTag(t))
	}
	return out
}

func (s *Server) listAllRepositories(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Artifacts.AllRepositories(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	return c.list(page, total, repositories(list))
}

func repositories(list []artifact.Repository) []repositoryJSON {
	out := make([]repositoryJSON, len(list))
	for i, r := range list {
		out[i] = toRepository(r)
	}
	return out
}

func (c *call) project() project.Ref { return project.Ref{Name: c.r.PathValue("project_name")} }

func (s *Server) listRepositories(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Artifacts.Repositories(c.ctx, c.who, c.project(), q, page)
	if err != nil {
		return err
	}
	return c.list(page, total, repositories(list))
}

func (s *Server) getRepository(c *call) error {
	r, err := s.svc.Artifacts.Repository(c.ctx, c.who, c.project(), c.repoName())
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toRepository(r))
}

func (s *Server) updateRepository(c *call) error {
	var req struct {
		Description string `json:"description"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Artifacts.UpdateRepository(c.ctx, c.who, c.project(), c.repoName(), req.Description); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteRepository(c *call) error {
	if err := s.svc.Artifacts.DeleteRepository(c.ctx, c.who, c.project(), c.repoName()); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) listArtifacts(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	withTag := c.r.URL.Query().Get("with_tag") != "false"
	list, total, err := s.svc.Artifacts.Artifacts(c.ctx, c.who, c.project(), c.repoName(), q, page, withTag, c.includes()...)
	if err != nil {
		return err
	}
	out := make([]artifactJSON, len(list))
	for i, a := range list {
		out[i] = toArtifact(a)
	}
	if err := s.decorate(c, list, out); err != nil {
		return err
	}
	if err := s.overviews(c, list, out); err != nil {
		return err
	}
	return c.list(page, total, out)
}

func (s *Server) getArtifact(c *call) error {
	a, err := s.svc.Artifacts.Artifact(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), c.includes()...)
	if err != nil {
		return err
	}
	out := []artifactJSON{toArtifact(a)}
	if err := s.decorate(c, []artifact.Artifact{a}, out); err != nil {
		return err
	}
	if err := s.overviews(c, []artifact.Artifact{a}, out); err != nil {
		return err
	}
	return c.json(http.StatusOK, out[0])
}

func (s *Server) deleteArtifact(c *call) error {
	if err := s.svc.Artifacts.DeleteArtifact(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference")); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) copyArtifact(c *call) error {
	from := c.r.URL.Query().Get("from")
	if from == "" {
		return errdefs.InvalidArgument(errdefsMsg("the from parameter names the artifact to copy: project/repository@digest or :tag"))
	}
	a, err := s.svc.Artifacts.CopyArtifact(c.ctx, c.who, c.project(), c.repoName(), from)
	if err != nil {
		return err
	}
	return c.created(a.Digest)
}

func (s *Server) listTags(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Artifacts.Tags(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), q, page)
	if err != nil {
		return err
	}
	out := make([]tagJSON, len(list))
	for i, t := range list {
		out[i] = toTag(t)
	}
	if c.r.URL.Query().Get("with_immutable_status") == "true" && s.svc.Immutable != nil {
		if err := s.markImmutable(c, c.r.PathValue("project_name")+"/"+c.repoName(), out); err != nil {
			return err
		}
	}
	return c.list(page, total, out)
}

func (s *Server) createTag(c *call) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Artifacts.CreateTag(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), req.Name); err != nil {
		return err
	}
	return c.created(req.Name)
}

func (s *Server) deleteTag(c *call) error {
	if err := s.svc.Artifacts.DeleteTag(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), c.r.PathValue("tag_name")); err != nil {
		return err
	}
	return c.ok()
}
