package artifact

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Pushed describes a manifest put into a repository.
type Pushed struct {
	Repo      string
	Digest    string
	MediaType string
	Size      int64
	// Content is the manifest's bytes (the view reads the config's media
	// type, the sizes it references, an index's platforms).
	Content []byte
	Tags    []string
}

// Reference is an index's child.
type Reference struct {
	ChildDigest string            `json:"child_digest"`
	ChildID     int64             `json:"-"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	URLs        []string          `json:"urls,omitempty"`
}

// Platform is the platform of an index entry.
type Platform struct {
	Architecture string   `json:"architecture,omitempty"`
	OS           string   `json:"os,omitempty"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// manifest is what the view reads of a manifest or an index.
type manifest struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
		Size      int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType   string            `json:"mediaType"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"layers"`
	Manifests []struct {
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Platform    *Platform         `json:"platform"`
		Annotations map[string]string `json:"annotations"`
		URLs        []string          `json:"urls"`
	} `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
	Subject     *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

// artifactType names an artifact's type as Harbor does, from its config's
// media type (or its own, for an index).
func artifactType(manifestType, configType string, index bool) string {
	switch {
	case index:
		return "IMAGE"
	case configType == "application/vnd.oci.image.config.v1+json", configType == "application/vnd.docker.container.image.v1+json":
		return "IMAGE"
	case strings.HasPrefix(configType, "application/vnd.cncf.helm.config"):
		return "CHART"
	case strings.HasPrefix(configType, "application/vnd.cnab"):
		return "CNAB"
	case strings.HasPrefix(configType, "application/vnd.wasm"):
		return "WASM"
	}
	return "UNKNOWN"
}

// repoID returns the view's id of repo, creating the row when create is
// set; ok is false for a repository outside any project.
func (s *Service) repoID(ctx context.Context, tx *sqldb.Tx, repo string, create bool) (int64, bool, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM artifact_repos WHERE name = ?`, repo).Scan(&id)
	if err == nil || !errors.Is(err, sql.ErrNoRows) || !create {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		return id, err == nil, err
	}
	pid, ok, err := project.ProjectOf(ctx, tx, repo)
	if err != nil || !ok {
		return 0, false, err
	}
	now := sqldb.Nanos(s.db.Now())
	err = tx.QueryRow(ctx, `INSERT INTO artifact_repos (name, project_id, created, updated) VALUES (?, ?, ?, ?) RETURNING id`, repo, pid, now, now).Scan(&id)
	return id, err == nil, err
}

