package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/api"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/registry/storage/fs"
	"github.com/lading-dev/lading/internal/registry/storage/s3"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/postgres"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
	"github.com/lading-dev/lading/internal/syslog"
	"github.com/lading-dev/lading/internal/token"
	"github.com/lading-dev/lading/internal/ui"
)

// Migrations is the one ordered list of the metadata database's
// migrations: the registry's tables, then each service's (core). A new
// migration is appended to its package's list; the order of the lists
// never changes.
func Migrations() []sqldb.Migration {
	return append(append([]sqldb.Migration{}, meta.Migrations...), core.Migrations()...)
}

// Server is an assembled registry, ready to serve.
type Server struct {
	Config   Config
	Registry *registry.Registry
	Core     *core.Core
	Driver   storage.Driver
	Meta     *meta.SQL
	DB       *sqldb.DB
	// Inspect reads artifacts' content for the UI.
	Inspect *inspect.Service
	// UI is the web UI, nil when turned off.
	UI      *ui.Server
	log     *slog.Logger
	handler http.Handler

	tlsMu   sync.RWMutex
	tlsCert *tls.Certificate

	forward *syslog.Switch
}

// Options are what a Server needs besides its configuration.
type Options struct {
	// Log receives operational messages.
	Log *slog.Logger
	// AccessLog receives one JSON record per request when the
	// configuration's log.access is on (the default).
	AccessLog io.Writer
	// Events hear about pushes, pulls and deletions (scan on push,
	// webhooks), besides Harbor's layer.
	Events registry.Events
	// Version is lading's version (systeminfo).
	Version string
	// Analyzer tells the web UI what is inside images (packages by
	// layer, vulnerabilities); nil shows neither.
	Analyzer inspect.Analyzer
	// NoUI turns the web UI off.
	NoUI bool
}

