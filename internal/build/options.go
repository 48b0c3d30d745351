package build

import (
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/image"
)

// Option configures a Builder.
type Option func(*options)

type options struct {
	target    string
	buildArgs map[string]string
	platform  *v1.Platform
	noCache   bool
	network   string
	epoch     *time.Time
	imageOpts []image.Option
	log       *slog.Logger
	out       io.Writer
	tmpDir    string
	runner    Runner
	cacheDir  string
}

// WithTarget builds the named stage (default: the last one).
func WithTarget(stage string) Option { return func(o *options) { o.target = stage } }

// WithBuildArgs sets --build-arg values.
func WithBuildArgs(args map[string]string) Option {
	return func(o *options) { o.buildArgs = args }
}

// WithPlatform sets the target platform (default: this machine's).
func WithPlatform(p *v1.Platform) Option { return func(o *options) { o.platform = p } }

// WithNoCache makes every step run again (results are still cached).
func WithNoCache(b bool) Option { return func(o *options) { o.noCache = b } }

// WithNetwork sets the network of RUN steps: "none" (default) or "host".
func WithNetwork(n string) Option { return func(o *options) { o.network = n } }

// WithSourceDateEpoch clamps file times in new layers and sets every new
// history entry's and the config's created time to t.
func WithSourceDateEpoch(t time.Time) Option {
	return func(o *options) { t = t.UTC(); o.epoch = &t }
}

// WithImageOptions sets the options base images are opened with
// (credentials, insecure registries, progress).
func WithImageOptions(opts ...image.Option) Option {
	return func(o *options) { o.imageOpts = append(o.imageOpts, opts...) }
}

// WithLogger sets where warnings go.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithOutput sets where the steps are printed as they run.
func WithOutput(w io.Writer) Option { return func(o *options) { o.out = w } }

// WithTempDir sets where temporary files go.
func WithTempDir(dir string) Option { return func(o *options) { o.tmpDir = dir } }

// WithRunner sets what runs RUN steps. Without one a RUN step fails saying
// so.
func WithRunner(r Runner) Option { return func(o *options) { o.runner = r } }

// WithCacheDir sets the step cache's directory (default
// <store root>/cache/build). An empty dir disables the cache.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }
