package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/api"
	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/proxycache"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	metapostgres "github.com/lading-dev/lading/internal/registry/meta/postgres"
	metasqlite "github.com/lading-dev/lading/internal/registry/meta/sqlite"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/registry/storage/fs"
	"github.com/lading-dev/lading/internal/registry/storage/s3"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/secrets"
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

// Server is an assembled registry and Harbor's layer, ready to serve. It
// holds the metadata database, to close it; the registry and the
// collector each take their roles of the metadata store, and Harbor's
// layer (Core) its services.
type Server struct {
	Config    Config
	Registry  *registry.Registry
	Collector *registry.Collector
	Core      *core.Core
	Driver    storage.Driver
	Meta      *meta.SQL
	DB        *sqldb.DB
	// Inspect reads artifacts' content for the web UI.
	Inspect *inspect.Service
	// UI is the web UI, nil when turned off.
	UI       *ui.Server
	log      *slog.Logger
	jobLog   *slog.Logger      // every job's lines, besides the job's stored log
	metrics  *registry.Metrics // nil when off
	metricsL net.Listener      // metrics.address, once listening
	cert     atomic.Pointer[tls.Certificate]
	forward  *syslog.Switch
	handler  http.Handler
	// Outbound is the policy for every target lading connects to.
	Outbound *outbound.Policy
	gate     *gate
	hooks    *hooks
	// scanning is registry-side scanning, when plugged in.
	scanning Scanning
	adapter  http.Handler
}

// Scanning is registry-side scanning (package scanning) as the server
// runs it: the registry asks it about pulls and tells it of pushes, the
// API serves its endpoints, /api/v1/ is its scanner adapter API, and Run
// works in the background while the server serves. It reaches the
// registry only through these interfaces, so that the registry does not
// depend on the scanner.
type Scanning interface {
	scanapi.Registry
	scanapi.Service
	Run(ctx context.Context)
}

// SetScanning plugs registry-side scanning in; call it before Serve.
func (s *Server) SetScanning(sc Scanning) {
	s.scanning = sc
	s.adapter = sc.Adapter()
	s.hooks.scanning = sc
	if s.gate != nil {
		s.gate.scanning = sc
	}
	s.Core.SetScanning(sc)
	if s.UI != nil {
		s.UI.SetScanning(sc)
		s.UI.SetScanners(sc)
	}
}

