// Package scanning is lading serve's registry-side scanning: Harbor's
// scan on push, manual scans and stops, the scan of all artifacts, scan
// overviews and full reports, SBOM accessories, CVE allowlists, the
// vulnerability prevention policy, scanner registrations (the Pluggable
// Scanner API as a client), the scanner adapter API (as a server), and the
// vulnerability database the registry keeps up to date, after which every
// stored report is re-evaluated.
//
// # Reading images
//
// The built-in scanner reads manifests and layers straight from the
// registry's storage (Content): an image is a go-containerregistry
// v1.Image over verified blob readers (package image/content), never an
// HTTP pull. Each layer is analyzed once for the whole registry: per-layer
// results live in the metadata database (scan_layers), shared by every
// replica, keyed by the digest of the layer blob as the registry verified
// it on upload and the analyzer's version. A config's diffID is a claim of
// whoever pushed the image and keys nothing: the cache is asked by blob
// digest (layerCache). Scans are jobs of the job service (IMAGE_SCAN,
// SCAN_ALL), so they survive restarts and run once across replicas.
//
// # Reports
//
// A report (scan_reports) holds, per artifact digest, scanner and scan
// type, the scan's status and times, its verdict (highest severity,
// summary, compact findings for the prevention policy), the inventory and
// the matcher's inputs. The full vulnerability report is computed from
// the inventory with the database in force when asked; after the
// database changes, every report's verdict is recomputed from its stored
// inputs without reading a layer (SCAN_REEVALUATION), and artifacts whose
// verdict changed raise SCANNING_COMPLETED webhooks (operator "lading").
//
// Authorization follows Harbor's matrix (package access): scan create and
// stop, scan and artifact-addition read, sbom create, scanner and
// scan-all at system level, project update for a project's allowlist.
package scanning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/token"
	"github.com/lading-dev/lading/internal/webhook"
)

// Manifest is a manifest as Content returns it.
type Manifest struct {
	Digest    string
	MediaType string
	Body      []byte
}

// Content is what the scanner asks of the registry: in-process reads of a
// repository's manifests and verified blobs, and pushes (SBOM
// accessories).
type Content interface {
	Manifest(ctx context.Context, repo, ref string) (Manifest, error)
	// OpenBlob opens the blob dgst of repo; the reader fails at its end
	// when the content does not match the digest.
	OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error)
	PushBlob(ctx context.Context, repo, dgst string, size int64, r io.Reader) error
	PushManifest(ctx context.Context, repo, mediaType string, body []byte, user string) (string, error)
	DeleteManifest(ctx context.Context, repo, dgst string) error
}

// Deps are the services scanning works with.
type Deps struct {
	DB        *sqldb.DB
	Access    *access.Checker
	Projects  *project.Service
	Artifacts *artifact.Service
	Identity  *identity.Service
	Audit     *audit.Log
	Jobs      *jobs.Queue
	Tasks     *task.Manager
	Webhooks  *webhook.Service
	Tokens    *token.Issuer
	Content   Content
	// Storage keeps the vulnerability database's versions for the other
	// replicas (the registry's blob storage); nil: this process only.
	Storage storage.Driver
	// Outbound decides what external scanners and remote registries may
	// be reached.
	Outbound *outbound.Policy
}

// Source is where the vulnerability database is updated from.
type Source struct {
	// Repository is an OCI reference of a database that lading db push
	// pushed: "project/repo:tag" in this registry (read from storage), or
	// "host[:port]/repo:tag" elsewhere.
	Repository string
	// Feeds are feed files and directories to build it from (lading db
	// build --from).
	Feeds []string
	// Schedule is a cron expression (six fields, or @hourly, @daily...);
	// "" updates only at start when there is no database.
	Schedule string
	// Offline refuses any network access: Repository must be in this
	// registry.
	Offline bool
	// Insecure allows plain HTTP and unverified TLS to a remote registry.
	Insecure bool
}

// Options configure scanning.
type Options struct {
	Log *slog.Logger
	// DBFile is the vulnerability database (lading db build's file, used
	// as is); updates replace it.
	DBFile string
	Source Source
	// MaxLayerSize bounds the uncompressed size of one layer (a
	// decompression bomb ends the scan as Error); default 8 GiB.
	MaxLayerSize int64
	// Parallel is how many layers one scan reads at once; default 2.
	Parallel int
	// Concurrency bounds the scans running at once across replicas;
	// default 4.
	Concurrency int
	// Timeout bounds one scan attempt; default 30 minutes.
	Timeout time.Duration
	// CacheSize bounds the layer results kept (bytes); default 1 GiB.
	CacheSize int64
	// AdapterAuth and AdapterCredential are the scanner adapter API's own
	// credentials (Basic "user:password", Bearer, X-ScannerAdapter-API-Key),
	// besides the users and robots of the registry.
	AdapterAuth, AdapterCredential string
	// Version is lading's version (the scanner's).
	Version string
	// RegistryURL is how external scanners reach this registry
	// (external_url); default derived from requests is not possible, so
	// external scanners need it.
	RegistryURL string
	// TempDir is where large files are buffered during analysis.
	TempDir string
}

