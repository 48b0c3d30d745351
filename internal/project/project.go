// Package project is Harbor's project layer: projects (public or private,
// with metadata), their members (users and groups, with Harbor's roles)
// and their storage quotas.
//
// Repositories live under a project: "PROJECT/REPO[/...]". What a project
// holds in the registry is known to the artifact view (Contents), which
// refuses to let a project holding repositories go.
//
// # Tables (owned here)
//
//	projects        id, name, owner_id (users, kept NULL when the owner is
//	                deleted), public, created, updated
//	project_metadata project_id, name, value: Harbor's metadata strings
//	members         id, project_id, user_id or group_id, role (1..5)
//	quotas          project_id, hard (-1: unlimited), used, created, updated
//	project_blobs   project_id, digest, size, refs: each blob counted once
//	                per project, refs = repositories of the project
//	                linking it
//
// projects.registry_id (0: none) makes a project a proxy cache of that
// registry endpoint (package replication owns the endpoints).
//
// # Quotas
//
// A project's usage is the size of the distinct blobs linked into its
// repositories. The registry's metadata store tells Linked and Unlinked
// inside the transaction that links or unlinks a blob; the first link of
// a digest in a project adds its size, under the quota row's lock, or
// fails the transaction when the quota would be exceeded, so usage is
// exact under concurrent pushes; the last unlink (a blob deleted, garbage
// collected) subtracts it. Recount rebuilds everything from the links
// after garbage collection.
package project

import (
	"context"
	"log/slog"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the project tables. They follow identity's (members
// and owners reference users and groups).
var Migrations = []sqldb.Migration{{Owner: "project", Name: "projects, metadata, members, quotas", SQL: []string{
	`CREATE TABLE projects (
		id {{id}},
		name {{text}} NOT NULL UNIQUE,
		owner_id {{int}} REFERENCES users (id) ON DELETE SET NULL,
		public {{bool}} NOT NULL DEFAULT FALSE,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX projects_public ON projects (public, name)`,
	`CREATE INDEX projects_created ON projects (created)`,
	`CREATE TABLE project_metadata (
		project_id {{int}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
		name {{text}} NOT NULL,
		value {{text}} NOT NULL,
		PRIMARY KEY (project_id, name))`,
	`CREATE TABLE members (
		id {{id}},
		project_id {{int}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
		user_id {{int}} REFERENCES users (id) ON DELETE CASCADE,
		group_id {{int}} REFERENCES usergroups (id) ON DELETE CASCADE,
		role {{int}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		CHECK ((user_id IS NULL) <> (group_id IS NULL)),
		UNIQUE (project_id, user_id),
		UNIQUE (project_id, group_id))`,
	`CREATE INDEX members_user ON members (user_id)`,
	`CREATE INDEX members_group ON members (group_id)`,
	`CREATE TABLE quotas (
		project_id {{int}} PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
		hard {{int}} NOT NULL,
		used {{int}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE project_blobs (
		project_id {{int}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
		digest {{text}} NOT NULL,
		size {{int}} NOT NULL,
		refs {{int}} NOT NULL,
		PRIMARY KEY (project_id, digest))`,
}}, {Owner: "project", Name: "proxy cache projects (registry_id)", Func: func(ctx context.Context, tx *sqldb.Tx) error {
	return sqldb.AddColumn(ctx, tx, "projects", "registry_id", "{{int}} NOT NULL DEFAULT 0")
}}}

// Project is a project.
type Project struct {
	ID        int64
	Name      string
	OwnerID   int64
	OwnerName string
	Public    bool
	Metadata  map[string]string
	Created   time.Time
	Updated   time.Time
	// RepoCount is the number of repositories (with artifacts).
	RepoCount int64
	// Roles are the asking subject's roles in the project.
	Roles []access.Role
	// RegistryID, when not 0, makes the project a pull-through cache of
	// that registry endpoint (a proxy-cache project).
	RegistryID int64
}

// Contents is what the project layer asks of the artifact view about a
// project's repositories.
type Contents interface {
	// RepositoryCounts returns how many repositories each project holds.
	RepositoryCounts(ctx context.Context, projects []int64) (map[int64]int64, error)
	// Forget removes, in the transaction deleting a project, what is left
	// of its repositories in the registry's metadata (blobs uploaded
	// without a manifest).
	Forget(ctx context.Context, tx *sqldb.Tx, project string) error
}

// Upstreams tell the project layer about registry endpoints, which may be
// the upstreams of proxy-cache projects (the replication service).
type Upstreams interface {
	// RegistryExists checks, in the transaction creating a project, that
	// registry id exists and may be an upstream, locking it until tx
	// ends.
	RegistryExists(ctx context.Context, tx *sqldb.Tx, id int64) error
}

// Service is the project service.
type Service struct {
	db        *sqldb.DB
	store     *Store
	access    *access.Checker
	audit     *audit.Log
	settings  *config.Store
	identity  *identity.Service
	contents  Contents
	upstreams Upstreams
	log       *slog.Logger
}

// New returns the project service. contents may be set later with
// SetContents (the artifact view is built over the project service).
func New(db *sqldb.DB, store *Store, checker *access.Checker, log *audit.Log, settings *config.Store, ids *identity.Service, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, store: store, access: checker, audit: log, settings: settings, identity: ids, log: logger}
}

// SetContents tells the service about the artifact view.
func (s *Service) SetContents(c Contents) { s.contents = c }

// SetUpstreams tells the service about registry endpoints.
func (s *Service) SetUpstreams(u Upstreams) { s.upstreams = u }

// Store returns the low-level store (access's Directory).
func (s *Service) Store() *Store { return s.store }
