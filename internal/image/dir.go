package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/verify"
)

// LayerFile is an uncompressed layer tar in a temp file, checked by
// layer.Walk, with its diffID. Remove deletes the file.
type LayerFile struct {
	Path   string
	DiffID v1.Hash
	Size   int64
}

// Remove deletes the temp file.
func (l *LayerFile) Remove() error { return os.Remove(l.Path) }

// LayerFromDir writes the directory dir as a layer (layer.FromDir: sorted,
// symlinks never followed, hard links kept) into a temp file in tmpDir.
func LayerFromDir(ctx context.Context, dir, tmpDir string) (*LayerFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, errdefs.NotFound(err)
	}
	if !st.IsDir() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s is not a directory", dir))
	}
	return writeLayerFile(tmpDir, func(w io.Writer) error { return layer.FromDir(ctx, w, dir) })
}

// LayerFromTar checks a tar stream (plain, gzip or zstd) with layer.Walk and
// copies it, uncompressed, into a temp file in tmpDir. name is how errors
// refer to the stream. A tar that layer.Walk refuses (names that escape,
// links out, devices, duplicates, truncation) is refused with its error.
func LayerFromTar(ctx context.Context, r io.Reader, name, tmpDir string) (*LayerFile, error) {
	ur, _, err := layer.Decompress(r, layer.WithName(name))
	if err != nil {
		return nil, err
	}
	defer ur.Close()
	return writeLayerFile(tmpDir, func(w io.Writer) error {
		tee := io.TeeReader(ur, w)
		if err := layer.Walk(ctx, tee, func(*layer.Entry) error { return nil }, layer.WithName(name)); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, tee) // the end-of-archive padding
		return err
	})
}

func writeLayerFile(tmpDir string, write func(io.Writer) error) (*LayerFile, error) {
	f, err := os.CreateTemp(tmpDir, "lading-layer-*.tar")
	if err != nil {
		return nil, err
	}
	h, _ := verify.Hasher("sha256")
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = write(cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &LayerFile{Path: f.Name(), DiffID: sum(h), Size: cw.n}, nil
}

// FromLayerFile builds a single-layer OCI image from an uncompressed layer
// file and a config; the config's rootfs is set to the layer, and a
// history entry is added when cfg has none. The layer is stored
// uncompressed (as docker import does); sinks compress it where they must.
func FromLayerFile(lf *LayerFile, cfg v1.ConfigFile, createdBy string) (v1.Image, error) {
	cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{lf.DiffID}}
	if len(cfg.History) == 0 {
		cfg.History = []v1.History{{Created: cfg.Created, CreatedBy: createdBy}}
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDigest, _ := verify.FromBytes(rawCfg, "sha256")
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: int64(len(rawCfg))},
		Layers:        []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Digest: lf.DiffID, Size: lf.Size}},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, _ := verify.FromBytes(raw, "sha256")
	src := memSource{
		cfgDigest: memSource{}.raw(rawCfg),
		lf.DiffID: func() (io.ReadCloser, error) { return os.Open(lf.Path) },
		md:        memSource{}.raw(raw),
	}
	return content.ImageFromManifest(src, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: md, Size: int64(len(raw))}, raw)
}

// DefaultConfig is the config of an image made from a root filesystem: the
// platform (default this machine's) and nothing else.
func DefaultConfig(p *v1.Platform, created time.Time) v1.ConfigFile {
	if p == nil {
		p = HostPlatform()
	}
	cf := v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	if !created.IsZero() {
		cf.Created = v1.Time{Time: created.UTC()}
	}
	return cf
}

// openDir builds a single-layer image from a root filesystem directory.
// The same directory contents give the same image digest.
func openDir(ctx context.Context, ref Reference, o *options) (*Source, error) {
	lf, err := LayerFromDir(ctx, ref.Path, o.tmpDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("%s: %w", ref, err))
		}
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	img, err := FromLayerFile(lf, DefaultConfig(o.platform, time.Time{}), "lading: dir:"+ref.Path)
	if err != nil {
		lf.Remove()
		return nil, err
	}
	return &Source{Artifact: Artifact{Image: img}, Ref: ref, closers: []io.Closer{closerFunc(lf.Remove)}}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
