package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/store"
)

// imageFlags are the flags of commands that read or write images.
type imageFlags struct {
	platform     string
	allPlatforms bool
	insecure     bool
	compress     string
	jobs         int
	dockerHost   string
}

// register adds the flags; which selects the optional ones.
func (f *imageFlags) register(fs *pflag.FlagSet, which ...string) {
	fs.StringVar(&f.platform, "platform", "", "platform to select from a multi-platform image: os/arch[/variant] (default: this machine's)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for registries")
	fs.IntVar(&f.jobs, "jobs", 0, "blobs to transfer at once (default: 2 per CPU)")
	fs.StringVar(&f.dockerHost, "docker-host", "", "Docker Engine address for docker-daemon: (default $DOCKER_HOST or unix:///var/run/docker.sock)")
	for _, w := range which {
		switch w {
		case "all-platforms":
			fs.BoolVar(&f.allPlatforms, "all-platforms", false, "keep every platform of a multi-platform image")
		case "compress":
			fs.StringVar(&f.compress, "compress", "auto", "layer compression of the destination: auto (registries get uncompressed layers gzipped), keep, gzip, zstd")
		}
	}
}

// options turns the flags into image options; st may be nil.
func (f *imageFlags) options(e *env, st *store.Store, p progress.Reporter) ([]image.Option, error) {
	plat, err := image.ParsePlatform(f.platform)
	if err != nil {
		return nil, usageError{err}
	}
	c, err := image.ParseCompression(f.compress)
	if err != nil {
		return nil, usageError{err}
	}
	opts := []image.Option{
		image.WithPlatform(plat),
		image.WithAllPlatforms(f.allPlatforms),
		image.WithInsecure(f.insecure),
		image.WithCompression(c),
		image.WithLogger(e.log),
		image.WithProgress(p),
		image.WithDaemonHost(f.dockerHost),
	}
	if st != nil {
		opts = append(opts, image.WithStore(st))
	}
	if f.jobs > 0 {
		opts = append(opts, image.WithJobs(f.jobs))
	}
	return opts, nil
}

// openStore opens the local store under the lading root.
func (e *env) openStore() (*store.Store, error) {
	st, err := store.Open(e.storeDir())
	if err != nil {
		return nil, fmt.Errorf("open the local store: %w", err)
	}
	return st, nil
}

func (e *env) storeDir() string { return e.root }

// reporter returns the progress reporter the global flags ask for, on
// stderr.
func (e *env) reporter() progress.Reporter {
	return progress.New(e.stderr, progress.Mode(e.progress))
}

// parseSource parses a reference to an image to read: a bare local path is
// sniffed for its transport, and the choice said on standard error.
func (e *env) parseSource(s string) (image.Reference, error) {
	r, note, err := image.ParseSource(s)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return r, err
		}
		return r, usageError{err}
	}
	if note != "" {
		fmt.Fprintf(e.stderr, "lading: %s\n", note)
	}
	return r, nil
}

// parseDestination parses a reference to write to.
func parseDestination(s string) (image.Reference, error) {
	r, err := image.ParseDestination(s)
	if err != nil {
		return r, usageError{err}
	}
	return r, nil
}

// parseRef parses an image reference argument.
func parseRef(s string) (image.Reference, error) {
	r, err := image.Parse(s)
	if err != nil {
		return image.Reference{}, usageError{err}
	}
	return r, nil
}

// localName parses a name for the local store (tag, rmi): a normalized
// reference, or an image ID.
func localName(s string) (image.Reference, error) {
	r, err := parseRef(strings.TrimPrefix(s, "local:"))
	if err != nil {
		return r, err
	}
	if r.Transport != image.Auto {
		return r, usageError{errdefs.InvalidArgument(fmt.Errorf("%q: name an image in the local store", s))}
	}
	return r, nil
}

// humanAgo formats how long ago t was, like docker ("3 weeks ago").
func humanAgo(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "N/A"
	}
	d := time.Since(t)
	if d < 0 {
		return "in the future"
	}
	s := func(n int, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s ago", unit)
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return s(int(d.Minutes()), "minute")
	case d < 48*time.Hour:
		return s(int(d.Hours()), "hour")
	case d < 14*24*time.Hour:
		return s(int(d.Hours()/24), "day")
	case d < 60*24*time.Hour:
		return s(int(d.Hours()/24/7), "week")
	case d < 2*365*24*time.Hour:
		return s(int(d.Hours()/24/30), "month")
	}
	return s(int(d.Hours()/24/365), "year")
}

// isTerminal reports whether f is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// mustPlatform parses a --platform value already checked by options (nil
// when empty: this machine's platform).
func mustPlatform(s string) *v1.Platform {
	p, _ := image.ParsePlatform(s)
	return p
}

// platformOf returns the platform a config declares.
func platformOf(cf *v1.ConfigFile) *v1.Platform {
	return &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
}

func errorf(format string, args ...any) error {
	return errdefs.InvalidArgument(fmt.Errorf(format, args...))
}

// insecureTransport skips TLS verification.
func insecureTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return t
}

// session is what an image command holds while it runs: the local store,
// the progress reporter and the image options from its flags.
type session struct {
	f    *imageFlags
	st   *store.Store
	p    progress.Reporter
	opts []image.Option
}

// begin opens the store and builds the options; with progress, blob
// transfers are reported on stderr as the global flags say.
func (e *env) begin(f *imageFlags, withProgress bool) (*session, error) {
	st, err := e.openStore()
	if err != nil {
		return nil, err
	}
	var p progress.Reporter = progress.Nop{}
	if withProgress {
		p = e.reporter()
	}
	opts, err := f.options(e, st, p)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &session{f: f, st: st, p: p, opts: opts}, nil
}

// Close finishes the progress output and releases the store.
func (s *session) Close() {
	s.p.Close()
	s.st.Close()
}

// open opens ref. Unless --all-platforms, an index is resolved to the
// image for --platform; the source must be closed by the caller.
func (s *session) open(ctx context.Context, ref image.Reference) (*image.Source, image.Artifact, error) {
	src, err := image.Open(ctx, ref, s.opts...)
	if err != nil {
		return nil, image.Artifact{}, err
	}
	art := src.Artifact
	if art.Index != nil && !s.f.allPlatforms {
		img, err := src.Select(mustPlatform(s.f.platform))
		if err != nil {
			src.Close()
			return nil, image.Artifact{}, fmt.Errorf("%s: %w", ref, err)
		}
		art = image.Artifact{Image: img}
	}
	return src, art, nil
}

// openImage opens ref and selects the image for --platform.
func (s *session) openImage(ctx context.Context, ref image.Reference) (*image.Source, v1.Image, error) {
	src, err := image.Open(ctx, ref, s.opts...)
	if err != nil {
		return nil, nil, err
	}
	img, err := src.Select(mustPlatform(s.f.platform))
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, img, nil
}
