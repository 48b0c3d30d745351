// Package dockerarchive reads and writes docker-archive files, the format
// of `docker save` and `docker load`: a tar with manifest.json listing, per
// image, its config file, its repository tags and its layer tars in order.
//
// Reading accepts the classic layout (`<id>/layer.tar` directories, layers
// that are symlinks to other layers), the skopeo layout (`<diffid>.tar`) and
// the Docker 25+ layout (`blobs/sha256/<hex>`), with layers uncompressed or
// gzip/zstd-compressed. Each image is presented as an OCI image whose config
// is the archive's config byte for byte (so its ID is unchanged) and whose
// manifest, synthesized here, lists the layers as stored.
//
// Writing produces the Docker 25+ layout: uncompressed layers at
// blobs/sha256/<diffid>, configs at blobs/sha256/<digest>, manifest.json,
// and, in the same tar, an OCI image layout (oci-layout, index.json, an OCI
// manifest per image), so the file is both a docker-archive and an
// oci-archive.
package dockerarchive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/verify"
)

// Entry is one image of manifest.json.
type Entry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
}

// Archive is a docker-archive opened for reading.
type Archive struct {
	fsys    fs.FS
	name    string
	entries []Entry
}

// Open reads manifest.json from an archive served as fsys (see tarfs).
func Open(fsys fs.FS, name string) (*Archive, error) {
	f, err := fsys.Open("manifest.json")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: not a docker-archive (no manifest.json; archives from docker before 1.10 are not supported)", name))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, content.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", name, err)
	}
	if len(b) > content.MaxManifestSize {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: manifest.json over %d bytes", name, content.MaxManifestSize))
	}
	var entries []Entry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: manifest.json: %w", name, err))
	}
	if len(entries) == 0 {
		return nil, errdefs.NotFound(fmt.Errorf("%s: manifest.json lists no images", name))
	}
	return &Archive{fsys: fsys, name: name, entries: entries}, nil
}

// Name returns the archive's display name.
func (a *Archive) Name() string { return a.name }

// Entries returns manifest.json's images in order.
func (a *Archive) Entries() []Entry { return a.entries }

// Image returns image n (0-based) of manifest.json.
func (a *Archive) Image(n int) (v1.Image, error) {
	if n < 0 || n >= len(a.entries) {
		return nil, errdefs.NotFound(fmt.Errorf("%s: no image @%d (it holds %d)", a.name, n, len(a.entries)))
	}
	e := a.entries[n]
	what := fmt.Sprintf("%s: image @%d", a.name, n)
	if len(e.RepoTags) > 0 {
		what = fmt.Sprintf("%s: image %s", a.name, e.RepoTags[0])
	}
	src := &source{fsys: a.fsys, name: a.name, blobs: map[v1.Hash]string{}}

	cfgPath, err := memberName(e.Config)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: config %q: %w", what, e.Config, err))
	}
	cfg, err := readMember(a.fsys, cfgPath, content.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%s: config %s: %w", what, e.Config, err)
	}
	cfgDigest, _ := verify.FromBytes(cfg, "sha256")
	src.blobs[cfgDigest] = cfgPath
	var cf v1.ConfigFile
	if err := json.Unmarshal(cfg, &cf); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: config %s: %w", what, e.Config, err))
	}
	if len(cf.RootFS.DiffIDs) != len(e.Layers) {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: manifest.json lists %d layers but the config has %d diffIDs", what, len(e.Layers), len(cf.RootFS.DiffIDs)))
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: int64(len(cfg))},
	}
	for i, lp := range e.Layers {
		diffID := cf.RootFS.DiffIDs[i]
		if err := verify.CheckHash(diffID); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: layer %d: diffID: %w", what, i, err))
		}
		d, p, err := a.layerDescriptor(lp, diffID, e.LayerSources)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d (%s): %w", what, i, lp, err)
		}
		if p != "" {
			src.blobs[d.Digest] = p
		}
		m.Layers = append(m.Layers, d)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, _ := verify.FromBytes(raw, "sha256")
	return content.ImageFromManifest(src, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: md, Size: int64(len(raw))}, raw)
}

// layerDescriptor describes one layer file: its digest (the diffID when
// uncompressed; the file name or a hash of the file when compressed), size
// and media type. Foreign layers listed in LayerSources that the archive
// lacks get their descriptor from there and no path.
func (a *Archive) layerDescriptor(lp string, diffID v1.Hash, sources map[v1.Hash]v1.Descriptor) (v1.Descriptor, string, error) {
	p, err := memberName(lp)
	if err != nil {
		return v1.Descriptor{}, "", errdefs.InvalidArgument(err)
	}
	f, err := a.fsys.Open(p)
	if err != nil {
		if ls, ok := sources[diffID]; ok && errors.Is(err, fs.ErrNotExist) {
			return ls, "", nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return v1.Descriptor{}, "", errdefs.NotFound(fmt.Errorf("layer file is missing from the archive"))
		}
		return v1.Descriptor{}, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	magic := make([]byte, 4)
	n, _ := io.ReadFull(f, magic)
	c := layer.Sniff(magic[:n])
	if c == layer.Uncompressed {
		mt := types.OCIUncompressedLayer
		if ls, ok := sources[diffID]; ok {
			// The archive holds the layer uncompressed; its media type
			// (a foreign layer's, usually) says so.
			mt = types.MediaType(layer.UncompressedMediaType(string(ls.MediaType)))
		}
		return v1.Descriptor{MediaType: mt, Digest: diffID, Size: fi.Size()}, p, nil
	}
	mt := types.OCILayer
	if c == layer.Zstd {
		mt = types.OCILayerZStd
	}
	// The Docker 25+ layout names compressed blobs by their digest; else
	// hash the file once.
	if dir, hex := path.Split(p); dir == "blobs/sha256/" {
		if h := (v1.Hash{Algorithm: "sha256", Hex: hex}); verify.CheckHash(h) == nil {
			return v1.Descriptor{MediaType: mt, Digest: h, Size: fi.Size()}, p, nil
		}
	}
	rest, err := a.fsys.Open(p)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	defer rest.Close()
	h, size, err := verify.Digest(rest, "sha256")
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: size}, p, nil
}

// memberName cleans a path from manifest.json.
func memberName(p string) (string, error) {
	c := path.Clean(strings.TrimPrefix(p, "./"))
	if p == "" || strings.HasPrefix(p, "/") || c == ".." || strings.HasPrefix(c, "../") || !fs.ValidPath(c) {
		return "", fmt.Errorf("path %q is not inside the archive", p)
	}
	return c, nil
}

func readMember(fsys fs.FS, p string, max int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("missing from the archive"))
		}
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, errdefs.TooLarge(fmt.Errorf("over %d bytes", max))
	}
	return buf.Bytes(), nil
}

// source serves one image's blobs from the archive.
type source struct {
	fsys  fs.FS
	name  string
	blobs map[v1.Hash]string
}

func (s *source) Name() string { return s.name }

func (s *source) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	p, ok := s.blobs[d.Digest]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("%s: blob %s is not in the archive", s.name, d.Digest))
	}
	f, err := s.fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("%s: %s is missing", s.name, p))
		}
		return nil, err
	}
	return f, nil
}
