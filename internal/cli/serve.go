package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect/compute"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/scanning"
)

// serveFlags are the flags of "lading serve" and its subcommands; each one
// set on the command line overrides the configuration file.
type serveFlags struct {
	config        string
	address       string
	tlsCert       string
	tlsKey        string
	storage       string
	databaseURL   string
	htpasswd      string
	noAuth        bool
	token         bool
	anonymousRead bool
	gcInterval    time.Duration
	metricsAddr   string
	allowOutbound []string
	vulnDB        string
}

func newServeCommand(e *env) *cobra.Command {
	sf := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OCI distribution registry",
		Long: `Serve an OCI distribution (1.1) registry.

By default it listens on ` + server.DefaultAddress + `, keeps blobs under <root>/registry/content
and metadata in SQLite at <root>/registry/meta.db, and serves Harbor's layer with it:
users, robot accounts, projects with members and roles, quotas, the audit log, the
token service at /service/token and Harbor's REST API v2.0 at /api/v2.0. Repositories
are PROJECT/REPO. The first start creates the administrator "admin" (password from
$LADING_ADMIN_PASSWORD or auth.admin_password, else a random one written to
<root>/registry/initial-admin-password) and the public project "library".
--no-auth serves an open registry instead, for throwaway local use.
A YAML configuration file (--config) sets everything; the flags override it.
SIGHUP reloads the TLS certificate, the settings the file fixes and the htpasswd
import. See the Registry section of README.md.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.load(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := serveLog(cmd, e)
			// The web UI's artifact pages analyze images with lading's own
			// analyzer, sharing the per-layer cache of the CLI's root.
			lc, err := cache.Open(filepath.Join(cfg.Root, "cache", "layers"))
			if err != nil {
				return err
			}
			srv, err := server.Open(ctx, cfg, server.Options{Log: log, AccessLog: e.stderr, Version: ladingVersion(),
				Analyzer: compute.New(compute.WithCache(lc), compute.WithLogger(log))})
			if err != nil {
				return err
			}
			defer srv.Close()
			// The server's log: JSON on stderr, and the syslog
			// collector when one is set.
			log = srv.Log()
			// SIGHUP reloads credentials and the certificate, as nginx
			// and Distribution do; it no longer ends the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						// The configuration file read again; the
						// certificate is reloaded even if it does
						// not load.
						next, err := sf.load(cmd, e)
						if err != nil {
							log.Error("configuration reload failed, keeping the settings in force", "error", err)
							srv.Reload(nil)
							continue
						}
						srv.Reload(&next) // logs what it did
					}
				}
			}()
			l, err := net.Listen("tcp", cfg.Address)
			if err != nil {
				return errdefs.Unavailable(fmt.Errorf("listen %s: %w", cfg.Address, err))
			}
			scheme := "http"
			if cfg.TLS.Certificate != "" {
				scheme = "https"
			}
			maddr, err := srv.ListenMetrics()
			if err != nil {
				l.Close()
				return err
			}
			// Registry-side scanning: the scanner reaches the registry
			// only through the interfaces server.Scanning names.
			sc, err := scanning.Attach(ctx, srv, scanning.Options{Log: log, Version: ladingVersion(), RegistryURL: registryURL(cfg, scheme, l.Addr())})
			if err != nil {
				l.Close()
				return err
			}
			defer sc.Close()
			log.Info(fmt.Sprintf("registry serving on %s://%s (storage %s, auth %s)", scheme, l.Addr(), srv.Driver.Name(), cfg.Auth.Mode))
			if maddr != nil {
				log.Info(fmt.Sprintf("metrics on http://%s/metrics", maddr))
			}
			return srv.Serve(ctx, l)
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&sf.config, "config", "", "YAML configuration file")
	f.StringVar(&sf.address, "address", "", "listen address (default "+server.DefaultAddress+")")
	f.StringVar(&sf.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS")
	f.StringVar(&sf.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.StringVar(&sf.storage, "storage", "", "blob storage: a directory, or s3://bucket[/prefix]?endpoint=host:port[&region=r][&insecure=true][&create=true]")
	f.StringVar(&sf.databaseURL, "database-url", "", "PostgreSQL URL for metadata (default: SQLite under the root)")
	f.StringVar(&sf.htpasswd, "htpasswd", "", "htpasswd file (bcrypt) whose users are imported as database users")
	f.BoolVar(&sf.noAuth, "no-auth", false, "serve an open registry: no users, anyone pushes and pulls anywhere (auth.mode: none)")
	f.BoolVar(&sf.token, "token-auth", false, "")
	f.BoolVar(&sf.anonymousRead, "anonymous-read", false, "")
	f.MarkDeprecated("token-auth", "the token service is always on, at /service/token")
	f.MarkHidden("anonymous-read")
	f.DurationVar(&sf.gcInterval, "gc-interval", 0, "run garbage collection this often (0: never)")
	f.StringVar(&sf.metricsAddr, "metrics-address", "", "serve /metrics on this address only, not on the registry's")
	f.StringArrayVar(&sf.allowOutbound, "allow-outbound", nil, "let outbound targets (webhooks...) reach this CIDR although it is loopback, private, link-local or cloud metadata (repeatable; config outbound.allow)")
	f.StringVar(&sf.vulnDB, "vuln-db", "", "vulnerability database file for scanning, as lading db build writes it (config scan.db; default <root>/registry/vuln.db)")

	cmd.AddCommand(newServeGCCommand(e, sf))
	return cmd
}

// serveLog is the log of "lading serve": JSON lines on stderr, as the
// access log and as Harbor's components log for its log collector, at
// info unless --log-level says otherwise (a server says what it does:
// listening, reloads, shutting down).
func serveLog(cmd *cobra.Command, e *env) *slog.Logger {
	level := slog.LevelInfo
	if cmd.Flag("log-level").Changed {
		level.UnmarshalText([]byte(e.logLevel)) // checked when the command started
	}
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// registryURL is how external scanners reach the registry: external_url,
// else the address it listens on.
func registryURL(cfg server.Config, scheme string, addr net.Addr) string {
	if cfg.ExternalURL != "" {
		return cfg.ExternalURL
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		return scheme + "://" + addr.String()
	}
	return ""
}

// load reads the configuration file, applies the flags set, and fills the
// defaults.
func (sf *serveFlags) load(cmd *cobra.Command, e *env) (server.Config, error) {
	var cfg server.Config
	if sf.config != "" {
		var err error
		if cfg, err = server.LoadConfig(sf.config); err != nil {
			return cfg, err
		}
	}
	set := cmd.Flags().Changed
	if set("address") {
		cfg.Address = sf.address
	}
	if set("tls-cert") {
		cfg.TLS.Certificate = sf.tlsCert
	}
	if set("tls-key") {
		cfg.TLS.Key = sf.tlsKey
	}
	if set("storage") {
		if err := server.ParseStorageFlag(sf.storage, &cfg.Storage); err != nil {
			return cfg, usageError{err}
		}
	}
	if set("database-url") {
		cfg.Database.URL = sf.databaseURL
	}
	if set("htpasswd") {
		cfg.Auth.Htpasswd = sf.htpasswd
	}
	if set("no-auth") && sf.noAuth {
		cfg.Auth.Mode = "none"
	}
	if set("anonymous-read") {
		return cfg, usageError{errdefs.InvalidArgument(errors.New("--anonymous-read is replaced by public projects: anonymous callers pull from projects whose metadata.public is true (library is public)"))}
	}
	if set("gc-interval") {
		cfg.GC.Interval = sf.gcInterval
	}
	if set("metrics-address") {
		cfg.Metrics.Address = sf.metricsAddr
	}
	if set("allow-outbound") {
		cfg.Outbound.Allow = append(cfg.Outbound.Allow, sf.allowOutbound...)
	}
	if set("vuln-db") {
		cfg.Scan.DB = sf.vulnDB
	}
	cfg.Defaults(e.root)
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func newServeGCCommand(e *env, sf *serveFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Collect the registry's garbage once (safe while it serves)",
		Long: `Delete blobs that no manifest references and that nothing touched within the grace
window (gc.grace, default 1h), content no metadata names, and upload sessions idle
longer than gc.upload_ttl (default 24h). It is safe while "lading serve" runs on
the same storage and database. --dry-run reports without deleting.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.load(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			srv, err := server.Open(ctx, cfg, server.Options{Log: e.log})
			if err != nil {
				return err
			}
			defer srv.Close()
			rep, err := srv.CollectGarbage(ctx, dryRun)
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(e.stdout, "%s %d unreferenced blobs and %d orphaned blobs (%d bytes), %d expired uploads, %d chunk directories, %d temporary files\n",
				verb, rep.BlobsDeleted, rep.OrphansDeleted, rep.BytesDeleted, rep.UploadsExpired, rep.ChunkDirs, rep.TempPurged)
			if dryRun {
				for _, d := range rep.Digests {
					fmt.Fprintln(e.stdout, d)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be deleted; delete nothing")
	return cmd
}

// noArgs is cobra.NoArgs as a usage error (exit code 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{errdefs.InvalidArgument(err)}
	}
	return nil
}
