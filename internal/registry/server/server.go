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
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/meta/postgres"
	"github.com/lading-dev/lading/internal/registry/meta/sqlite"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/registry/storage/fs"
	"github.com/lading-dev/lading/internal/registry/storage/s3"
)

// Server is an assembled registry, ready to serve. It holds the whole
// metadata store, to close it; the registry and the collector each take
// their roles of it.
type Server struct {
	Config    Config
	Registry  *registry.Registry
	Collector *registry.Collector
	Driver    storage.Driver
	Meta      meta.Store
	log       *slog.Logger
	metrics   *registry.Metrics // nil when off
	metricsL  net.Listener      // metrics.address, once listening
	auth      *registry.Auth    // nil when open
	cert      atomic.Pointer[tls.Certificate]
}

// Options are what a Server needs besides its configuration.
type Options struct {
	// Log receives operational messages.
	Log *slog.Logger
	// AccessLog receives one JSON record per request when the
	// configuration's log.access is on (the default).
	AccessLog io.Writer
	// Notifier hears about pushes (scan-on-push); default none.
	Notifier registry.Notifier
}

// Open opens the storage and the database the configuration names and
// builds the registry over them. cfg must have had Defaults applied.
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
	var store meta.Store
	if cfg.Database.URL != "" {
		store, err = postgres.Open(ctx, cfg.Database.URL)
	} else {
		store, err = sqlite.Open(ctx, cfg.Database.SQLite)
	}
	if err != nil {
		return nil, err
	}
	opts := []registry.Option{
		registry.WithLogger(log),
		registry.WithLimits(registry.Limits{
			MaxManifestSize: cfg.Limits.MaxManifestSize,
			IdleTimeout:     deref(cfg.Limits.IdleTimeout),
		}),
	}
	if o.Notifier != nil {
		opts = append(opts, registry.WithNotifier(o.Notifier))
	}
	var auth *registry.Auth
	if cfg.Auth.Htpasswd != "" {
		if auth, err = openAuth(cfg.Auth, log); err != nil {
			store.Close()
			return nil, err
		}
		opts = append(opts, registry.WithAuth(auth))
	}
	var cert *tls.Certificate
	if cfg.TLS.Certificate != "" {
		if cert, err = loadCertificate(cfg.TLS); err != nil {
			store.Close()
			return nil, err
		}
	}
	var metrics *registry.Metrics
	if cfg.Metrics.Enabled == nil || *cfg.Metrics.Enabled {
		metrics = registry.NewMetrics()
		opts = append(opts, registry.WithMetrics(metrics))
		if cfg.Metrics.Address != "" {
			opts = append(opts, registry.WithoutMetricsRoute())
		}
	}
	if o.AccessLog != nil && (cfg.Log.Access == nil || *cfg.Log.Access) {
		opts = append(opts, registry.WithAccessLog(slog.New(slog.NewJSONHandler(o.AccessLog, nil))))
	}
	s := &Server{
		Config:    cfg,
		Registry:  registry.New(drv, store, opts...),
		Collector: registry.NewCollector(drv, store, opts...),
		Driver:    drv,
		Meta:      store,
		log:       log,
		metrics:   metrics,
		auth:      auth,
	}
	s.cert.Store(cert)
	return s, nil
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

// Reload re-reads the htpasswd file and the TLS certificate and key, as
// SIGHUP asks: requests and TLS handshakes from now on use them, while
// open connections stay open. What it changed goes to the log; a file that
// does not load leaves what was loaded in place, and the log and the error
// say why.
func (s *Server) Reload() error {
	var errs []error
	if s.auth != nil {
		file := s.Config.Auth.Htpasswd
		b, err := registry.ReadHtpasswd(file)
		var ch registry.HtpasswdChange
		if err == nil {
			ch, err = s.auth.ReloadHtpasswd(b)
		}
		if err != nil {
			s.log.Error(fmt.Sprintf("htpasswd reload failed, keeping %d users", s.auth.Users()), "file", file, "error", err)
			errs = append(errs, err)
		} else {
			s.log.Info("htpasswd reloaded: "+ch.String(), "file", file)
		}
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
	if s.auth == nil && s.Config.TLS.Certificate == "" {
		s.log.Info("nothing to reload: no htpasswd file, no TLS certificate")
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

func openAuth(c AuthConfig, log *slog.Logger) (*registry.Auth, error) {
	pw, err := registry.ReadHtpasswd(c.Htpasswd)
	if err != nil {
		return nil, err
	}
	ac := registry.AuthConfig{Htpasswd: pw, AnonymousRead: c.AnonymousRead, Rules: c.Access}
	if c.Token.Enabled {
		tc := &registry.TokenConfig{Service: c.Token.Service, Realm: c.Token.Realm, TTL: deref(c.Token.TTL)}
		if c.Token.KeyFile != "" {
			if tc.Key, err = os.ReadFile(c.Token.KeyFile); err != nil {
				return nil, fmt.Errorf("token key: %w", err)
			}
		}
		ac.Token = tc
	}
	return registry.NewAuth(ac, log)
}

// Close releases the storage (when its driver holds anything) and the
// database. Call it after Serve has returned.
func (s *Server) Close() error {
	var err error
	if c, ok := s.Driver.(io.Closer); ok {
		err = c.Close()
	}
	return errors.Join(err, s.Meta.Close())
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
			s.Registry.ServeHTTP(w, r)
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
		"storage", s.Driver.Name(), "auth", s.Config.Auth.Htpasswd != "", "token", s.Config.Auth.Token.Enabled)
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

// CollectGarbage runs one collection with the configured grace and TTL.
func (s *Server) CollectGarbage(ctx context.Context, dryRun bool) (registry.GCReport, error) {
	return s.Collector.Collect(ctx, registry.GCOptions{
		Grace:     durationOr(s.Config.GC.Grace, registry.DefaultGrace),
		UploadTTL: deref(s.Config.GC.UploadTTL),
		DryRun:    dryRun,
	})
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
