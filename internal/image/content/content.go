// Package content builds go-containerregistry images and indexes over any
// source of blobs: an OCI layout directory, lading's store, an archive read
// in place. A source only has to open blobs by descriptor; this package reads
// manifests, indexes and configs whole (bounded) and verifies each against
// its digest, and hands out layer streams that verify at EOF.
//
// Images keep the exact bytes and digest of their manifest: copying an
// image from one source to a sink preserves its digest.
package content

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// Size limits for blobs read whole.
const (
	MaxManifestSize = 8 << 20
	MaxConfigSize   = 64 << 20
)

// Source opens blobs.
type Source interface {
	// OpenBlob returns the bytes of the blob d names. The returned reader
	// need not verify; callers here wrap it. A missing blob is an error of
	// class errdefs.ErrNotFound.
	OpenBlob(d v1.Descriptor) (io.ReadCloser, error)
	// Name is how messages refer to the source ("oci:/tmp/dir").
	Name() string
}

// IsIndex reports whether a media type is an image index or manifest list.
func IsIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// IsImage reports whether a media type is an image manifest.
func IsImage(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// Open returns a verified reader over the blob d names.
func Open(src Source, d v1.Descriptor) (io.ReadCloser, error) {
	if err := verify.CheckHash(d.Digest); err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	rc, err := src.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	size := d.Size
	if size <= 0 {
		size = -1
	}
	return verify.NewReadCloser(rc, d.Digest, size)
}

// ReadAll reads a whole blob of at most max bytes and verifies it.
func ReadAll(src Source, d v1.Descriptor, max int64, what string) ([]byte, error) {
	if d.Size > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: %s %s: %d bytes, limit %d", src.Name(), what, d.Digest, d.Size, max))
	}
	rc, err := Open(src, d)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFound(fmt.Errorf("%s: %s %s is missing", src.Name(), what, d.Digest))
		}
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", src.Name(), what, d.Digest, err)
	}
	if int64(len(b)) > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: %s %s: over %d bytes", src.Name(), what, d.Digest, max))
	}
	return b, nil
}

