// Package oci ships a vulnerability database through an OCI registry as an
// artifact: an OCI image manifest of artifact type
// application/vnd.lading.vulndb.v1 whose config is the database's metadata
// and whose one layer is the database file compressed with zstd.
//
//	manifest  application/vnd.oci.image.manifest.v1+json
//	          artifactType application/vnd.lading.vulndb.v1
//	config    application/vnd.lading.vulndb.config.v1+json
//	          {"schema": 1, "size": N, "digest": "sha256:...", "metadata": {...}}
//	layer     application/vnd.lading.vulndb.layer.v1+zstd
//	          annotations: org.opencontainers.image.title vuln.db.zst
//
// Pull checks the schema version in the config before downloading the
// layer, verifies the layer against its digest and size as it streams, and
// the decompressed file against the digest and size in the config; it opens
// the file as a database before renaming it into place, so a failed pull
// leaves the previous database as it was.
package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
	"github.com/lading-dev/lading/internal/vulndb"
)

// The media types.
const (
	ArtifactType    = "application/vnd.lading.vulndb.v1"
	ConfigMediaType = "application/vnd.lading.vulndb.config.v1+json"
	LayerMediaType  = "application/vnd.lading.vulndb.layer.v1+zstd"
)

// Config is the artifact's config blob.
type Config struct {
	Schema   int             `json:"schema"`
	Size     int64           `json:"size"`   // of the database file
	Digest   string          `json:"digest"` // of the database file
	Metadata vulndb.Metadata `json:"metadata"`
}

type options struct {
	remote   []remote.Option
	progress func(done, total int64)
}

// Option configures Push and Pull.
type Option func(*options)

// WithKeychain authenticates with kc (default: the Docker config's
// credentials, authn.DefaultKeychain).
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) { o.remote = append(o.remote, remote.WithAuthFromKeychain(kc)) }
}

// WithTransport sends requests through t.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) { o.remote = append(o.remote, remote.WithTransport(t)) }
}

// WithProgress calls fn with the bytes of the database layer sent or
// received so far.
func WithProgress(fn func(done, total int64)) Option {
	return func(o *options) { o.progress = fn }
}

func newOptions(ctx context.Context, opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	o.remote = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, o.remote...)
	return o
}

// Push compresses the database at path and pushes it to ref. It returns the
// manifest's digest.
func Push(ctx context.Context, path string, ref name.Reference, opts ...Option) (v1.Hash, error) {
	o := newOptions(ctx, opts)
	db, err := vulndb.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	meta := db.Metadata()
	db.Close()

	tmp, err := os.CreateTemp("", "lading-vulndb-*.zst")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	cfg, layer, err := compress(path, tmp)
	if err != nil {
		return v1.Hash{}, err
	}
	cfg.Metadata = meta
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return v1.Hash{}, err
	}
	cfgHash, err := verify.FromBytes(rawCfg, "sha256")
	if err != nil {
		return v1.Hash{}, err
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Digest: cfgHash, Size: int64(len(rawCfg))},
		Layers: []v1.Descriptor{{MediaType: LayerMediaType, Digest: layer.digest, Size: layer.size, Annotations: map[string]string{
			"org.opencontainers.image.title": vulndb.FileName + ".zst",
		}}},
		Annotations: map[string]string{
			"org.opencontainers.image.created": meta.BuiltAt.Format("2006-01-02T15:04:05Z07:00"),
			"dev.lading.vulndb.schema":         strconv.Itoa(meta.Schema),
		},
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	layer.progress = o.progress
	img, err := partial.CompressedToImage(&artifact{manifest: rawManifest, config: rawCfg, layer: layer})
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img, o.remote...); err != nil {
		return v1.Hash{}, classify(fmt.Errorf("push %s: %w", ref, err))
	}
	return verify.FromBytes(rawManifest, "sha256")
}

// compress writes the zstd-compressed file to tmp, hashing both forms.
func compress(path string, tmp *os.File) (Config, *fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, nil, err
	}
	defer f.Close()
	rawHash, _ := verify.Hasher("sha256")
	zHash, _ := verify.Hasher("sha256")
	zw, err := zstd.NewWriter(io.MultiWriter(tmp, zHash), zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return Config{}, nil, err
	}
	n, err := io.Copy(zw, io.TeeReader(f, rawHash))
	if err != nil {
		zw.Close()
		return Config{}, nil, err
	}
	if err := zw.Close(); err != nil {
		return Config{}, nil, err
	}
	st, err := tmp.Stat()
	if err != nil {
		return Config{}, nil, err
	}
	cfg := Config{Schema: vulndb.SchemaVersion, Size: n, Digest: fmt.Sprintf("sha256:%x", rawHash.Sum(nil))}
	d, err := verify.ParseDigest(fmt.Sprintf("sha256:%x", zHash.Sum(nil)))
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, &fileLayer{path: tmp.Name(), digest: d, size: st.Size()}, nil
}

