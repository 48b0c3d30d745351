package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/image/dockerarchive"
	"github.com/lading-dev/lading/internal/image/ocilayout"
	"github.com/lading-dev/lading/internal/tarfs"
)

// Artifact is what a reference resolves to: an image or an index. Exactly
// one of the two is set.
type Artifact struct {
	Image v1.Image
	Index v1.ImageIndex
}

// Descriptor returns the artifact's descriptor (media type, digest, size).
func (a Artifact) Descriptor() (v1.Descriptor, error) {
	var (
		mt  types.MediaType
		h   v1.Hash
		raw []byte
		err error
	)
	if a.Image != nil {
		if mt, err = a.Image.MediaType(); err == nil {
			if h, err = a.Image.Digest(); err == nil {
				raw, err = a.Image.RawManifest()
			}
		}
	} else if a.Index != nil {
		if mt, err = a.Index.MediaType(); err == nil {
			if h, err = a.Index.Digest(); err == nil {
				raw, err = a.Index.RawManifest()
			}
		}
	} else {
		return v1.Descriptor{}, errors.New("empty artifact")
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}, nil
}

// Source is an opened image source. Close it when done.
type Source struct {
	Artifact
	// Ref is the reference opened, with Auto resolved to Local or Registry.
	Ref Reference
	// Names are the names the image carries where it came from (RepoTags in
	// a docker-archive, the ref-name annotation in a layout), normalized.
	Names   []string
	closers []io.Closer
}

// Close releases what the source holds (archive files, temp copies).
func (s *Source) Close() error {
	var err error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if e := s.closers[i].Close(); e != nil && err == nil {
			err = e
		}
	}
	s.closers = nil
	return err
}

