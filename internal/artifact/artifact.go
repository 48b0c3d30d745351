// Package artifact is Harbor's view of the registry's content: the
// repositories of each project, their artifacts (manifests and indexes,
// with type, size, push and pull time, references, tags) and tags, with
// the ids Harbor's API speaks in.
//
// The view is kept by the registry's metadata store, which tells it of
// every manifest put, manifest deleted and tag changed inside the
// transaction that makes the change (ManifestPut, ManifestDeleted,
// TagPut, TagDeleted): the view never disagrees with the registry, and
// the audit log's record of a push is written with it. Pulls are
// recorded in batches (Pulled), at most a second late.
//
// Changes the API asks for (delete an artifact, a tag, a repository; copy
// an artifact) go through the registry (Registry), so that they follow
// the protocol's rules and come back to the view through the same hooks.
//
// # Tables (owned here)
//
//	artifact_repos   id, name ("project/repo"), project_id (the project
//	                 cannot be deleted while it holds one), description,
//	                 pull_count, created, updated
//	artifacts        id, repository_id, digest, type (IMAGE, CHART, ...),
//	                 media_type (the config's), manifest_media_type,
//	                 artifact_type, size (the manifest and what it
//	                 references), push_time, pull_time, annotations,
//	                 refs (an index's children, JSON)
//	artifact_tags    id, repository_id, artifact_id, name, push_time,
//	                 pull_time
//	artifact_accessories  see accessories.go
package artifact

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the view's tables; they follow the project tables.
var Migrations = []sqldb.Migration{{Owner: "artifact", Name: "repositories, artifacts, tags", SQL: []string{
	`CREATE TABLE artifact_repos (
		id {{id}},
		name {{text}} NOT NULL UNIQUE,
		project_id {{int}} NOT NULL REFERENCES projects (id),
		description {{text}} NOT NULL DEFAULT '',
		pull_count {{int}} NOT NULL DEFAULT 0,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX artifact_repos_project ON artifact_repos (project_id, name)`,
	`CREATE TABLE artifacts (
		id {{id}},
		repository_id {{int}} NOT NULL REFERENCES artifact_repos (id) ON DELETE CASCADE,
		digest {{text}} NOT NULL,
		type {{text}} NOT NULL,
		media_type {{text}} NOT NULL,
		manifest_media_type {{text}} NOT NULL,
		artifact_type {{text}} NOT NULL,
		size {{int}} NOT NULL,
		push_time {{int}} NOT NULL,
		pull_time {{int}} NOT NULL DEFAULT 0,
		annotations {{text}} NOT NULL,
		refs {{text}} NOT NULL,
		subject {{text}} NOT NULL DEFAULT '',
		UNIQUE (repository_id, digest))`,
	`CREATE INDEX artifacts_push ON artifacts (repository_id, push_time)`,
	`CREATE INDEX artifacts_digest ON artifacts (digest)`,
	`CREATE TABLE artifact_tags (
		id {{id}},
		repository_id {{int}} NOT NULL REFERENCES artifact_repos (id) ON DELETE CASCADE,
		artifact_id {{int}} NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
		name {{text}} NOT NULL,
		push_time {{int}} NOT NULL,
		pull_time {{int}} NOT NULL DEFAULT 0,
		UNIQUE (repository_id, name))`,
	`CREATE INDEX artifact_tags_artifact ON artifact_tags (artifact_id, name)`,
	`CREATE INDEX artifact_tags_name ON artifact_tags (name)`,
}}, accessoriesMigration}

// Registry is what the view asks of the registry to change content.
type Registry interface {
	// DeleteManifest deletes a manifest of repo and its tags
	// (errdefs.ErrConflict while an index references it).
	DeleteManifest(ctx context.Context, repo, dgst string) error
	// PutTag points tag at the manifest dgst of repo.
	PutTag(ctx context.Context, repo, tag, dgst string) error
	// DeleteTag deletes a tag.
	DeleteTag(ctx context.Context, repo, tag string) error
	// Deleted tells those who follow the registry's changes (webhooks,
	// event-based replication) that user deleted, through the API, the
	// artifact dgst of repo (tag "") or its tag: as a deletion through
	// the registry API does. The accessories and index children that
	// go with an artifact are not told apart, as Harbor does not; a
	// repository's deletion is told as its artifacts' deletions.
	Deleted(ctx context.Context, repo, dgst, mediaType, tag, user string)
	// DeleteRepository deletes every manifest and tag of repo.
	DeleteRepository(ctx context.Context, repo string) error
	// Copy copies the manifest ref (a digest or a tag) of src, and what
	// it references, into dst, tagging it when ref is a tag; it returns
	// the manifest's digest.
	Copy(ctx context.Context, src, ref, dst string) (string, error)
	// Forget removes, in tx, every trace of the repositories under
	// prefix/ (blob links left without a manifest).
	Forget(ctx context.Context, tx *sqldb.Tx, prefix string) error
}

// Guard protects tags from the view's changes (immutable tags): Check
// refuses, with an error of class errdefs.ErrFailedPrecondition naming
// what protects it, a change to one of tags of repo ("project/name").
type Guard interface {
	Check(ctx context.Context, repo string, tags []string) error
}

// Service is the artifact view.
type Service struct {
	db       *sqldb.DB
	access   *access.Checker
	audit    *audit.Log
	projects *project.Service
	registry Registry
	guard    Guard
	fields   query.Fields
	log      *slog.Logger

	pullMu  sync.Mutex
	pulls   []pull
	pullSig chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// New returns the view. Call Close to flush pending pull records.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, projects *project.Service, reg Registry, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, access: checker, audit: log, projects: projects, registry: reg, log: logger, fields: maps.Clone(ArtifactFields),
		pullSig: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.flushPulls()
	return s
}

// SetRegistry sets the registry (built after the view).
func (s *Service) SetRegistry(r Registry) { s.registry = r }

// SetGuard sets what protects tags from deletion and moves (at wiring).
func (s *Service) SetGuard(g Guard) { s.guard = g }

// AddField adds a key artifact listings may filter by, owned by another
// service (labels), at wiring.
func (s *Service) AddField(key string, f query.Field) { s.fields[key] = f }

// check asks the guard, if any, about a change to tags of repo.
func (s *Service) check(ctx context.Context, repo string, tags []string) error {
	if s.guard == nil || len(tags) == 0 {
		return nil
	}
	return s.guard.Check(ctx, repo, tags)
}

// Close records the pulls still pending.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
