package analyze

import (
	"context"
	"log/slog"
	"runtime"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/cache"
)

// Option configures [Image] and [Layers].
type Option func(*options)

type options struct {
	cache     Cache
	analyzers []analyzer.Analyzer
	log       *slog.Logger
	scratch   analyzer.Scratch
	parallel  int
	name      string
	mode      Mode
}

func makeOptions(opts []Option) *options {
	o := &options{analyzers: Default(), parallel: defaultParallel(), mode: ModeImage}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.parallel < 1 {
		o.parallel = 1
	}
	return o
}

// defaultParallel is how many layers are read at once by default: one per
// CPU, at most four (decompression is CPU-bound; more only costs memory).
func defaultParallel() int { return min(runtime.GOMAXPROCS(0), 4) }

// Cache keeps per-layer results between analyses: package cache on disk
// (lading's commands), or the registry's metadata database (lading serve,
// where every replica shares it). Entries are keyed as package cache
// describes; what an entry holds for a key never changes meaning.
type Cache interface {
	// Get returns the entry for k; ok is false when there is none.
	Get(ctx context.Context, k cache.Key) (data []byte, ok bool, err error)
	// PutAll stores several parts of one layer's results.
	PutAll(ctx context.Context, layer string, parts map[string][]byte) error
	// MaybeTrim keeps the cache within its bounds; it is called after
	// results were stored and may do nothing.
	MaybeTrim(ctx context.Context) (int64, error)
}

var _ Cache = (*cache.Cache)(nil)

// WithCache keeps per-layer results in c and reuses them (default: no
// cache). A nil c means no cache.
func WithCache(c Cache) Option {
	return func(o *options) {
		if dc, ok := c.(*cache.Cache); ok && dc == nil {
			c = nil
		}
		o.cache = c
	}
}

// WithAnalyzers sets the analyzers to run (default: [Default]()).
func WithAnalyzers(as ...analyzer.Analyzer) Option {
	return func(o *options) { o.analyzers = as }
}

// WithLogger sets where debug messages go (cache hits, layers read);
// warnings are returned in the Inventory.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithTempDir sets where large files are buffered (default os.TempDir()).
func WithTempDir(dir string) Option { return func(o *options) { o.scratch.Dir = dir } }

// WithMemLimit sets the size up to which a file an analyzer reads whole is
// kept in memory; larger files go to a temporary file (default
// analyzer.DefaultMemLimit).
func WithMemLimit(n int64) Option { return func(o *options) { o.scratch.MemLimit = n } }

// WithParallel sets how many layers are read at once (default: one per
// CPU, at most 4).
func WithParallel(n int) Option { return func(o *options) { o.parallel = n } }

// Mode says what an analysis reports.
type Mode = string

// The modes.
const (
	// ModeImage reports what is installed, as Trivy and Syft do for
	// images and root filesystems: OS packages, node_modules, Python
	// metadata, gems' specifications, Go and Rust binaries, jars. Lockfiles
	// and manifests (package-lock.json, go.mod, requirements.txt) are left
	// out: they say what a source tree asked for, not what is there.
	ModeImage Mode = "image"
	// ModeFS reports a source tree: its declarations (lockfiles,
	// manifests) as well as whatever is installed in it.
	ModeFS Mode = "fs"
)

// WithMode sets what is reported (default ModeImage). Layer results and
// the cache are the same for both modes; the mode applies when they are
// merged.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithName sets how messages name the image.
func WithName(name string) Option { return func(o *options) { o.name = name } }
