// Package update keeps the local vulnerability database current: it
// downloads the public feeds and builds the database from them, or pulls a
// prebuilt database from an OCI registry when a repository is configured.
//
// Downloads go to DIR/feeds/NAME/FILE beside the database, with the
// server's ETag and Last-Modified beside them, so that the next update asks
// only for what changed. A feed that cannot be downloaded is built from its
// previous download when there is one (with a warning); without one the
// update fails and the database stays as it was.
package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	yaml "go.yaml.in/yaml/v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
	"github.com/lading-dev/lading/internal/vulndb/oci"
)

// Config says where updates come from. In YAML:
//
//	# pull a prebuilt database instead of building one
//	repository: registry.example.com/security/lading-db:1
//	# the feeds to download and build from (default: DefaultConfig's)
//	feeds:
//	  - name: osv-Go
//	    url: https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip
//	  - name: debian-tracker
//	    url: https://security-tracker.debian.org/tracker/data/json
//	    format: debian-json    # optional; recognized from the content otherwise
type Config struct {
	Repository string `yaml:"repository,omitempty"`
	Insecure   bool   `yaml:"insecure,omitempty"` // plain HTTP to the repository's registry
	Feeds      []Feed `yaml:"feeds"`
}

// Feed is one download.
type Feed struct {
	Name   string      `yaml:"name"`
	URL    string      `yaml:"url"`
	Format feed.Format `yaml:"format,omitempty"`
}

// OSVBase is where osv.dev publishes its per-ecosystem zips.
const OSVBase = "https://osv-vulnerabilities.storage.googleapis.com"

// osvEcosystems are the OSV ecosystems downloaded by default: the language
// ecosystems lading's analyzers find and the distributions OSV covers best
// (Ubuntu's own OSV data among them).
var osvEcosystems = []string{
	"Go", "PyPI", "npm", "Maven", "crates.io", "RubyGems", "Packagist", "NuGet", "Hex", "Pub",
	"AlmaLinux", "Rocky Linux", "Ubuntu", "Wolfi", "Chainguard",
}

// alpineReleases are the secdb releases downloaded by default.
var alpineReleases = []string{"v3.12", "v3.13", "v3.14", "v3.15", "v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "edge"}

// DefaultConfig downloads osv.dev's zips, Alpine's secdb and the Debian
// security tracker's JSON.
func DefaultConfig() Config {
	var c Config
	for _, e := range osvEcosystems {
		c.Feeds = append(c.Feeds, Feed{Name: "osv-" + strings.ReplaceAll(e, " ", "-"), URL: OSVBase + "/" + url.PathEscape(e) + "/all.zip", Format: feed.OSV})
	}
	for _, r := range alpineReleases {
		for _, repo := range []string{"main", "community"} {
			c.Feeds = append(c.Feeds, Feed{Name: "alpine-" + r + "-" + repo, URL: "https://secdb.alpinelinux.org/" + r + "/" + repo + ".json", Format: feed.Alpine})
		}
	}
	c.Feeds = append(c.Feeds, Feed{Name: "debian-tracker", URL: "https://security-tracker.debian.org/tracker/data/json", Format: feed.DebianJSON})
	return c
}

// DefaultConfigPath is $XDG_CONFIG_HOME/lading/db.yaml (or
// ~/.config/lading/db.yaml).
func DefaultConfigPath() string {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "lading", "db.yaml")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".config", "lading", "db.yaml")
	}
	return ""
}

// LoadConfig reads a configuration file. Feeds it does not list are the
// default ones.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, errdefs.NotFound(fmt.Errorf("update configuration %s: %w", path, err))
		}
		return Config{}, err
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Config{}, errdefs.InvalidArgument(fmt.Errorf("update configuration %s: %v", path, err))
	}
	if c.Feeds == nil {
		c.Feeds = DefaultConfig().Feeds
	}
	return c, c.Validate()
}

var feedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the feeds: names usable as directory names and unique,
// http(s) URLs, known formats.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, f := range c.Feeds {
		if !feedName.MatchString(f.Name) || seen[f.Name] {
			return errdefs.InvalidArgument(fmt.Errorf("feed %d: name %q: want letters, digits, '.', '_', '-', unique", i+1, f.Name))
		}
		seen[f.Name] = true
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errdefs.InvalidArgument(fmt.Errorf("feed %s: URL %q: want http or https", f.Name, f.URL))
		}
		if f.Format != feed.Auto && !isFormat(f.Format) {
			return errdefs.InvalidArgument(fmt.Errorf("feed %s: format %q: want one of %v", f.Name, f.Format, feed.Formats()))
		}
	}
	if c.Repository == "" && len(c.Feeds) == 0 {
		return errdefs.InvalidArgument(errors.New("no feeds and no repository to update from"))
	}
	return nil
}

func isFormat(f feed.Format) bool {
	for _, x := range feed.Formats() {
		if x == f {
			return true
		}
	}
	return false
}

// Marshal renders the configuration as YAML.
func (c Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// Event reports progress.
type Event struct {
	Phase string // "download", "cached", "build", "pull", "done"
	Feed  string // the feed, for downloads
	Done  int64  // bytes (download, pull) or files (build)
	Total int64  // -1 when unknown
}

type options struct {
	client   *http.Client
	progress func(Event)
	ociOpts  []oci.Option
	builtBy  string
	maxSize  int64
}

// Option configures Update.
type Option func(*options)

// WithHTTPClient downloads with c.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithProgress calls fn as the update goes.
func WithProgress(fn func(Event)) Option { return func(o *options) { o.progress = fn } }

// WithOCIOptions passes options to the registry client.
func WithOCIOptions(opts ...oci.Option) Option {
	return func(o *options) { o.ociOpts = append(o.ociOpts, opts...) }
}

// WithBuiltBy records what built the database.
func WithBuiltBy(s string) Option { return func(o *options) { o.builtBy = s } }

// WithMaxDownload limits each download (default 8 GiB).
func WithMaxDownload(n int64) Option { return func(o *options) { o.maxSize = n } }

// Update brings the database at dest up to date and returns its metadata.
// Feeds are downloaded to the feeds directory beside it.
func Update(ctx context.Context, log *slog.Logger, cfg Config, dest string, opts ...Option) (vulndb.Metadata, error) {
	o := &options{client: http.DefaultClient, progress: func(Event) {}, maxSize: 8 << 30}
	for _, opt := range opts {
		opt(o)
	}
	if err := cfg.Validate(); err != nil {
		return vulndb.Metadata{}, err
	}
	dir := filepath.Dir(dest)
	if cfg.Repository != "" {
		var nameOpts []name.Option
		if cfg.Insecure {
			nameOpts = append(nameOpts, name.Insecure)
		}
		ref, err := name.ParseReference(cfg.Repository, nameOpts...)
		if err != nil {
			return vulndb.Metadata{}, errdefs.InvalidArgument(fmt.Errorf("repository %q: %v", cfg.Repository, err))
		}
		popts := append([]oci.Option{oci.WithProgress(func(done, total int64) {
			o.progress(Event{Phase: "pull", Feed: cfg.Repository, Done: done, Total: total})
		})}, o.ociOpts...)
		meta, err := oci.Pull(ctx, ref, dest, popts...)
		if err == nil {
			o.progress(Event{Phase: "done"})
		}
		return meta, err
	}

	var inputs []string
	for _, f := range cfg.Feeds {
		p, err := download(ctx, log, o, f, filepath.Join(dir, "feeds", f.Name))
		if err != nil {
			return vulndb.Metadata{}, err
		}
		inputs = append(inputs, p)
	}
	o.progress(Event{Phase: "build", Total: -1})
	fopts := []feed.Option{feed.WithBuiltBy(o.builtBy), feed.WithProgress(func(p feed.Progress) {
		o.progress(Event{Phase: "build", Feed: p.Input, Done: int64(p.Files), Total: -1})
	})}
	// Feeds of a stated format are read as that format; the others are
	// recognized. Build once per format group, into one builder.
	b := vulndb.NewBuilder(log)
	for _, group := range groupByFormat(cfg.Feeds, inputs) {
		if err := feed.Read(ctx, log, b, group.inputs, append(fopts, feed.WithFormat(group.format))...); err != nil {
			return vulndb.Metadata{}, err
		}
	}
	meta, err := b.Write(ctx, dest, vulndb.Metadata{Builder: o.builtBy})
	if err == nil {
		o.progress(Event{Phase: "done"})
	}
	return meta, err
}

type formatGroup struct {
	format feed.Format
	inputs []string
}

func groupByFormat(feeds []Feed, inputs []string) []formatGroup {
	var out []formatGroup
	idx := map[feed.Format]int{}
	for i, f := range feeds {
		j, ok := idx[f.Format]
		if !ok {
			j = len(out)
			idx[f.Format] = j
			out = append(out, formatGroup{format: f.Format})
		}
		out[j].inputs = append(out[j].inputs, inputs[i])
	}
	return out
}

// fileName is the name a download is kept under: the URL's last path
// element (so that zips stay zips and a secdb file keeps its release's
// directory name out of the way), cleaned.
func fileName(u string) string {
	p, err := url.Parse(u)
	base := "feed"
	if err == nil {
		if b := path.Base(p.Path); b != "/" && b != "." && b != "" {
			base = b
		}
	}
	clean := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 {
			return '_'
		}
		return r
	}, base)
	if clean == ".." || clean == "." {
		clean = "feed"
	}
	return clean
}

