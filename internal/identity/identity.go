// Package identity knows who is who: users (with the source that
// authenticates them: the database, later LDAP or OIDC), groups, robot
// accounts, sessions of the web UI and the login throttle. It turns
// credentials into an access.Subject; what a subject may then do is
// package access's question.
//
// # Sources
//
// A user has a source: "db" (password hash in the users table) or the
// name of an external Source (LDAP, OIDC) that authenticates them and
// tells their groups. The auth_mode setting picks the source of new
// logins; the first administrator always authenticates against the
// database, as in Harbor. Groups (type 1 LDAP, 2 HTTP, 3 OIDC) are project
// members like users; a user's groups are learned from the source at each
// login and kept in user_usergroups.
//
// # Tables (owned here)
//
//	users         id, username, email, realname, comment, password (PHC
//	              hash, "" for external users), source, external_id,
//	              sysadmin, admin_in_auth (granted by the source at the
//	              last login), created, updated
//	usergroups    id, name, type, external_id (LDAP DN, OIDC claim value)
//	user_usergroups user_id, group_id: memberships learned from a source
//	robots        id, name (without the prefix: "ci" or "project+ci"),
//	              description, secret (hash), level, project_id, permissions
//	              (JSON), duration, expires_at, disabled, creator_type,
//	              creator_ref, created, updated
//	sessions      id (sha256 of the cookie), user_id, csrf, created,
//	              expires, address
//	login_failures key ("user:NAME", "addr:IP"), failures, last,
//	              blocked_until: the throttle, shared by replicas
package identity

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create identity's tables.
var Migrations = []sqldb.Migration{{Owner: "identity", Name: "users, groups, robots, sessions, login throttle", SQL: []string{
	`CREATE TABLE users (
		id {{id}},
		username {{text}} NOT NULL UNIQUE,
		email {{text}} NOT NULL DEFAULT '',
		realname {{text}} NOT NULL DEFAULT '',
		comment {{text}} NOT NULL DEFAULT '',
		password {{text}} NOT NULL DEFAULT '',
		source {{text}} NOT NULL,
		external_id {{text}} NOT NULL DEFAULT '',
		sysadmin {{bool}} NOT NULL DEFAULT FALSE,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> ''`,
	`CREATE INDEX users_external ON users (source, external_id)`,
	`CREATE TABLE usergroups (
		id {{id}},
		name {{text}} NOT NULL,
		type {{int}} NOT NULL,
		external_id {{text}} NOT NULL DEFAULT '',
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		UNIQUE (type, name))`,
	`CREATE TABLE user_usergroups (
		user_id {{int}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		group_id {{int}} NOT NULL REFERENCES usergroups (id) ON DELETE CASCADE,
		PRIMARY KEY (user_id, group_id))`,
	`CREATE TABLE robots (
		id {{id}},
		name {{text}} NOT NULL UNIQUE,
		description {{text}} NOT NULL DEFAULT '',
		secret {{text}} NOT NULL,
		level {{text}} NOT NULL,
		project_id {{int}} NOT NULL DEFAULT 0,
		permissions {{text}} NOT NULL,
		duration {{int}} NOT NULL,
		expires_at {{int}} NOT NULL,
		disabled {{bool}} NOT NULL DEFAULT FALSE,
		creator_type {{text}} NOT NULL,
		creator_ref {{int}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX robots_project ON robots (project_id)`,
	`CREATE TABLE sessions (
		id {{text}} PRIMARY KEY,
		user_id {{int}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		csrf {{text}} NOT NULL,
		created {{int}} NOT NULL,
		expires {{int}} NOT NULL,
		address {{text}} NOT NULL)`,
	`CREATE INDEX sessions_expires ON sessions (expires)`,
	`CREATE TABLE login_failures (
		key {{text}} PRIMARY KEY,
		failures {{int}} NOT NULL,
		last {{int}} NOT NULL,
		blocked_until {{int}} NOT NULL)`,
}}, {Owner: "identity", Name: "admin role granted by the identity source", SQL: []string{
	// Kept apart from the sysadmin flag an administrator sets, so that
	// neither overwrites the other (ldap_group_admin_dn,
	// oidc_admin_group).
	`ALTER TABLE users ADD COLUMN admin_in_auth {{bool}} NOT NULL DEFAULT FALSE`,
	`CREATE INDEX usergroups_external ON usergroups (type, external_id)`,
}}}

// DB is the name of the database source.
const DB = "db"

// ErrGone is what a Source wraps (in an errdefs.ErrUnauthorized or
// ErrNotFound) when the user no longer exists there or is disabled: the
// user's groups and sessions are then forgotten at once, so that nothing
// they held through the source outlives the source's word.
var ErrGone = errors.New("the identity source no longer has this user")

// Source authenticates the users of an external identity provider (LDAP,
// OIDC). Sources are plugged in with WithSource under the auth_mode that
// selects them ("ldap_auth", "oidc_auth").
type Source interface {
	// Authenticate checks a user's credentials and returns who they are
	// at the source. Wrong credentials are errdefs.ErrUnauthorized.
	Authenticate(ctx context.Context, username, password string) (External, error)
}

// External is a user as a source knows them.
type External struct {
	// ID identifies the user at the source (an LDAP DN, an OIDC
	// subject); users are matched on it, not on the name.
	ID       string
	Username string
	Email    string
	Realname string
	// Groups the user belongs to at the source.
	Groups []ExternalGroup
	// Admin is true when the source says the user administers lading
	// (ldap_group_admin_dn, oidc_admin_group).
	Admin bool
	// AdoptByName lets a source whose names are authoritative (LDAP: the
	// directory's uid) take over a user of the same source and name whose
	// external id changed (an entry moved or renamed in the directory).
	AdoptByName bool
}

// GroupSource is a Source that knows groups by their external id: an
// LDAP directory checks a DN and names the group. Groups of a type whose
// source is not plugged in are taken by name (OIDC groups are whatever
// the provider says they are).
type GroupSource interface {
	LookupGroup(ctx context.Context, id string) (ExternalGroup, error)
}

// ExternalGroup is a group as a source knows it.
type ExternalGroup struct {
	Type int    // GroupLDAP, GroupHTTP, GroupOIDC
	ID   string // the DN or the claim value
	Name string
}

// Group types, as Harbor numbers them.
const (
	GroupLDAP = 1
	GroupHTTP = 2
	GroupOIDC = 3
)

// Service is the identity service.
type Service struct {
	db       *sqldb.DB
	access   *access.Checker
	audit    *audit.Log
	settings *config.Store
	projects Projects
	log      *slog.Logger
	sources  map[string]Source

	cacheMu sync.Mutex
	cache   map[[32]byte]cached
	cacheK  [32]byte
}

// Projects tells identity about projects (robot permissions name them).
type Projects interface {
	ProjectByName(ctx context.Context, name string) (access.ProjectInfo, error)
	ProjectInfo(ctx context.Context, id int64) (access.ProjectInfo, error)
}

// Option configures the service.
type Option func(*Service)

// WithSource plugs in the source for an auth mode.
func WithSource(authMode string, s Source) Option {
	return func(svc *Service) { svc.sources[authMode] = s }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the identity service.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, settings *config.Store, projects Projects, opts ...Option) *Service {
	s := &Service{db: db, access: checker, audit: log, settings: settings, projects: projects,
		log: slog.New(slog.DiscardHandler), sources: map[string]Source{}, cache: map[[32]byte]cached{}}
	randomKey(s.cacheK[:])
	for _, o := range opts {
		o(s)
	}
	return s
}
