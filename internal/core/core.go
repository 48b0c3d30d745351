// Package core assembles Harbor's layer of lading: the services (access,
// identity, project, artifact view, audit, settings), the token service
// and the HTTP API, over one metadata database. It is what
// registry/server composes with the registry, and what the web UI will
// call: everything here takes an access.Subject and decides for itself
// what that subject may do.
package core

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/api"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/gc"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/identity/oidc"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/proxycache"
	"github.com/lading-dev/lading/internal/purge"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/secrets"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sysjob"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/token"
	"github.com/lading-dev/lading/internal/webhook"
)

// Migrations are the services' tables, in the order they must be created
// (each list is owned by its package). The registry's metadata comes
// first; see registry/server.
func Migrations() []sqldb.Migration {
	var out []sqldb.Migration
	for _, m := range [][]sqldb.Migration{
		config.Migrations,
		audit.Migrations,
		identity.Migrations,
		project.Migrations,
		artifact.Migrations,
		contenttrust.Migrations,
		token.Migrations,
		jobs.Migrations,
		task.Migrations,
		webhook.Migrations,
		secrets.Migrations,
		replication.Migrations,
		immutable.Migrations,
		label.Migrations,
		sysjob.Migrations,
		retention.Migrations,
		scanapi.Migrations,
		oidc.Migrations,
	} {
		out = append(out, m...)
	}
	return out
}

// Options configure the core.
type Options struct {
	Log       *slog.Logger
	AccessLog *slog.Logger
	// Version shows as harbor_version.
	Version string
	// TokenService is the audience of registry tokens; default
	// "harbor-registry".
	TokenService string
	// Registry is what the artifact view asks to change content; it may
	// be set later (SetRegistry), the registry being built after.
	Registry artifact.Registry
	// Health checks other components for /api/v2.0/health.
	Health func(context.Context) []api.Component
	// StorageProvider names the blob storage.
	StorageProvider string
	// NoAuth: the open, throwaway registry (--no-auth).
	NoAuth bool
	// Sources are external identity sources by auth mode; LDAP
	// (ldap_auth) and OIDC (oidc_auth) are built in.
	Sources map[string]identity.Source
	// RootCAs verify the certificates of the LDAP directory and the OIDC
	// provider; nil: the system's.
	RootCAs *x509.CertPool
	// Jobs configure the job service (its Log defaults to Log).
	Jobs jobs.Options
	// Outbound decides which addresses webhooks (and every other
	// outbound target) may reach; default: the public internet only.
	Outbound *outbound.Policy
	// Webhooks configure deliveries (Log, Outbound and UserAgent default
	// to the core's).
	Webhooks webhook.Options
	// Secrets say where the keys sealing stored credentials are.
	Secrets secrets.Options
	// Replication configures replication (Log, Outbound and UserAgent
	// default to the core's).
	Replication replication.Options
	// Proxy configures proxy-cache projects (likewise).
	Proxy proxycache.Options
	// Hostname is how clients name the registry (event payloads).
	Hostname string
	// Trust configures the signature policy (Log and Outbound default to
	// the core's).
	Trust contenttrust.Options
}

// Core is Harbor's layer, assembled.
type Core struct {
	DB        *sqldb.DB
	Access    *access.Checker
	Settings  *config.Store
	Audit     *audit.Log
	Identity  *identity.Service
	Projects  *project.Service
	Artifacts *artifact.Service
	Tokens    *token.Issuer
	// Jobs is the job service; Run works it.
	Jobs     *jobs.Queue
	Tasks    *task.Manager
	Webhooks *webhook.Service
	// The registry's lifecycle: immutable tags, labels, tag retention,
	// garbage collection (its collector set with SetCollector) and the
	// audit log purge.
	Immutable *immutable.Service
	Labels    *label.Service
	Retention *retention.Service
	GC        *gc.Service
	Purge     *purge.Service
	// Keys seal the credentials of registry endpoints.
	Keys *secrets.Keyring
	// Replication keeps registry endpoints and replication policies.
	Replication *replication.Service
	// Proxy answers the registry about proxy-cache projects.
	Proxy *proxycache.Service
	// Trust is the signature policy: the projects' trusted signers, the
	// registry's pull check.
	Trust *contenttrust.Service
	// LDAP serves Harbor's LDAP endpoints and the group sync; OIDC is the
	// OpenID relying party and the CLI secrets.
	LDAP *ldap.Admin
	OIDC *oidc.Service
	// API serves /api/v2.0/ and /c/.
	API http.Handler
	// TokenService serves /service/token.
	TokenService http.Handler

	log       *slog.Logger
	apiServer *api.Server
}