// Open opens the storage and the database the configuration names,
// brings the database's schema up to date, and builds the registry and
// Harbor's layer over them. On a first start it creates the administrator
// and the library project, and imports auth.htpasswd's users. cfg must
// have had Defaults applied.
func Open(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drv, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	db, err := openDB(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	s := &Server{Config: cfg, Driver: drv, DB: db, forward: syslog.NewSwitch("lading", log)}
	// Application and access logs also go to the audit log's syslog
	// collector when one is set (Harbor's log collector gathers every
	// component's logs).
	s.log = slog.New(syslog.Tee{log.Handler(), syslog.NewHandler(s.forwardTarget, "app", slog.LevelInfo)})
	if err := s.assemble(ctx, o); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openDB(ctx context.Context, c DatabaseConfig) (*sqldb.DB, error) {
	var db *sqldb.DB
	var err error
	if c.URL != "" {
		db, err = postgres.Open(ctx, c.URL)
	} else {
		db, err = sqlite.Open(ctx, c.SQLite)
	}
	if err != nil {
		return nil, err
	}
	if err := sqldb.Migrate(ctx, db, Migrations()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// assemble builds Harbor's layer and the registry, each told of the other
// through the registry's Gate and Events and the metadata store's Hooks.
func (s *Server) assemble(ctx context.Context, o Options) error {
	cfg := s.Config
	noAuth := cfg.Auth.Mode == "none"
	var accessLog *slog.Logger
	if o.AccessLog != nil && (cfg.Log.Access == nil || *cfg.Log.Access) {
		accessLog = slog.New(syslog.Tee{slog.NewJSONHandler(o.AccessLog, nil), syslog.NewHandler(s.forwardTarget, "access", slog.LevelInfo)})
	}
	hooks := &hooks{}
	s.Meta = meta.New(s.DB, meta.WithHooks(hooks))
	c, err := core.New(ctx, s.DB, core.Options{
		Log: s.log, AccessLog: accessLog, Version: o.Version, TokenService: cfg.Auth.Token.Service,
		StorageProvider: s.Driver.Name(), NoAuth: noAuth, Health: s.health,
	})
	if err != nil {
		return err
	}
	hooks.core = c
	s.Core = c
	if err := c.Settings.SetOverrides(cfg.Settings); err != nil {
		return err
	}
	opts := []registry.Option{
		registry.WithLogger(s.log),
		registry.WithLimits(registry.Limits{
			MaxManifestSize: cfg.Limits.MaxManifestSize,
			IdleTimeout:     cfg.Limits.IdleTimeout,
		}),
		registry.WithEvents(events{core: c, also: o.Events}),
	}
	if !noAuth {
		opts = append(opts, registry.WithGate(&gate{core: c, realm: cfg.Auth.Token.Realm}))
	}
	if cfg.Metrics.Enabled == nil || *cfg.Metrics.Enabled {
		opts = append(opts, registry.WithMetrics(registry.NewMetrics()))
	}
	if accessLog != nil {
		opts = append(opts, registry.WithAccessLog(accessLog))
	}
	s.Registry = registry.New(s.Driver, s.Meta, opts...)
	c.SetRegistry(content{meta: s.Meta, reg: s.Registry})
	if err := s.bootstrap(ctx); err != nil {
		c.Close()
		return err
	}
	s.Inspect = inspect.New(c.Artifacts, c.Projects, stored{meta: s.Meta, driver: s.Driver}, o.Analyzer)
	if !o.NoUI {
		s.UI, err = ui.New(ui.Services{Permissions: c.Access, Identity: c.Identity, Projects: c.Projects, Artifacts: c.Artifacts,
			Audit: c.Audit, Settings: c.Settings, Inspect: s.Inspect}, ui.Options{Log: s.log, Version: o.Version, NoAuth: noAuth})
		if err != nil {
			c.Close()
			return err
		}
	}
	s.handler = s.route()
	return nil
}

// bootstrap creates the administrator and the library project on a first
// start, and imports htpasswd users.
func (s *Server) bootstrap(ctx context.Context) error {
	ctx = actor.System(ctx, "lading")
	if err := s.Core.Bootstrap(ctx, s.Config.Auth.AdminPassword, s.Config.Root); err != nil {
		return err
	}
	if s.Config.Auth.Htpasswd == "" {
		return nil
	}
	b, err := os.ReadFile(s.Config.Auth.Htpasswd)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	users, err := s.Core.Identity.ImportHtpasswd(ctx, b)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		s.log.Info("imported htpasswd users as database users", "file", s.Config.Auth.Htpasswd, "users", strings.Join(users, ","))
	}
	return nil
}

// route sends Harbor's paths to the core, the web UI's to the UI and
// everything else to the registry.
func (s *Server) route() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == token.Path:
			w.Header().Set("X-Request-Id", api.RequestID(r))
			s.Core.TokenService.ServeHTTP(w, r)
		case strings.HasPrefix(p, api.Prefix+"/"), p == api.Prefix, strings.HasPrefix(p, "/c/"):
			s.Core.API.ServeHTTP(w, r)
		case s.UI != nil && ui.Owns(p):
			s.UI.ServeHTTP(w, r)
		default:
			s.Registry.ServeHTTP(w, r)
		}
	})
}

// Handler is the server's HTTP handler: the registry, the token service
// and the API on one port.
func (s *Server) Handler() http.Handler { return s.handler }

// health checks the database and the storage for /api/v2.0/health.
func (s *Server) health(ctx context.Context) []api.Component {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dbErr := s.DB.SQL().PingContext(ctx)
	_, stErr := s.Driver.Stat(ctx, "health-check-absent")
	if errdefs.IsNotFound(stErr) {
		stErr = nil
	}
	return []api.Component{{Name: "database", Error: dbErr}, {Name: "registry", Error: stErr}}
}