// ManifestPut records a pushed manifest and its tags, in the registry's
// transaction.
func (s *Service) ManifestPut(ctx context.Context, tx *sqldb.Tx, p Pushed) error {
	repoID, ok, err := s.repoID(ctx, tx, p.Repo, true)
	if err != nil || !ok {
		return err
	}
	var m manifest
	if err := json.Unmarshal(p.Content, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", p.Digest, err)
	}
	index := len(m.Manifests) > 0 || strings.Contains(p.MediaType, "index") || strings.Contains(p.MediaType, "manifest.list")
	size := p.Size
	configType := p.MediaType
	var refs []Reference
	if m.Config != nil {
		configType = m.Config.MediaType
		size += m.Config.Size
	}
	for _, l := range m.Layers {
		size += l.Size
	}
	for _, c := range m.Manifests {
		childSize := c.Size
		var childID int64
		if err := tx.QueryRow(ctx, `SELECT id, size FROM artifacts WHERE repository_id = ? AND digest = ?`, repoID, c.Digest).Scan(&childID, &childSize); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		size += childSize
		refs = append(refs, Reference{ChildDigest: c.Digest, Platform: c.Platform, Annotations: c.Annotations, URLs: c.URLs})
	}
	at := m.ArtifactType
	if at == "" && m.Config != nil && m.Config.MediaType != "application/vnd.oci.image.config.v1+json" && m.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
		at = m.Config.MediaType
	}
	subject := ""
	if m.Subject != nil {
		subject = m.Subject.Digest
	}
	ann, _ := json.Marshal(m.Annotations)
	refsJSON, _ := json.Marshal(refs)
	now := sqldb.Nanos(s.db.Now())
	var artID int64
	err = tx.QueryRow(ctx, `INSERT INTO artifacts (repository_id, digest, type, media_type, manifest_media_type, artifact_type, size, push_time, annotations, refs, subject)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository_id, digest) DO UPDATE SET push_time = excluded.push_time RETURNING id`,
		repoID, p.Digest, artifactType(p.MediaType, configType, index), configType, p.MediaType, at, size, now, string(ann), string(refsJSON), subject).Scan(&artID)
	if err != nil {
		return err
	}
	for _, t := range p.Tags {
		if _, err := tx.Exec(ctx, `INSERT INTO artifact_tags (repository_id, artifact_id, name, push_time) VALUES (?, ?, ?, ?)
			ON CONFLICT (repository_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, push_time = excluded.push_time`, repoID, artID, t, now); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE artifact_repos SET updated = ? WHERE id = ?`, now, repoID); err != nil {
		return err
	}
	if subject != "" {
		if err := s.recordAccessory(ctx, tx, p.Repo, repoID, artID, p.Digest, subject, accessoryType(&m)); err != nil {
			return err
		}
	}
	for _, t := range p.Tags {
		if sub := LegacySubject(t); sub != "" && sub != p.Digest {
			if err := s.recordAccessory(ctx, tx, p.Repo, repoID, artID, p.Digest, sub, AccessoryCosign); err != nil {
				return err
			}
		}
	}
	pid, _, _ := project.ProjectOf(ctx, tx, p.Repo)
	resource := p.Repo + "@" + p.Digest
	if len(p.Tags) > 0 {
		resource = p.Repo + ":" + strings.Join(p.Tags, ",")
	}
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "create", ResourceType: "artifact", Resource: resource,
		Description: "create artifact " + p.Repo + "@" + p.Digest})
}

// ManifestDeleted removes a deleted manifest and its tags from the view,
// in the registry's transaction.
func (s *Service) ManifestDeleted(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error {
	repoID, ok, err := s.repoID(ctx, tx, repo, false)
	if err != nil || !ok {
		return err
	}
	res, err := tx.Exec(ctx, `DELETE FROM artifacts WHERE repository_id = ? AND digest = ?`, repoID, dgst)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	pid, _, _ := project.ProjectOf(ctx, tx, repo)
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "delete", ResourceType: "artifact", Resource: repo + "@" + dgst})
}

// TagPut points a tag at an artifact, in the registry's transaction.
func (s *Service) TagPut(ctx context.Context, tx *sqldb.Tx, repo, tag, dgst string) error {
	repoID, ok, err := s.repoID(ctx, tx, repo, false)
	if err != nil || !ok {
		return err
	}
	now := sqldb.Nanos(s.db.Now())
	res, err := tx.Exec(ctx, `INSERT INTO artifact_tags (repository_id, artifact_id, name, push_time)
		SELECT ?, id, ?, ? FROM artifacts WHERE repository_id = ? AND digest = ?
		ON CONFLICT (repository_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, push_time = excluded.push_time`, repoID, tag, now, repoID, dgst)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if sub := LegacySubject(tag); sub != "" && sub != dgst {
		var artID int64
		if err := tx.QueryRow(ctx, `SELECT id FROM artifacts WHERE repository_id = ? AND digest = ?`, repoID, dgst).Scan(&artID); err != nil {
			return err
		}
		if err := s.recordAccessory(ctx, tx, repo, repoID, artID, dgst, sub, AccessoryCosign); err != nil {
			return err
		}
	}
	pid, _, _ := project.ProjectOf(ctx, tx, repo)
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "create", ResourceType: "tag", Resource: repo + ":" + tag})
}

// TagDeleted removes a tag from the view, in the registry's transaction.
func (s *Service) TagDeleted(ctx context.Context, tx *sqldb.Tx, repo, tag string) error {
	repoID, ok, err := s.repoID(ctx, tx, repo, false)
	if err != nil || !ok {
		return err
	}
	res, err := tx.Exec(ctx, `DELETE FROM artifact_tags WHERE repository_id = ? AND name = ?`, repoID, tag)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	pid, _, _ := project.ProjectOf(ctx, tx, repo)
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "delete", ResourceType: "tag", Resource: repo + ":" + tag})
}

// RepositoryDeleted removes a repository from the view, in the
// registry's transaction.
func (s *Service) RepositoryDeleted(ctx context.Context, tx *sqldb.Tx, repo string) error {
	res, err := tx.Exec(ctx, `DELETE FROM artifact_repos WHERE name = ?`, repo)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	pid, _, _ := project.ProjectOf(ctx, tx, repo)
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "delete", ResourceType: "repository", Resource: repo})
}

// pull is a pull waiting to be recorded.
type pull struct {
	repo, dgst, tag string
	at              time.Time
	event           audit.Event
	audited         bool
}

// maxPending bounds the pulls waiting; beyond it a pull's record is
// dropped (and logged), never the pull itself delayed.
const maxPending = 100000

// Pulled records that a manifest was pulled (by tag when tag is set):
// pull times, the repository's pull count and, unless pull_artifact is
// disabled, the audit log, written within a second in batches.
func (s *Service) Pulled(ctx context.Context, repo, dgst, tag string) {
	a := actor.From(ctx)
	resource := repo + "@" + dgst
	if tag != "" {
		resource = repo + ":" + tag
	}
	p := pull{repo: repo, dgst: dgst, tag: tag, at: s.db.Now(), audited: s.audit.Enabled(ctx, "pull_artifact"),
		event: audit.Event{Operation: "pull", ResourceType: "artifact", Resource: resource, Username: a.Name, Address: a.Address, RequestID: a.RequestID}}
	s.pullMu.Lock()
	full := len(s.pulls) >= maxPending
	if !full {
		s.pulls = append(s.pulls, p)
	}
	n := len(s.pulls)
	s.pullMu.Unlock()
	if full {
		s.log.Warn("pull records are not keeping up; dropping one", "repository", repo, "digest", dgst)
		return
	}
	if n >= 500 {
		select {
		case s.pullSig <- struct{}{}:
		default:
		}
	}
}

func (s *Service) flushPulls() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.pullSig:
		case <-s.stop:
			s.writePulls()
			return
		}
		s.writePulls()
	}
}

// writePulls writes the pending pulls in one transaction.
func (s *Service) writePulls() {
	s.pullMu.Lock()
	batch := s.pulls
	s.pulls = nil
	s.pullMu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx := context.Background()
	err := s.db.Tx(ctx, "record pulls", func(tx *sqldb.Tx) error {
		counts := map[string]int64{}
		for _, p := range batch {
			at := sqldb.Nanos(p.at)
			var repoID, pid int64
			err := tx.QueryRow(ctx, `SELECT id, project_id FROM artifact_repos WHERE name = ?`, p.repo).Scan(&repoID, &pid)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			counts[p.repo]++
			if _, err := tx.Exec(ctx, `UPDATE artifacts SET pull_time = ? WHERE repository_id = ? AND digest = ? AND pull_time < ?`, at, repoID, p.dgst, at); err != nil {
				return err
			}
			if p.tag != "" {
				if _, err := tx.Exec(ctx, `UPDATE artifact_tags SET pull_time = ? WHERE repository_id = ? AND name = ? AND pull_time < ?`, at, repoID, p.tag, at); err != nil {
					return err
				}
			}
			if p.audited {
				e := p.event
				e.ProjectID, e.Time = pid, p.at
				if err := s.audit.Record(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		for repo, n := range counts {
			if _, err := tx.Exec(ctx, `UPDATE artifact_repos SET pull_count = pull_count + ? WHERE name = ?`, n, repo); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("cannot record pulls", "pulls", len(batch), "error", err)
	}
}