// download fetches one feed into dir, unless the server says the copy there
// is current, and returns the file's path.
func download(ctx context.Context, log *slog.Logger, o *options, f Feed, dir string) (string, error) {
	dest := filepath.Join(dir, fileName(f.URL))
	etagFile, modFile := dest+".etag", dest+".last-modified"
	_, statErr := os.Stat(dest)
	cached := statErr == nil

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("feed %s: %v", f.Name, err))
	}
	if cached {
		if b, err := os.ReadFile(etagFile); err == nil && len(b) > 0 {
			req.Header.Set("If-None-Match", string(b))
		}
		if b, err := os.ReadFile(modFile); err == nil && len(b) > 0 {
			req.Header.Set("If-Modified-Since", string(b))
		}
	}
	fail := func(err error) (string, error) {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if cached {
			log.Warn("feed download failed; building from the previous download", "feed", f.Name, "url", f.URL, "err", err)
			o.progress(Event{Phase: "cached", Feed: f.Name})
			return dest, nil
		}
		return "", err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return fail(errdefs.Unavailable(fmt.Errorf("feed %s: %w", f.Name, err)))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cached:
		o.progress(Event{Phase: "cached", Feed: f.Name})
		return dest, nil
	case resp.StatusCode != http.StatusOK:
		err := fmt.Errorf("feed %s: GET %s: %s", f.Name, f.URL, resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			return fail(errdefs.NotFound(err))
		}
		return fail(errdefs.Unavailable(err))
	}
	total := resp.ContentLength
	if total > o.maxSize {
		return fail(errdefs.TooLarge(fmt.Errorf("feed %s: %d bytes, more than %d", f.Name, total, o.maxSize)))
	}
	pr := &counter{r: resp.Body, fn: func(n int64) { o.progress(Event{Phase: "download", Feed: f.Name, Done: n, Total: total}) }}
	err = vulndb.WriteFileAtomic(dest, func(w *os.File) error {
		n, err := io.Copy(w, io.LimitReader(pr, o.maxSize+1))
		if err != nil {
			return err
		}
		if n > o.maxSize {
			return errdefs.TooLarge(fmt.Errorf("more than %d bytes", o.maxSize))
		}
		if total >= 0 && n != total {
			return errdefs.Corrupt(fmt.Errorf("got %d bytes, the server said %d", n, total))
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("feed %s: %w", f.Name, err))
	}
	// Remember what the server said about this copy.
	os.Remove(etagFile)
	os.Remove(modFile)
	if v := resp.Header.Get("ETag"); v != "" {
		os.WriteFile(etagFile, []byte(v), 0o644)
	}
	if v := resp.Header.Get("Last-Modified"); v != "" {
		os.WriteFile(modFile, []byte(v), 0o644)
	}
	return dest, nil
}

// counter reports bytes read, at most every 100 ms and at the end.
type counter struct {
	r    io.Reader
	n    int64
	last time.Time
	fn   func(int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); err != nil || now.Sub(c.last) > 100*time.Millisecond {
		c.last = now
		c.fn(c.n)
	}
	return n, err
}