// New assembles the core over a migrated database.
func New(ctx context.Context, db *sqldb.DB, o Options) (*Core, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.TokenService == "" {
		o.TokenService = "harbor-registry"
	}
	c := &Core{DB: db, log: o.Log}
	store := project.NewStore(db)
	c.Access = access.New(store)
	c.Audit = audit.New(db, c.Access, func(ctx context.Context) (audit.Settings, error) {
		st, err := c.Settings.Get(ctx)
		return audit.Settings{ForwardEndpoint: st.AuditForwardEndpoint, SkipDatabase: st.SkipAuditDatabase, Disabled: st.DisabledAuditEvents}, err
	}, o.Log)
	c.Settings = config.New(db, c.Access, c.Audit)
	if _, err := c.Settings.Get(ctx); err != nil {
		return nil, err
	}
	var idOpts []identity.Option
	idOpts = append(idOpts, identity.WithLogger(o.Log))
	dir := c.newSources(o)
	idOpts = append(idOpts, identity.WithSource("ldap_auth", dir), identity.WithSource("oidc_auth", c.OIDC))
	for mode, src := range o.Sources {
		idOpts = append(idOpts, identity.WithSource(mode, src))
	}
	c.Identity = identity.New(db, c.Access, c.Audit, c.Settings, store, idOpts...)
	c.Settings.Guard("auth_mode", c.Identity.CanChangeAuthMode)
	c.OIDC.Attach(c.Identity)
	c.LDAP = ldap.NewAdmin(dir, c.Identity, c.Access, o.Log)
	c.Projects = project.New(db, store, c.Access, c.Audit, c.Settings, c.Identity, o.Log)
	c.Artifacts = artifact.New(db, c.Access, c.Audit, c.Projects, o.Registry, o.Log)
	c.Projects.SetContents(c.Artifacts)
	var err error
	if c.Tokens, err = token.Open(ctx, db, o.TokenService); err != nil {
		return nil, err
	}
	if o.Jobs.Log == nil {
		o.Jobs.Log = o.Log
	}
	c.Jobs = jobs.New(db, o.Jobs)
	c.Tasks = task.New(db, c.Jobs)
	wo := o.Webhooks
	if wo.Log == nil {
		wo.Log = o.Log
	}
	if wo.Outbound == nil {
		wo.Outbound = o.Outbound
	}
	if wo.UserAgent == "" {
		wo.UserAgent = "lading/" + o.Version
	}
	if wo.RepoCreated == nil {
		wo.RepoCreated = c.repoCreated
	}
	c.Webhooks = webhook.New(db, c.Access, c.Audit, c.Projects, c.Jobs, c.Tasks, c.notificationsOn, wo)
	c.Jobs.Register(c.Webhooks.Definition())
	if err := c.replication(ctx, o); err != nil {
		return nil, err
	}
	if err := c.watchIdentitySettings(); err != nil {
		return nil, err
	}
	to := o.Trust
	if to.Log == nil {
		to.Log = o.Log
	}
	if to.Outbound == nil {
		to.Outbound = o.Outbound
	}
	c.Trust = contenttrust.New(db, c.Access, c.Audit, c.Projects, c.Artifacts, to)
	c.lifecycle(o)
	c.apiServer = api.New(api.Services{Access: c.Access, Identity: c.Identity, Projects: c.Projects, Artifacts: c.Artifacts, Audit: c.Audit, Settings: c.Settings,
		Jobs: jobs.NewMonitor(c.Jobs, c.Access), Webhooks: c.Webhooks, Trust: c.Trust, LDAP: c.LDAP, OIDC: c.OIDC, Replication: c.Replication,
		Immutable: c.Immutable, Labels: c.Labels, Retention: c.Retention, GC: c.GC, Purge: c.Purge},
		api.Options{Log: o.Log, AccessLog: o.AccessLog, Version: o.Version, StorageProvider: o.StorageProvider, Health: o.Health, NoAuth: o.NoAuth})
	c.API = c.apiServer
	c.TokenService = token.NewService(c.Tokens, c.Identity, c.Access, func(ctx context.Context) time.Duration {
		st, err := c.Settings.Get(ctx)
		if err != nil || st.TokenExpiration <= 0 {
			return 30 * time.Minute
		}
		return st.TokenExpiration
	}, o.Log)
	return c, nil
}