// ExternalURL is how clients (and external scanners) name the registry:
// external_url, else derived from the listen address.
func (s *Server) ExternalURL() string {
	if s.Config.ExternalURL != "" {
		return s.Config.ExternalURL
	}
	scheme := "http"
	if s.Config.TLS.Certificate != "" {
		scheme = "https"
	}
	return scheme + "://" + externalHost(s.Config)
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
	// Policies are more checks pushes, pulls and deletions must pass,
	// after read-only mode and the quota (see registry.Policy).
	Policies []registry.Policy
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
// and the library project; it imports auth.htpasswd's users. cfg must
// have had Defaults applied.
func Open(ctx context.Context, cfg Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cert *tls.Certificate
	if cfg.TLS.Certificate != "" {
		var err error
		if cert, err = loadCertificate(cfg.TLS); err != nil {
			return nil, err
		}
	}
	drv, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	db, locks, err := openDB(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	s := &Server{Config: cfg, Driver: drv, DB: db, forward: syslog.NewSwitch("lading", log)}
	s.cert.Store(cert)
	// Application, job and access logs also go to the audit log's
	// syslog collector when one is set (Harbor's log collector gathers
	// every component's logs), tagged app, job and access; a line
	// logged while serving a request carries its request id.
	s.log = slog.New(requestIDs{syslog.Tee{log.Handler(), syslog.NewHandler(s.forwardTarget, "app", slog.LevelInfo)}})
	s.jobLog = slog.New(requestIDs{syslog.Tee{log.Handler(), syslog.NewHandler(s.forwardTarget, "job", slog.LevelInfo)}})
	if err := s.assemble(ctx, o, locks); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openDB opens the metadata database and migrates it; it returns the
// database's collection locks too.
func openDB(ctx context.Context, c DatabaseConfig) (*sqldb.DB, meta.CollectionLocks, error) {
	var db *sqldb.DB
	var locks meta.CollectionLocks
	var err error
	if c.URL != "" {
		if db, err = postgres.Open(ctx, c.URL); err == nil {
			locks = metapostgres.Locks(db.SQL())
		}
	} else {
		if db, err = sqlite.Open(ctx, c.SQLite); err == nil {
			locks = metasqlite.Locks(c.SQLite)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if err := sqldb.Migrate(ctx, db, Migrations()); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, locks, nil
}

// assemble builds Harbor's layer and the registry, each told of the other
// through the registry's Gate and Events and the metadata store's Hooks.
func (s *Server) assemble(ctx context.Context, o Options, locks meta.CollectionLocks) error {
	cfg := s.Config
	noAuth := cfg.Auth.Mode == "none"
	var accessLog *slog.Logger
	if o.AccessLog != nil && (cfg.Log.Access == nil || *cfg.Log.Access) {
		accessLog = slog.New(syslog.Tee{slog.NewJSONHandler(o.AccessLog, nil), syslog.NewHandler(s.forwardTarget, "access", slog.LevelInfo)})
	}
	hooks := &hooks{}
	s.hooks = hooks
	s.Meta = meta.New(s.DB, meta.WithHooks(hooks), meta.WithCollectionLocks(locks))
	roots, err := rootCAs(cfg.Auth.CAFile)
	if err != nil {
		return err
	}
	allow, err := outbound.Parse(cfg.Outbound.Allow)
	if err != nil {
		return err
	}
	s.Outbound = allow
	c, err := core.New(ctx, s.DB, core.Options{
		Log: s.log, AccessLog: accessLog, Version: o.Version, TokenService: cfg.Auth.Token.Service,
		StorageProvider: s.Driver.Name(), NoAuth: noAuth, Health: s.health, RootCAs: roots,
		Outbound: allow, Jobs: jobs.Options{Workers: cfg.Jobs.Workers, Lease: cfg.Jobs.Lease, Poll: cfg.Jobs.Poll, Retention: cfg.Jobs.Retention, JobLog: s.jobLog},
		Secrets:     secrets.Options{KeyFile: cfg.Secrets.KeyFile, PreviousKeyFiles: cfg.Secrets.PreviousKeyFiles},
		Replication: replication.Options{Concurrency: cfg.Replication.Concurrency, Timeout: cfg.Replication.Timeout, Host: externalHost(cfg)},
		Proxy:       proxycache.Options{FreshnessTimeout: cfg.ProxyCache.FreshnessTimeout, Timeout: cfg.ProxyCache.Timeout},
		Hostname:    externalHost(cfg),
		Trust:       contenttrust.Options{Host: externalHost(cfg)},
	})
	if err != nil {
		return err
	}
	if err := setTrust(c, cfg.Trust); err != nil {
		c.Close()
		return err
	}
	hooks.core = c
	s.Core = c
	if err := c.Settings.SetOverrides(cfg.Settings); err != nil {
		c.Close()
		return err
	}
	ev := events{core: c, also: o.Events, host: externalHost(cfg)}
	opts := []registry.Option{
		registry.WithLogger(s.log),
		registry.WithLimits(registry.Limits{
			MaxManifestSize: cfg.Limits.MaxManifestSize,
			IdleTimeout:     deref(cfg.Limits.IdleTimeout),
		}),
		registry.WithEvents(ev),
		registry.WithUpstreams(upstreams{p: c.Proxy}),
	}
	if !noAuth {
		s.gate = &gate{core: c, realm: cfg.Auth.Token.Realm}
		checks := []registry.Policy{immutableTags{core: c, meta: s.Meta}, signatures{gate: s.gate}}
		checks = append(append(checks, o.Policies...), scanPolicy{g: s.gate})
		s.gate.Policies = policies(c, checks)
		opts = append(opts, registry.WithGate(s.gate))
	}
	if cfg.Metrics.Enabled == nil || *cfg.Metrics.Enabled {
		s.metrics = registry.NewMetrics()
		opts = append(opts, registry.WithMetrics(s.metrics))
		if cfg.Metrics.Address != "" {
			opts = append(opts, registry.WithoutMetricsRoute())
		}
	}
	if accessLog != nil {
		opts = append(opts, registry.WithAccessLog(accessLog))
	}
	s.Registry = registry.New(s.Driver, s.Meta, opts...)
	s.Collector = registry.NewCollector(s.Driver, s.Meta, opts...)
	c.SetRegistry(content{meta: s.Meta, reg: s.Registry, events: ev})
	c.Replication.SetLocal(local{reg: s.Registry, meta: s.Meta, core: c})
	c.Jobs.Register(proxycache.Definition(completeCache(s.Registry)))
	c.SetCollector(collector{s})
	c.Trust.SetContent(trustContent{meta: s.Meta, reg: s.Registry})
	if err := s.bootstrap(ctx); err != nil {
		c.Close()
		return err
	}
	s.Inspect = inspect.New(c.Artifacts, c.Projects, stored{meta: s.Meta, driver: s.Driver}, o.Analyzer)
	if !o.NoUI {
		s.UI, err = ui.New(ui.Services{Permissions: c.Access, Identity: c.Identity, Projects: c.Projects, Artifacts: c.Artifacts,
			Audit: c.Audit, Settings: c.Settings, Inspect: s.Inspect, Webhooks: c.Webhooks, Jobs: jobs.NewMonitor(c.Jobs, c.Access), Labels: c.Labels,
			Replication: c.Replication, GC: c.GC, LDAP: c.LDAP, OIDC: c.OIDC,
			Immutable: c.Immutable, Retention: c.Retention}, ui.Options{Log: s.log, Version: o.Version, NoAuth: noAuth})
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
	return s.importHtpasswd(ctx)
}

// importHtpasswd makes database users of the htpasswd file's users that
// are not users yet.
func (s *Server) importHtpasswd(ctx context.Context) error {
	file := s.Config.Auth.Htpasswd
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	users, err := s.Core.Identity.ImportHtpasswd(actor.System(ctx, "lading"), b)
	if err != nil {
		return fmt.Errorf("htpasswd %s: %w", file, err)
	}
	s.log.Info(fmt.Sprintf("htpasswd imported: %d new users", len(users)), "file", file, "users", strings.Join(users, ","))
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
		case strings.HasPrefix(p, "/api/v1/") && s.adapter != nil:
			w.Header().Set("X-Request-Id", api.RequestID(r))
			s.adapter.ServeHTTP(w, r)
		case s.UI != nil && ui.Owns(p):
			s.UI.ServeHTTP(w, r)
		default:
			s.Registry.ServeHTTP(w, r)
		}
	})
}

// Log is the server's application log: the Options' Log, and the syslog
// collector when one is set.
func (s *Server) Log() *slog.Logger { return s.log }

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

// loadCertificate loads the TLS certificate and key.
func loadCertificate(c TLSConfig) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.Certificate, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &cert, nil
}

// describe names a certificate in the log: its subject and when it ends.
func describe(c *tls.Certificate) string {
	if c == nil || c.Leaf == nil {
		return "(none)"
	}
	return fmt.Sprintf("%s, not after %s", c.Leaf.Subject, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Reload re-reads what SIGHUP reloads: the TLS certificate and key
// (handshakes from now on use them, open connections stay open), and,
// from cfg when given (the configuration file read again), the settings
// it fixes and the htpasswd users to import. What it changed goes to the
// log; a file that does not load leaves what was loaded in place, and the
// log and the error say why.
func (s *Server) Reload(cfg *Config) error {
	var errs []error
	ctx := context.Background()
	if cfg != nil {
		if err := s.Core.Settings.SetOverrides(cfg.Settings); err != nil {
			s.log.Error("settings reload failed, keeping the settings in force", "error", err)
			errs = append(errs, err)
		} else {
			s.Config.Settings = cfg.Settings
			s.log.Info(fmt.Sprintf("settings reloaded: %d fixed by the configuration", len(cfg.Settings)))
		}
		s.Config.Auth.Htpasswd = cfg.Auth.Htpasswd
		if err := setTrust(s.Core, cfg.Trust); err != nil {
			s.log.Error("trust reload failed, keeping the trusted signers in force", "error", err)
			errs = append(errs, err)
		} else {
			s.Config.Trust = cfg.Trust
			s.log.Info(fmt.Sprintf("trusted signers reloaded: %d projects fixed by the configuration", len(cfg.Trust.Projects)))
		}
	}
	if err := s.importHtpasswd(ctx); err != nil {
		s.log.Error("htpasswd import failed", "file", s.Config.Auth.Htpasswd, "error", err)
		errs = append(errs, err)
	}
	if s.Config.TLS.Certificate != "" {
		cert, err := loadCertificate(s.Config.TLS)
		if err != nil {
			s.log.Error("TLS certificate reload failed, keeping "+describe(s.cert.Load()), "certificate", s.Config.TLS.Certificate, "error", err)
			errs = append(errs, err)
		} else {
			s.cert.Store(cert)
			s.log.Info("TLS certificate reloaded: "+describe(cert), "certificate", s.Config.TLS.Certificate)
		}
	}
	return errors.Join(errs...)
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

// Close releases the storage (when its driver holds anything) and the
// database. Call it after Serve has returned.
func (s *Server) Close() error {
	var err error
	if c, ok := s.Driver.(io.Closer); ok {
		err = c.Close()
	}
	s.Core.Close()
	s.forward.Close()
	return errors.Join(err, s.DB.Close())
}

// ListenMetrics listens on metrics.address, ahead of Serve (which
// otherwise does it), and returns the address it listens on; nil when the
// configuration names none.
func (s *Server) ListenMetrics() (net.Addr, error) {
	if s.Config.Metrics.Address == "" || s.metrics == nil {
		return nil, nil
	}
	if s.metricsL == nil {
		l, err := net.Listen("tcp", s.Config.Metrics.Address)
		if err != nil {
			return nil, errdefs.Unavailable(fmt.Errorf("metrics listen %s: %w", s.Config.Metrics.Address, err))
		}
		s.metricsL = l
	}
	return s.metricsL.Addr(), nil
}

// serveMetrics serves /metrics on metrics.address until ctx ends.
func (s *Server) serveMetrics(ctx context.Context) error {
	if _, err := s.ListenMetrics(); err != nil || s.metricsL == nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("metrics listening", "address", s.metricsL.Addr().String())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(s.metricsL); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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

// Serve serves on l until ctx ends, then shuts down gracefully: it stops
// accepting connections, waits for the requests in flight (up to the
// configured shutdown timeout, then cuts them off and waits for their
// handlers to return), and only then returns, so that the caller may close
// the storage and the database. It runs the periodic garbage collector when
// the configuration asks for one.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var inFlight atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			s.handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// Requests in flight finish after ctx ends: a shutdown waits
		// for them rather than cancelling them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	useTLS := s.cert.Load() != nil
	if useTLS {
		// Each handshake takes the current certificate (Reload).
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		}
	}
	var wg sync.WaitGroup
	gcCtx, stopGC := context.WithCancel(ctx)
	defer func() { stopGC(); wg.Wait() }()
	if iv := s.Config.GC.Interval; iv > 0 {
		wg.Go(func() { s.periodicGC(gcCtx, iv) })
	}
	wg.Go(func() { s.Core.Run(actor.System(gcCtx, "housekeeping")) })
	if s.scanning != nil {
		wg.Go(func() { s.scanning.Run(actor.System(gcCtx, "scanning")) })
	}
	// Metrics are served until the registry has shut down.
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	metricsErr := make(chan error, 1)
	defer func() {
		stopMetrics()
		if err := <-metricsErr; err != nil {
			s.log.Error("metrics listener failed", "error", err)
		}
	}()
	if _, err := s.ListenMetrics(); err != nil {
		l.Close()
		metricsErr <- nil
		return err
	}
	go func() { metricsErr <- s.serveMetrics(metricsCtx) }()
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	s.log.Info("registry listening", "address", l.Addr().String(), "scheme", scheme,
		"storage", s.Driver.Name(), "auth", s.Config.Auth.Mode)
	served := make(chan error, 1)
	go func() {
		if useTLS {
			served <- srv.ServeTLS(l, "", "")
		} else {
			served <- srv.Serve(l)
		}
	}()
	select {
	case err := <-served:
		return err // never ErrServerClosed: only shutdown closes it
	case <-ctx.Done():
	}
	s.shutdown(srv, &inFlight)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown stops srv: it waits for the requests in flight up to the
// shutdown timeout, then closes their connections, which cancels their
// contexts, and waits (a while longer) for their handlers to return.
func (s *Server) shutdown(srv *http.Server, inFlight *atomic.Int64) {
	timeout := durationOr(s.Config.ShutdownTimeout, 30*time.Second)
	s.log.Info("shutting down", "requests_in_flight", inFlight.Load(), "timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn("shutdown timeout: cutting off the requests in flight", "requests_in_flight", inFlight.Load())
		srv.Close()
	}
	// Handlers of connections cut off notice their cancelled context at
	// their next read, write or query.
	for deadline := time.Now().Add(handlerGrace); inFlight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := inFlight.Load(); n > 0 {
		s.log.Error("requests still running after the shutdown; closing the database under them", "requests_in_flight", n)
	}
}

// handlerGrace is how long a shutdown waits for the handlers of requests
// it cut off to return.
const handlerGrace = 10 * time.Second

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
	rep, err := s.Collector.Collect(ctx, registry.GCOptions{
		Grace:     durationOr(s.Config.GC.Grace, registry.DefaultGrace),
		UploadTTL: deref(s.Config.GC.UploadTTL),
		DryRun:    dryRun,
	})
	if err != nil || dryRun {
		return rep, err
	}
	return rep, s.Core.Projects.Recount(ctx, s.Meta.ForEachLink)
}

// deref is a duration of the configuration, 0 when unset (the registry's
// own default then applies).
func deref(d *time.Duration) time.Duration { return durationOr(d, 0) }

// durationOr is a duration of the configuration, def when unset.
func durationOr(d *time.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return *d
}

// rootCAs is the system's roots plus those of file ("": nil, the
// system's).
func rootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("auth.ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}