// manifest is an OCI image manifest with an artifact type, which
// go-containerregistry's v1.Manifest does not carry.
type manifest struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// artifact is the pushed manifest as go-containerregistry's writer wants it.
type artifact struct {
	manifest, config []byte
	layer            *fileLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.layer.digest {
		return a.layer, nil
	}
	return nil, errdefs.NotFound(fmt.Errorf("layer %s", h))
}

// fileLayer is the compressed database in a temporary file.
type fileLayer struct {
	path     string
	digest   v1.Hash
	size     int64
	progress func(done, total int64)
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return LayerMediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	if l.progress == nil {
		return f, nil
	}
	return &progressReader{ReadCloser: f, total: l.size, fn: l.progress}, nil
}

type progressReader struct {
	io.ReadCloser
	done, total int64
	fn          func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

// Pull downloads the database at ref to dest (write, then rename) and
// returns its metadata.
func Pull(ctx context.Context, ref name.Reference, dest string, opts ...Option) (vulndb.Metadata, error) {
	o := newOptions(ctx, opts)
	desc, err := remote.Get(ref, o.remote...)
	if err != nil {
		return vulndb.Metadata{}, classify(fmt.Errorf("pull %s: %w", ref, err))
	}
	return pull(ctx, remoteBlobs{repo: ref.Context(), o: o}, ref.String(), desc.Manifest, string(desc.MediaType), dest, o)
}

// Blobs opens the blobs of the repository a database was pushed to.
type Blobs interface {
	// OpenBlob returns the bytes of the blob d names; the caller verifies
	// them against d.
	OpenBlob(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
}

// PullFrom is Pull from a manifest already read (and verified against its
// digest) and blobs opened by src: a registry reading a database pushed
// into its own storage pulls it without an HTTP round trip. name names
// the database in messages.
func PullFrom(ctx context.Context, src Blobs, name string, manifest []byte, dest string, opts ...Option) (vulndb.Metadata, error) {
	return pull(ctx, src, name, manifest, "", dest, newOptions(ctx, opts))
}

// remoteBlobs opens blobs of a repository over the registry API.
type remoteBlobs struct {
	repo name.Repository
	o    *options
}

func (r remoteBlobs) OpenBlob(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	l, err := remote.Layer(r.repo.Digest(d.Digest.String()), r.o.remote...)
	if err != nil {
		return nil, classify(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, classify(err)
	}
	return rc, nil
}

func pull(ctx context.Context, src Blobs, ref string, rawManifest []byte, mediaType string, dest string, o *options) (vulndb.Metadata, error) {
	var m manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return vulndb.Metadata{}, errdefs.InvalidArgument(fmt.Errorf("pull %s: manifest: %v", ref, err))
	}
	if m.ArtifactType != ArtifactType && m.Config.MediaType != ConfigMediaType {
		what := m.ArtifactType
		if what == "" {
			what = mediaType
		}
		if what == "" {
			what = string(m.MediaType)
		}
		return vulndb.Metadata{}, errdefs.InvalidArgument(fmt.Errorf("%s is not a lading vulnerability database (it is %s)", ref, what))
	}
	rawCfg, err := fetch(ctx, src, m.Config, 1<<20)
	if err != nil {
		return vulndb.Metadata{}, fmt.Errorf("pull %s: config: %w", ref, err)
	}
	var cfg Config
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return vulndb.Metadata{}, errdefs.Corrupt(fmt.Errorf("pull %s: config: %v", ref, err))
	}
	if cfg.Schema != vulndb.SchemaVersion {
		advice := "push a database built by this version of lading, or run `lading db update` to download the feeds and build one"
		if cfg.Schema > vulndb.SchemaVersion {
			advice = "upgrade lading, or pull a database of schema " + strconv.Itoa(vulndb.SchemaVersion)
		}
		return vulndb.Metadata{}, errdefs.Unsupported(fmt.Errorf("%s holds a vulnerability database of schema version %d; this lading reads version %d: %s", ref, cfg.Schema, vulndb.SchemaVersion, advice))
	}
	rawDigest, err := verify.ParseDigest(cfg.Digest)
	if err != nil || cfg.Size <= 0 {
		return vulndb.Metadata{}, errdefs.Corrupt(fmt.Errorf("pull %s: config: database digest %q, size %d", ref, cfg.Digest, cfg.Size))
	}
	var layer *v1.Descriptor
	for i, l := range m.Layers {
		if l.MediaType == LayerMediaType {
			if layer != nil {
				return vulndb.Metadata{}, errdefs.InvalidArgument(fmt.Errorf("pull %s: more than one database layer", ref))
			}
			layer = &m.Layers[i]
		}
	}
	if layer == nil {
		return vulndb.Metadata{}, errdefs.InvalidArgument(fmt.Errorf("pull %s: no layer of type %s", ref, LayerMediaType))
	}
	if err := verify.CheckHash(layer.Digest); err != nil {
		return vulndb.Metadata{}, err
	}
	rc, err := src.OpenBlob(ctx, *layer)
	if err != nil {
		return vulndb.Metadata{}, fmt.Errorf("pull %s: layer %s: %w", ref, layer.Digest, err)
	}
	defer rc.Close()
	var in io.Reader = &endAt{r: rc, size: layer.Size}
	if o.progress != nil {
		in = &progressReader{ReadCloser: io.NopCloser(in), total: layer.Size, fn: o.progress}
	}
	compressed, err := verify.NewReader(in, layer.Digest, layer.Size)
	if err != nil {
		return vulndb.Metadata{}, err
	}
	zr, err := zstd.NewReader(compressed, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return vulndb.Metadata{}, err
	}
	defer zr.Close()
	// The decompressed bytes are checked against the config: a stream that
	// decompresses to more than it says fails as soon as it does.
	raw, err := verify.NewReader(zr, rawDigest, cfg.Size)
	if err != nil {
		return vulndb.Metadata{}, err
	}
	var meta vulndb.Metadata
	err = vulndb.WriteFileAtomic(dest, func(f *os.File) error {
		if _, err := io.Copy(f, raw); err != nil {
			if errdefs.IsCorrupt(err) || ctx.Err() != nil {
				return err
			}
			// A decoding error: let the layer's digest say whether the
			// download was damaged; if it was not, the pushed data is.
			if _, derr := io.Copy(io.Discard, compressed); derr != nil {
				return derr
			}
			return errdefs.Corrupt(fmt.Errorf("layer %s: decompress: %v", layer.Digest, err))
		}
		// The whole layer must have been read for its digest to be
		// checked, even if the zstd frame ended early.
		if _, err := io.Copy(io.Discard, compressed); err != nil {
			return err
		}
		if !compressed.Verified() || !raw.Verified() {
			return errdefs.Corrupt(fmt.Errorf("layer %s: not verified", layer.Digest))
		}
		if err := f.Sync(); err != nil {
			return err
		}
		db, err := vulndb.Open(f.Name())
		if err != nil {
			return err
		}
		meta = db.Metadata()
		return db.Close()
	})
	if err != nil {
		return vulndb.Metadata{}, fmt.Errorf("pull %s to %s: %w", ref, filepath.Clean(dest), err)
	}
	return meta, nil
}

// endAt ends a stream with io.EOF once size bytes have passed, whatever the
// underlying reader says then: go-containerregistry checks blob digests too,
// with errors of no class, and verify.Reader, which sees the same bytes,
// gives the answer lading's callers understand (errdefs.ErrCorrupt).
type endAt struct {
	r    io.Reader
	size int64
	n    int64
}

func (e *endAt) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && err != io.EOF && e.n == e.size {
		err = io.EOF
	}
	return n, err
}

// fetch reads a small blob and checks it against its descriptor.
func fetch(ctx context.Context, src Blobs, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size > max || d.Size < 0 {
		return nil, errdefs.TooLarge(fmt.Errorf("blob %s: %d bytes", d.Digest, d.Size))
	}
	if err := verify.CheckHash(d.Digest); err != nil {
		return nil, err
	}
	rc, err := src.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	vr, err := verify.NewReader(&endAt{r: rc, size: d.Size}, d.Digest, d.Size)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, vr); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// classify attaches an error class to registry errors.
func classify(err error) error {
	code := 0
	var terr *transport.Error
	if errors.As(err, &terr) {
		code = terr.StatusCode
	}
	switch {
	case code == http.StatusNotFound:
		return errdefs.NotFound(err)
	case code == http.StatusUnauthorized:
		return errdefs.Unauthorized(err)
	case code == http.StatusForbidden:
		return errdefs.Denied(err)
	case code >= 500:
		return errdefs.Unavailable(err)
	}
	return err
}