// JSONError explains why manifest or index JSON did not parse, naming the
// first malformed digest when that is the cause (go-containerregistry's
// message does not say which).
func JSONError(raw []byte, err error) error {
	var loose struct {
		Config    *struct{ Digest string }  `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
		Subject   *struct{ Digest string }  `json:"subject"`
	}
	if json.Unmarshal(raw, &loose) != nil {
		return err
	}
	var ds []string
	if loose.Config != nil {
		ds = append(ds, loose.Config.Digest)
	}
	if loose.Subject != nil {
		ds = append(ds, loose.Subject.Digest)
	}
	for _, l := range loose.Layers {
		ds = append(ds, l.Digest)
	}
	for _, m := range loose.Manifests {
		ds = append(ds, m.Digest)
	}
	for _, d := range ds {
		if _, perr := verify.ParseDigest(d); perr != nil {
			return perr
		}
	}
	return err
}

// Image returns the image that manifest descriptor d names in src.
func Image(src Source, d v1.Descriptor) (v1.Image, error) {
	raw, err := ReadAll(src, d, MaxManifestSize, "manifest")
	if err != nil {
		return nil, err
	}
	return ImageFromManifest(src, d, raw)
}

// ImageFromManifest returns an image whose manifest bytes are raw (already
// verified against d by the caller) and whose blobs come from src.
func ImageFromManifest(src Source, d v1.Descriptor, raw []byte) (v1.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: manifest %s: %w", src.Name(), d.Digest, JSONError(raw, err)))
	}
	mt := m.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	if mt == "" && m.Config.MediaType == types.OCIConfigJSON {
		mt = types.OCIManifestSchema1
	}
	if !IsImage(mt) {
		return nil, errdefs.Unsupported(fmt.Errorf("%s: manifest %s: media type %q is not an image manifest", src.Name(), d.Digest, mt))
	}
	if err := checkDescriptors(m.Config, m.Layers); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: manifest %s: %w", src.Name(), d.Digest, err))
	}
	if d.Digest == (v1.Hash{}) {
		d.Digest, _ = verify.FromBytes(raw, "sha256")
	}
	d.Size = int64(len(raw))
	d.MediaType = mt
	return &image{src: src, desc: d, raw: raw, manifest: m}, nil
}

func checkDescriptors(cfg v1.Descriptor, layers []v1.Descriptor) error {
	if err := verify.CheckHash(cfg.Digest); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for i, l := range layers {
		if err := verify.CheckHash(l.Digest); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if l.Size < 0 {
			return fmt.Errorf("layer %d: negative size", i)
		}
	}
	return nil
}

// Index returns the index that descriptor d names in src.
func Index(src Source, d v1.Descriptor) (v1.ImageIndex, error) {
	raw, err := ReadAll(src, d, MaxManifestSize, "index")
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: index %s: %w", src.Name(), d.Digest, JSONError(raw, err)))
	}
	for i, c := range m.Manifests {
		if err := verify.CheckHash(c.Digest); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: index %s: manifest %d: %w", src.Name(), d.Digest, i, err))
		}
	}
	mt := m.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	if mt == "" {
		mt = types.OCIImageIndex
	}
	d.MediaType = mt
	d.Size = int64(len(raw))
	return &index{src: src, desc: d, raw: raw, manifest: m}, nil
}

type image struct {
	src      Source
	desc     v1.Descriptor
	raw      []byte
	manifest *v1.Manifest

	// The config is read once, on first use; layers read in parallel
	// ask for it at the same time.
	cfgMu   sync.Mutex
	config  []byte
	cfgFile *v1.ConfigFile
}

var _ v1.Image = (*image)(nil)

func (i *image) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *image) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *image) Digest() (v1.Hash, error)            { return i.desc.Digest, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *image) Manifest() (*v1.Manifest, error)     { return i.manifest.DeepCopy(), nil }
func (i *image) ConfigName() (v1.Hash, error)        { return i.manifest.Config.Digest, nil }
func (i *image) Descriptor() (*v1.Descriptor, error) { d := i.desc; return &d, nil }

func (i *image) RawConfigFile() ([]byte, error) {
	i.cfgMu.Lock()
	defer i.cfgMu.Unlock()
	return i.rawConfig()
}

// rawConfig reads the config blob once; the caller holds cfgMu.
func (i *image) rawConfig() ([]byte, error) {
	if i.config == nil {
		b, err := ReadAll(i.src, i.manifest.Config, MaxConfigSize, "config")
		if err != nil {
			return nil, err
		}
		i.config = b
	}
	return i.config, nil
}

func (i *image) ConfigFile() (*v1.ConfigFile, error) {
	i.cfgMu.Lock()
	defer i.cfgMu.Unlock()
	if i.cfgFile == nil {
		b, err := i.rawConfig()
		if err != nil {
			return nil, err
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(b, &cf); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: config %s: %w", i.src.Name(), i.manifest.Config.Digest, err))
		}
		i.cfgFile = &cf
	}
	return i.cfgFile.DeepCopy(), nil
}

// diffID returns the diffID of layer n from the config, when the config has
// one for it.
func (i *image) diffID(n int) (v1.Hash, bool) {
	if i.manifest.Config.MediaType != "" && !isConfigType(i.manifest.Config.MediaType) {
		return v1.Hash{}, false // an artifact: its "layers" have no diffIDs
	}
	cf, err := i.ConfigFile()
	if err != nil || n >= len(cf.RootFS.DiffIDs) {
		return v1.Hash{}, false
	}
	return cf.RootFS.DiffIDs[n], true
}

func isConfigType(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON
}

func (i *image) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.manifest.Layers))
	for n, d := range i.manifest.Layers {
		out[n] = &imageLayer{img: i, desc: d, n: n}
	}
	return out, nil
}

func (i *image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == i.manifest.Config.Digest {
		return &imageLayer{img: i, desc: i.manifest.Config, n: -1}, nil
	}
	for n, d := range i.manifest.Layers {
		if d.Digest == h {
			return &imageLayer{img: i, desc: d, n: n}, nil
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("%s: image %s has no layer %s", i.src.Name(), i.desc.Digest, h))
}

func (i *image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for n := range i.manifest.Layers {
		if d, ok := i.diffID(n); ok && d == h {
			return &imageLayer{img: i, desc: i.manifest.Layers[n], n: n}, nil
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("%s: image %s has no layer with diffID %s", i.src.Name(), i.desc.Digest, h))
}

// imageLayer is one blob of an image. Compressed verifies at EOF; Uncompressed
// decompresses (gzip or zstd, detected from the bytes) and, when the config
// gives the layer's diffID, verifies the uncompressed bytes against it too.
type imageLayer struct {
	img  *image
	desc v1.Descriptor
	n    int // index in the manifest; -1 for the config
}

var _ v1.Layer = (*imageLayer)(nil)

func (l *imageLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *imageLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *imageLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *imageLayer) Descriptor() (*v1.Descriptor, error) { d := l.desc; return &d, nil }

func (l *imageLayer) DiffID() (v1.Hash, error) {
	if d, ok := l.img.diffID(l.n); ok {
		return d, nil
	}
	if !IsCompressed(l.desc.MediaType) {
		return l.desc.Digest, nil
	}
	return v1.Hash{}, errdefs.NotFound(fmt.Errorf("%s: layer %s: the config gives no diffID", l.img.src.Name(), l.desc.Digest))
}

// Present reports, without reading the blob, whether the source has it: an
// error of class ErrNotFound when it is missing. A blob the source finds
// may still not match its digest; only reading it tells.
func (l *imageLayer) Present() error {
	rc, err := l.img.src.OpenBlob(l.desc)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return errdefs.NotFound(fmt.Errorf("%s: blob %s is missing", l.img.src.Name(), l.desc.Digest))
		}
		return err
	}
	return rc.Close()
}

func (l *imageLayer) Compressed() (io.ReadCloser, error) {
	rc, err := Open(l.img.src, l.desc)
	if err != nil {
		if errdefs.IsNotFound(err) && !l.desc.MediaType.IsDistributable() {
			return nil, errdefs.NotFound(fmt.Errorf("%s: non-distributable layer %s is not present (its URLs: %v)", l.img.src.Name(), l.desc.Digest, l.desc.URLs))
		}
		return nil, err
	}
	return rc, nil
}

func (l *imageLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	ur, err := Decompress(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: layer %s: %w", l.img.src.Name(), l.desc.Digest, err)
	}
	// An uncompressed layer named by its diffID was verified by Compressed.
	if d, ok := l.img.diffID(l.n); ok && !(d == l.desc.Digest && !IsCompressed(l.desc.MediaType)) {
		return verify.NewReadCloser(ur, d, -1)
	}
	return ur, nil
}

// IsCompressed reports whether a layer media type says the layer is
// compressed (gzip or zstd).
func IsCompressed(mt types.MediaType) bool {
	switch mt {
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		return false
	}
	return true
}

type index struct {
	src      Source
	desc     v1.Descriptor
	raw      []byte
	manifest *v1.IndexManifest
}

var _ v1.ImageIndex = (*index)(nil)

func (x *index) MediaType() (types.MediaType, error)       { return x.desc.MediaType, nil }
func (x *index) Digest() (v1.Hash, error)                  { return x.desc.Digest, nil }
func (x *index) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *index) IndexManifest() (*v1.IndexManifest, error) { return x.manifest.DeepCopy(), nil }
func (x *index) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *index) Descriptor() (*v1.Descriptor, error)       { d := x.desc; return &d, nil }

func (x *index) child(h v1.Hash) (v1.Descriptor, error) {
	for _, d := range x.manifest.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("%s: index %s has no manifest %s", x.src.Name(), x.desc.Digest, h))
}

func (x *index) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return Image(x.src, d)
}

func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return Index(x.src, d)
}
