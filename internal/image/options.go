package image

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/store"
)

// Option configures Open, Write and Save.
type Option func(*options)

type options struct {
	store        *store.Store
	platform     *v1.Platform
	allPlatforms bool
	keychain     authn.Keychain
	insecure     bool
	transport    http.RoundTripper
	progress     progress.Reporter
	log          *slog.Logger
	tmpDir       string
	jobs         int
	compression  Compression
	daemonHost   string
}

// Compression says what a sink does with layer compression.
type Compression string

// Compression choices.
const (
	// CompressAuto keeps layers as they are, except that a registry gets
	// uncompressed layers gzipped (as docker push does).
	CompressAuto Compression = ""
	// CompressKeep never changes a layer.
	CompressKeep Compression = "keep"
	// CompressGzip makes every layer gzip.
	CompressGzip Compression = "gzip"
	// CompressZstd makes every layer zstd (and the manifest OCI).
	CompressZstd Compression = "zstd"
)

func makeOptions(opts []Option) *options {
	o := &options{
		keychain: authn.DefaultKeychain,
		progress: progress.Nop{},
		log:      slog.New(slog.DiscardHandler),
		jobs:     runtime.GOMAXPROCS(0) * 2,
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if o.insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		o.transport = t
	}
	if o.jobs < 1 {
		o.jobs = 1
	}
	return o
}

// WithStore gives the local store, for local references and for bare names
// that the store has.
func WithStore(s *store.Store) Option { return func(o *options) { o.store = s } }

// WithPlatform selects the platform an index resolves to (default: this
// machine's).
func WithPlatform(p *v1.Platform) Option { return func(o *options) { o.platform = p } }

// WithAllPlatforms keeps a whole index where a sink can hold one.
func WithAllPlatforms(all bool) Option { return func(o *options) { o.allPlatforms = all } }

// WithKeychain sets where registry credentials come from (default: docker's
// config.json and credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithInsecure allows plain HTTP and unverified TLS for registries.
func WithInsecure(b bool) Option { return func(o *options) { o.insecure = b } }

// WithTransport sets the HTTP transport for registries and the daemon.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithProgress reports blob transfers.
func WithProgress(p progress.Reporter) Option {
	return func(o *options) {
		if p != nil {
			o.progress = p
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithTempDir sets where temp files go (decompressed archives and layers).
func WithTempDir(dir string) Option { return func(o *options) { o.tmpDir = dir } }

// WithJobs sets how many blobs move at once.
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithCompression sets what sinks do with layer compression.
func WithCompression(c Compression) Option { return func(o *options) { o.compression = c } }

// WithDaemonHost sets the Docker Engine address (default $DOCKER_HOST or
// unix:///var/run/docker.sock).
func WithDaemonHost(h string) Option { return func(o *options) { o.daemonHost = h } }

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return nil, errdefs.InvalidArgument(errorf("platform %q: want os/arch[/variant], such as linux/arm64/v8", s))
	}
	return p, nil
}

// ParseCompression parses a --compress value.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case CompressAuto, CompressKeep, CompressGzip, CompressZstd:
		return c, nil
	case "auto":
		return CompressAuto, nil
	}
	return "", errdefs.InvalidArgument(errorf("compression %q: want auto, keep, gzip or zstd", s))
}