// Open resolves ref to an image or index. Platform options are not applied
// here; see Source.Select.
func Open(ctx context.Context, ref Reference, opts ...Option) (*Source, error) {
	o := makeOptions(opts)
	src, err := open(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	return src, nil
}

func open(ctx context.Context, ref Reference, o *options) (*Source, error) {
	switch ref.Transport {
	case Auto:
		if o.store != nil {
			src, err := openLocal(ctx, ref, o)
			if err == nil || !errdefs.IsNotFound(err) {
				return src, err
			}
		}
		if IsID(ref.Name) {
			return nil, errdefs.NotFound(fmt.Errorf("no local image with ID %s", ref.Name))
		}
		ref.Transport = Registry
		return openRegistry(ctx, ref, o)
	case Local:
		if o.store == nil {
			return nil, errors.New("local: no store configured")
		}
		return openLocal(ctx, ref, o)
	case Registry:
		return openRegistry(ctx, ref, o)
	case OCI:
		st, err := os.Stat(ref.Path)
		if err != nil {
			return nil, errdefs.NotFound(fmt.Errorf("%s: %w", ref, err))
		}
		if !st.IsDir() {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: %s is not a directory (for a tar use oci-archive:)", ref, ref.Path))
		}
		l, err := ocilayout.Open(os.DirFS(ref.Path), "oci:"+ref.Path)
		if err != nil {
			return nil, err
		}
		return fromLayout(ref, l, nil)
	case OCIArchive:
		a, err := tarfs.Open(ref.Path, tarfs.WithTempDir(o.tmpDir))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		l, err := ocilayout.Open(a, "oci-archive:"+ref.Path)
		if err != nil {
			a.Close()
			return nil, err
		}
		return fromLayout(ref, l, a)
	case DockerArchive:
		return openDockerArchive(ctx, ref, o)
	case Dir:
		return openDir(ctx, ref, o)
	case Daemon:
		return openDaemon(ctx, ref, o)
	}
	return nil, errdefs.InvalidArgument(fmt.Errorf("unknown transport %q", ref.Transport))
}

// fromLayout resolves ref.Name in an OCI layout.
func fromLayout(ref Reference, l *ocilayout.Layout, closer io.Closer) (*Source, error) {
	fail := func(err error) (*Source, error) {
		if closer != nil {
			closer.Close()
		}
		return nil, err
	}
	d, err := l.Find(ref.Name)
	if err != nil {
		return fail(err)
	}
	art, err := artifactFor(l, d)
	if err != nil {
		return fail(err)
	}
	src := &Source{Artifact: art, Ref: ref, Names: layoutNames(d)}
	if closer != nil {
		src.closers = append(src.closers, closer)
	}
	return src, nil
}

// layoutNames returns the image name a layout's index.json gives a
// descriptor: containerd's image-name annotation, or a ref-name annotation
// that is a whole reference. A ref name that is only a tag ("latest", as
// skopeo writes) names no image.
func layoutNames(d v1.Descriptor) []string {
	for _, n := range []string{d.Annotations["io.containerd.image.name"], d.Annotations[ocilayout.RefNameAnnotation]} {
		if n == "" || !strings.ContainsAny(n, "/:") {
			continue
		}
		if nn, err := NormalizeName(n); err == nil {
			return []string{nn}
		}
	}
	return nil
}

// artifactFor opens the image or index a descriptor names in a content
// source.
func artifactFor(src content.Source, d v1.Descriptor) (Artifact, error) {
	if content.IsIndex(d.MediaType) {
		x, err := content.Index(src, d)
		return Artifact{Index: x}, err
	}
	img, err := content.Image(src, d)
	return Artifact{Image: img}, err
}

func openDockerArchive(ctx context.Context, ref Reference, o *options) (*Source, error) {
	a, err := tarfs.Open(ref.Path, tarfs.WithTempDir(o.tmpDir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	da, err := dockerarchive.Open(a, "docker-archive:"+ref.Path)
	if err != nil {
		a.Close()
		return nil, err
	}
	n, err := findInDockerArchive(da, ref.Name)
	if err != nil {
		a.Close()
		return nil, err
	}
	img, err := da.Image(n)
	if err != nil {
		a.Close()
		return nil, err
	}
	src := &Source{Artifact: Artifact{Image: img}, Ref: ref, closers: []io.Closer{a}}
	for _, t := range da.Entries()[n].RepoTags {
		if nt, err := NormalizeName(t); err == nil {
			src.Names = append(src.Names, nt)
		}
	}
	return src, nil
}

// findInDockerArchive picks an image by "@N", by name, or the only one.
func findInDockerArchive(da *dockerarchive.Archive, name string) (int, error) {
	es := da.Entries()
	if name == "" {
		if len(es) == 1 {
			return 0, nil
		}
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s holds %d images; name one, as %s:%s, or pick one by position, as %s@0 (it has: %s)",
			da.Name(), len(es), da.Name(), firstTag(es), da.Name(), strings.Join(allTags(es), ", ")))
	}
	if n, ok := strings.CutPrefix(name, "@"); ok {
		i, err := strconv.Atoi(n)
		if err != nil {
			return 0, errdefs.InvalidArgument(fmt.Errorf("%s: %q: want @N", da.Name(), name))
		}
		return i, nil
	}
	for i, e := range es {
		for _, t := range e.RepoTags {
			if nt, err := NormalizeName(t); err == nil && nt == name {
				return i, nil
			}
		}
	}
	return 0, errdefs.NotFound(fmt.Errorf("%s: no image named %s (it has: %s)", da.Name(), name, strings.Join(allTags(es), ", ")))
}

// firstTag is a name to show in an example.
func firstTag(es []dockerarchive.Entry) string {
	for _, e := range es {
		if len(e.RepoTags) > 0 {
			return e.RepoTags[0]
		}
	}
	return "NAME:TAG"
}

func allTags(es []dockerarchive.Entry) []string {
	var out []string
	for i, e := range es {
		if len(e.RepoTags) == 0 {
			out = append(out, "@"+strconv.Itoa(i))
		}
		out = append(out, e.RepoTags...)
	}
	return out
}

// OpenAll opens every image an archive or layout holds (for load). Each
// source carries the names it is stored under.
func OpenAll(ctx context.Context, ref Reference, opts ...Option) ([]*Source, error) {
	o := makeOptions(opts)
	switch ref.Transport {
	case DockerArchive, OCIArchive:
	default:
		src, err := open(ctx, ref, o)
		if err != nil {
			return nil, err
		}
		return []*Source{src}, nil
	}
	if ref.Name != "" {
		src, err := open(ctx, ref, o)
		if err != nil {
			return nil, err
		}
		return []*Source{src}, nil
	}
	a, err := tarfs.Open(ref.Path, tarfs.WithTempDir(o.tmpDir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	shared := &refCount{c: a}
	var out []*Source
	fail := func(err error) ([]*Source, error) {
		for _, s := range out {
			s.Close()
		}
		shared.Close()
		return nil, err
	}
	if _, err := a.Stat("manifest.json"); err == nil {
		da, err := dockerarchive.Open(a, "docker-archive:"+ref.Path)
		if err != nil {
			return fail(err)
		}
		for i, e := range da.Entries() {
			img, err := da.Image(i)
			if err != nil {
				return fail(err)
			}
			s := &Source{Artifact: Artifact{Image: img}, Ref: Reference{Transport: DockerArchive, Path: ref.Path, Name: "@" + strconv.Itoa(i)}}
			for _, t := range e.RepoTags {
				if nt, err := NormalizeName(t); err == nil {
					s.Names = append(s.Names, nt)
				}
			}
			s.closers = []io.Closer{shared.ref()}
			out = append(out, s)
		}
	} else {
		l, err := ocilayout.Open(a, "oci-archive:"+ref.Path)
		if err != nil {
			return fail(err)
		}
		for _, d := range l.IndexManifest().Manifests {
			art, err := artifactFor(l, d)
			if err != nil {
				return fail(err)
			}
			s := &Source{Artifact: art, Ref: Reference{Transport: OCIArchive, Path: ref.Path, Name: d.Digest.String()}, Names: layoutNames(d)}
			s.closers = []io.Closer{shared.ref()}
			out = append(out, s)
		}
	}
	shared.Close() // the sources hold their own references now
	return out, nil
}

// refCount closes c when the last holder closes.
type refCount struct {
	c io.Closer
	n int
}

func (r *refCount) ref() io.Closer { r.n++; return r }
func (r *refCount) Close() error {
	r.n--
	if r.n < 0 {
		return r.c.Close()
	}
	return nil
}

// HostPlatform is the platform of this machine, which indexes resolve to by
// default.
func HostPlatform() *v1.Platform {
	p := &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// Select returns the image for platform p (nil: this machine's). An image
// source is returned as it is if its config matches p; an index yields its
// matching manifest, searching nested indexes.
func (s *Source) Select(p *v1.Platform) (v1.Image, error) {
	return s.Artifact.Select(p)
}

// Select is Source.Select for any artifact.
func (a Artifact) Select(p *v1.Platform) (v1.Image, error) {
	want := p
	if want == nil {
		want = HostPlatform()
	}
	if a.Image != nil {
		if p == nil {
			return a.Image, nil // a single image is what was asked for
		}
		cf, err := a.Image.ConfigFile()
		if err != nil {
			return nil, err
		}
		got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if !matches(got, *want) {
			return nil, errdefs.NotFound(fmt.Errorf("the image is for %s, not %s", got.String(), want.String()))
		}
		return a.Image, nil
	}
	img, found, err := selectIn(a.Index, *want, 0)
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, errdefs.NotFound(fmt.Errorf("no image for platform %s in the index (it has: %s)", want.String(), strings.Join(found, ", ")))
	}
	return img, nil
}

func selectIn(x v1.ImageIndex, want v1.Platform, depth int) (v1.Image, []string, error) {
	if depth > 4 {
		return nil, nil, errdefs.InvalidArgument(errors.New("indexes nested deeper than 4"))
	}
	m, err := x.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var found []string
	for _, d := range m.Manifests {
		if content.IsIndex(d.MediaType) {
			child, err := x.ImageIndex(d.Digest)
			if err != nil {
				return nil, nil, err
			}
			img, f, err := selectIn(child, want, depth+1)
			if err != nil || img != nil {
				return img, nil, err
			}
			found = append(found, f...)
			continue
		}
		if d.Platform == nil {
			continue
		}
		found = append(found, d.Platform.String())
		if matches(*d.Platform, want) {
			img, err := x.Image(d.Digest)
			return img, nil, err
		}
	}
	return nil, found, nil
}

// matches reports whether a candidate platform satisfies the wanted one:
// same OS and architecture, and the same variant when one is wanted
// (arm64 without a variant counts as v8).
func matches(got, want v1.Platform) bool {
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	gv := got.Variant
	if gv == "" && got.Architecture == "arm64" {
		gv = "v8"
	}
	return gv == want.Variant
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
