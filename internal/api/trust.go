package api

import (
	"net/http"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/contenttrust"
)

// accessoryJSON is Harbor's Accessory.
type accessoryJSON struct {
	ID                    int64     `json:"id"`
	ArtifactID            int64     `json:"artifact_id"`
	SubjectArtifactID     int64     `json:"subject_artifact_id"`
	SubjectArtifactDigest string    `json:"subject_artifact_digest"`
	SubjectArtifactRepo   string    `json:"subject_artifact_repo"`
	Size                  int64     `json:"size"`
	Digest                string    `json:"digest"`
	Type                  string    `json:"type"`
	Icon                  string    `json:"icon"`
	CreationTime          time.Time `json:"creation_time"`
}

func toAccessory(x artifact.Accessory) accessoryJSON {
	return accessoryJSON{ID: x.ID, ArtifactID: x.ArtifactID, SubjectArtifactID: x.SubjectArtifactID, SubjectArtifactDigest: x.SubjectDigest,
		SubjectArtifactRepo: x.SubjectRepo, Size: x.Size, Digest: x.Digest, Type: x.Type, CreationTime: x.Created.UTC()}
}

func accessories(list []artifact.Accessory) []accessoryJSON {
	if list == nil {
		return nil
	}
	out := make([]accessoryJSON, len(list))
	for i, x := range list {
		out[i] = toAccessory(x)
	}
	return out
}

// includes reads with_accessory (Harbor's parameter of artifact lists
// and reads).
func (c *call) includes() []artifact.Include {
	if c.r.URL.Query().Get("with_accessory") == "true" {
		return []artifact.Include{artifact.WithAccessories}
	}
	return nil
}

func (s *Server) listAccessories(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Artifacts.Accessories(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), q, page)
	if err != nil {
		return err
	}
	return c.list(page, total, accessories(list))
}

// artifactSignatures answers GET .../artifacts/{reference}/signatures:
// the artifact's signatures under its project's policy (lading's).
func (s *Server) artifactSignatures(c *call) error {
	st, err := s.svc.Trust.Status(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, st)
}

// The trust policy of a project (lading's): GET, PUT, DELETE
// /projects/{project_name_or_id}/trust-policy.

func (s *Server) getTrustPolicy(c *call) error {
	p, err := s.svc.Trust.Get(c.ctx, c.who, c.projectRef("project_name_or_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, p)
}

func (s *Server) putTrustPolicy(c *call) error {
	var p contenttrust.Policy
	if err := c.decode(&p); err != nil {
		return err
	}
	if err := s.svc.Trust.Put(c.ctx, c.who, c.projectRef("project_name_or_id"), p); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteTrustPolicy(c *call) error {
	if err := s.svc.Trust.Delete(c.ctx, c.who, c.projectRef("project_name_or_id")); err != nil {
		return err
	}
	return c.ok()
}