func openStorage(ctx context.Context, c StorageConfig) (storage.Driver, error) {
	switch c.Driver {
	case "s3":
		d, err := s3.New(s3.Config{
			Endpoint:  c.S3.Endpoint,
			Secure:    !c.S3.Insecure,
			Bucket:    c.S3.Bucket,
			Prefix:    c.S3.Prefix,
			Region:    c.S3.Region,
			AccessKey: c.S3.AccessKey,
			SecretKey: c.S3.SecretKey,
			PartSize:  c.S3.PartSize,
		})
		if err != nil {
			return nil, err
		}
		if c.S3.Create {
			if err := d.EnsureBucket(ctx, c.S3.Region); err != nil {
				return nil, err
			}
		}
		return d, nil
	default:
		return fs.New(c.Filesystem.Root)
	}
}

// forwardTarget is the syslog collector logs go to: the audit log's
// forwarding endpoint, when set.
func (s *Server) forwardTarget() *syslog.Writer {
	if s.Core == nil {
		return nil
	}
	st, err := s.Core.Settings.Get(context.Background())
	if err != nil {
		return nil
	}
	return s.forward.Writer(st.AuditForwardEndpoint)
}

// Close flushes what is pending and releases the database.
func (s *Server) Close() error {
	s.Core.Close()
	s.forward.Close()
	return s.DB.Close()
}

// Reload applies a new configuration's reloadable parts: the TLS
// certificate and key (read again), the settings it fixes, and the
// htpasswd users to import. The rest needs a restart.
func (s *Server) Reload(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.TLS.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Certificate, cfg.TLS.Key)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		s.tlsMu.Lock()
		s.tlsCert = &cert
		s.tlsMu.Unlock()
	}
	if err := s.Core.Settings.SetOverrides(cfg.Settings); err != nil {
		return err
	}
	s.Config.Settings, s.Config.Auth.Htpasswd = cfg.Settings, cfg.Auth.Htpasswd
	return s.bootstrap(ctx)
}

// ListenAndServe listens on the configured address and serves until ctx
// ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	l, err := net.Listen("tcp", s.Config.Address)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Config.Address, err)
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx ends, then shuts down gracefully (in-flight
// requests get 30 seconds). It runs the periodic garbage collector when
// the configuration asks for one, and the core's housekeeping.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	useTLS := s.Config.TLS.Certificate != ""
	if useTLS {
		// Fail before serving on a bad pair; Reload replaces it.
		cert, err := tls.LoadX509KeyPair(s.Config.TLS.Certificate, s.Config.TLS.Key)
		if err != nil {
			l.Close()
			return fmt.Errorf("tls: %w", err)
		}
		s.tlsMu.Lock()
		s.tlsCert = &cert
		s.tlsMu.Unlock()
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.tlsMu.RLock()
			defer s.tlsMu.RUnlock()
			return s.tlsCert, nil
		}}
	}
	var wg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() { stopBG(); wg.Wait() }()
	if iv := s.Config.GC.Interval; iv > 0 {
		wg.Go(func() { s.periodicGC(bgCtx, iv) })
	}
	wg.Go(func() { s.Core.Run(actor.System(bgCtx, "housekeeping")) })
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	s.log.Info("registry listening", "address", l.Addr().String(), "scheme", scheme,
		"storage", s.Driver.Name(), "auth", s.Config.Auth.Mode)
	var err error
	if useTLS {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) periodicGC(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.CollectGarbage(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Error("periodic garbage collection failed", "error", err)
			}
		}
	}
}

// CollectGarbage runs one collection with the configured grace and TTL,
// then recounts the projects' quotas from what is left.
func (s *Server) CollectGarbage(ctx context.Context, dryRun bool) (registry.GCReport, error) {
	ctx = actor.System(ctx, "garbage-collection")
	rep, err := s.Registry.CollectGarbage(ctx, registry.GCOptions{
		Grace:     s.Config.GC.Grace,
		UploadTTL: s.Config.GC.UploadTTL,
		DryRun:    dryRun,
	})
	if err != nil || dryRun {
		return rep, err
	}
	return rep, s.Core.Projects.Recount(ctx, s.Meta.ForEachLink)
}