// The job kinds.
const (
	KindScan       = "IMAGE_SCAN"
	KindScanAll    = "SCAN_ALL"
	KindUpdateDB   = "VULNDB_UPDATE"
	KindReevaluate = "SCAN_REEVALUATION"
	KindAdapter    = "SCANNER_ADAPTER_SCAN"
)

// Service is registry-side scanning.
type Service struct {
	d      Deps
	opt    Options
	log    *slog.Logger
	keeper *keeper
	layers *layerCache

	mu      sync.Mutex
	metaTTL map[string]cachedMeta // scanner metadata by registration
}

var (
	_ scanapi.Service  = (*Service)(nil)
	_ scanapi.Registry = (*Service)(nil)
)

// New returns the scanning service and registers its kinds of job with
// d.Jobs. It opens the database file when there is one.
func New(ctx context.Context, d Deps, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxLayerSize <= 0 {
		o.MaxLayerSize = 8 << 30
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 1 << 30
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if err := adapter.CheckAuth(o.AdapterAuth, o.AdapterCredential); err != nil {
		return nil, fmt.Errorf("scan.adapter: %w", err)
	}
	if err := o.Source.check(); err != nil {
		return nil, err
	}
	s := &Service{d: d, opt: o, log: o.Log, metaTTL: map[string]cachedMeta{}}
	s.layers = &layerCache{db: d.DB, max: o.CacheSize}
	s.keeper = &keeper{s: s, path: o.DBFile}
	if err := s.keeper.open(ctx); err != nil {
		return nil, err
	}
	if err := s.ensureBuiltin(ctx); err != nil {
		return nil, err
	}
	s.register()
	if err := s.schedule(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (src Source) check() error {
	if src.Repository != "" && len(src.Feeds) > 0 {
		return errors.New("scan.db_source: give a repository or feeds, not both")
	}
	if src.Repository != "" {
		if _, remote := splitRepository(src.Repository); remote && src.Offline {
			return fmt.Errorf("scan.db_source: %s is in another registry, but offline is set: name a repository of this registry (project/repo:tag) or feed directories", src.Repository)
		}
	}
	if src.Schedule != "" {
		if _, err := jobs.ParseCron(cronOf(src.Schedule)); err != nil {
			return fmt.Errorf("scan.db_source.schedule: %w", err)
		}
	}
	return nil
}

// register defines the kinds of job.
func (s *Service) register() {
	q := s.d.Jobs
	q.Register(jobs.Definition{Kind: KindScan, Run: jobs.Func(s.runScan), Concurrency: s.opt.Concurrency, MaxAttempts: 3, Timeout: s.opt.Timeout})
	q.Register(jobs.Definition{Kind: KindScanAll, Run: jobs.Func(s.runScanAll), Concurrency: 1, MaxAttempts: 3, Timeout: time.Hour})
	q.Register(jobs.Definition{Kind: KindUpdateDB, Run: jobs.Func(s.runUpdate), Concurrency: 1, MaxAttempts: 3, Timeout: time.Hour})
	q.Register(jobs.Definition{Kind: KindReevaluate, Run: jobs.Func(s.runReevaluate), Concurrency: 1, MaxAttempts: 10, Timeout: time.Hour})
	q.Register(jobs.Definition{Kind: KindAdapter, Run: jobs.Func(s.runAdapterScan), Concurrency: s.opt.Concurrency, MaxAttempts: 3, Timeout: s.opt.Timeout})
}

// Run keeps this replica's vulnerability database in step with the one in
// force (another replica may have updated it) until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.keeper.sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("vulnerability database: cannot follow the version in force", "error", err)
		}
		if _, err := s.layers.MaybeTrim(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("trimming the layer cache", "error", err)
		}
	}
}

// Close releases the vulnerability database.
func (s *Service) Close() error { return s.keeper.close() }

// Adapter serves the Pluggable Scanner API.
func (s *Service) Adapter() http.Handler { return adapter.Handler(&adapterBackend{s: s}, s.log) }

// system is lading acting on its own behalf.
var system = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

// scanner is the built-in scanner as reports name it.
func (s *Service) scanner() adapter.Scanner {
	return adapter.Scanner{Name: "lading", Vendor: "lading", Version: s.opt.Version}
}