// replication assembles the keyring, replication and proxy caches.
func (c *Core) replication(ctx context.Context, o Options) error {
	var err error
	if c.Keys, err = secrets.Open(ctx, c.DB, o.Secrets); err != nil {
		return err
	}
	ro := o.Replication
	if ro.Log == nil {
		ro.Log = o.Log
	}
	if ro.Outbound == nil {
		ro.Outbound = o.Outbound
	}
	if ro.UserAgent == "" {
		ro.UserAgent = "lading/" + o.Version
	}
	c.Replication = replication.New(c.DB, c.Access, c.Audit, c.Projects, c.Jobs, c.Tasks, c.Webhooks, c.Keys, ro)
	for _, d := range c.Replication.Definitions() {
		c.Jobs.Register(d)
	}
	c.Projects.SetUpstreams(c.Replication)
	if n, err := c.Replication.ResealSecrets(ctx); err != nil {
		return fmt.Errorf("resealing registry credentials with the configured key: %w", err)
	} else if n > 0 {
		c.log.Info("registry credentials resealed with the configured key", "count", n, "key", c.Keys.SealingKeyID())
	}
	po := o.Proxy
	if po.Log == nil {
		po.Log = o.Log
	}
	if po.Outbound == nil {
		po.Outbound = o.Outbound
	}
	if po.UserAgent == "" {
		po.UserAgent = ro.UserAgent
	}
	c.Proxy = proxycache.New(c.Projects.Store(), c.Replication, c.Jobs, po)
	return nil
}

// lifecycle assembles immutable tags, labels, retention, garbage
// collection and the audit log purge, and registers their jobs.
func (c *Core) lifecycle(o Options) {
	c.Immutable = immutable.New(c.DB, c.Audit, c.Projects)
	c.Artifacts.SetGuard(c.Immutable)
	c.Labels = label.New(c.DB, c.Access, c.Audit, c.Projects, c.Artifacts)
	c.Artifacts.AddField("labels", label.ArtifactField)
	c.Retention = retention.New(retention.Deps{DB: c.DB, Access: c.Access, Audit: c.Audit, Projects: c.Projects, Artifacts: c.Artifacts,
		Immutable: c.Immutable, Jobs: c.Jobs, Tasks: c.Tasks, Webhooks: c.Webhooks}, retention.Options{Log: o.Log, Hostname: o.Hostname})
	c.GC = gc.New(c.DB, c.Access, c.Jobs, c.Tasks, o.Log)
	c.Purge = purge.New(c.DB, c.Access, c.Jobs, c.Tasks, c.Audit, o.Log)
	var defs []jobs.Definition
	defs = append(defs, c.Retention.Definitions()...)
	defs = append(defs, c.GC.Definitions()...)
	defs = append(defs, c.Purge.Definitions()...)
	for _, d := range defs {
		c.Jobs.Register(d)
	}
}

// SetCollector gives garbage collection the registry's collector.
func (c *Core) SetCollector(col gc.Collector) { c.GC.SetCollector(col) }

// system is lading acting on its own behalf.
var system = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

// repoCreated tells when a repository was created (zero if unknown).
func (c *Core) repoCreated(ctx context.Context, repo string) time.Time {
	name, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return time.Time{}
	}
	r, err := c.Artifacts.Repository(ctx, system, project.Ref{Name: name}, rest)
	if err != nil {
		return time.Time{}
	}
	return r.Created
}

// notificationsOn reads Harbor's notification_enable setting.
func (c *Core) notificationsOn(ctx context.Context) (bool, error) {
	st, err := c.Settings.Get(ctx)
	if err != nil {
		return false, err
	}
	on, ok := st.Values["notification_enable"].(bool)
	return on || !ok, nil
}

// SetScanning plugs registry-side scanning into the API (before serving).
func (c *Core) SetScanning(sc scanapi.Service) { c.apiServer.SetScanning(sc) }

// SetRegistry tells the artifact view about the registry.
func (c *Core) SetRegistry(r artifact.Registry) { c.Artifacts.SetRegistry(r) }

// Close flushes pending pull records and the audit forwarder.
func (c *Core) Close() {
	c.Trust.Close()
	c.Artifacts.Close()
	c.Audit.Close()
}

// AdminPasswordFile is where a generated first password is written,
// under the lading root.
const AdminPasswordFile = "registry/initial-admin-password"

// Bootstrap prepares a first start: the administrator "admin" (with
// password, or a random one written to root/AdminPasswordFile with mode
// 0600, whose path the log names, never the password) and the public
// project "library". Later starts change nothing.
func (c *Core) Bootstrap(ctx context.Context, password, root string) error {
	created, generated, err := c.Identity.Bootstrap(ctx, password)
	if err != nil {
		return err
	}
	if created && generated != "" {
		file := filepath.Join(root, AdminPasswordFile)
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(file, []byte(generated+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing the initial admin password: %w", err)
		}
		c.log.Warn("created the administrator 'admin' with a random password; it is in the file named here (read it, then change the password)", "file", file)
	} else if created {
		c.log.Info("created the administrator 'admin' with the configured password")
	}
	return c.Projects.Bootstrap(ctx)
}

// Run works the job service and does the periodic housekeeping until ctx
// ends: purging expired sessions, old login failures, old webhook
// executions and, when audit_log_retention_hour is set, old audit
// entries. Every replica may run it; the work is idempotent.
func (c *Core) Run(ctx context.Context) {
	// The settings the configuration file fixes are known by now.
	if err := c.armLDAPSync(ctx); err != nil {
		c.log.Warn("cannot schedule the LDAP group sync", "error", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Jobs.Run(ctx); err != nil {
			c.log.Error("the job service stopped", "error", err)
		}
	}()
	defer func() { <-done }()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		c.Housekeep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Housekeep runs the periodic purges once.
func (c *Core) Housekeep(ctx context.Context) {
	if err := c.Identity.PurgeSessions(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("purging sessions", "error", err)
	}
	if err := c.Identity.PurgeThrottle(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("purging login failures", "error", err)
	}
	if err := c.OIDC.Purge(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("purging OIDC logins in progress", "error", err)
	}
	if err := c.Tasks.Sweep(ctx, webhook.VendorType, 50); err != nil && ctx.Err() == nil {
		c.log.Warn("sweeping old webhook executions", "error", err)
	}
	c.Replication.Housekeep(ctx)
	for _, v := range []string{gc.VendorType, purge.VendorType} {
		if err := c.Tasks.Sweep(ctx, v, 50); err != nil && ctx.Err() == nil {
			c.log.Warn("sweeping old executions", "vendor", v, "error", err)
		}
	}
	if err := c.Retention.Sweep(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("sweeping old retention runs", "error", err)
	}
	st, err := c.Settings.Get(ctx)
	if err != nil || st.AuditRetentionHours <= 0 {
		return
	}
	n, err := c.Audit.Purge(ctx, time.Now().Add(-time.Duration(st.AuditRetentionHours)*time.Hour))
	if err != nil && ctx.Err() == nil {
		c.log.Warn("purging the audit log", "error", err)
	} else if n > 0 {
		c.log.Info("purged old audit log entries", "entries", n, "older_than_hours", st.AuditRetentionHours)
	}
}

// Log is the core's logger.
func (c *Core) Log() *slog.Logger { return c.log }
