package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/store"
)

// baseImage is an image a stage starts from (or COPY --from reads), with
// every blob in the store.
type baseImage struct {
	img    dockerspec.DockerOCIImage
	layers []layerInfo
	digest v1.Hash // the manifest's
}

// loadBase resolves a FROM (or COPY --from) image through the image core:
// any transport (a bare name is looked up in the store first, then the
// registry), the platform's image of an index. Its blobs are copied into
// the store (a registry image under its name, as a pull does) unless the
// store has them.
func (bd *build) loadBase(ctx context.Context, name string, plat v1.Platform) (*baseImage, error) {
	ref, err := image.Parse(name)
	if err != nil {
		return nil, err
	}
	opts := append(append([]image.Option(nil), bd.o.imageOpts...), image.WithStore(bd.store), image.WithTempDir(bd.o.tmpDir))
	src, err := image.Open(ctx, ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("FROM %s: %w", name, err)
	}
	defer src.Close()
	img, err := src.Select(&plat)
	if err != nil {
		if src.Image != nil && errdefs.IsNotFound(err) && ref.Transport != image.Auto && ref.Transport != image.Registry {
			img = src.Image // a single image from a file: take it as it is, as buildah does
		} else {
			return nil, fmt.Errorf("FROM %s: %w", name, err)
		}
	}
	desc, err := image.Artifact{Image: img}.Descriptor()
	if err != nil {
		return nil, err
	}
	if src.Ref.Transport != image.Local && !bd.hasImage(ctx, img) {
		storeName := ""
		if src.Ref.Transport == image.Registry {
			storeName = src.Ref.Name
		}
		bd.printf("Pulling %s\n", name)
		if _, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: storeName}, image.Artifact{Image: img}, opts...); err != nil {
			return nil, fmt.Errorf("FROM %s: %w", name, err)
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	b := &baseImage{digest: desc.Digest}
	if err := json.Unmarshal(raw, &b.img); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("FROM %s: config: %w", name, err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(b.img.RootFS.DiffIDs) {
		return nil, errdefs.InvalidArgument(fmt.Errorf("FROM %s: %d layers but %d diffIDs", name, len(m.Layers), len(b.img.RootFS.DiffIDs)))
	}
	for i, l := range m.Layers {
		d, err := v1.NewHash(b.img.RootFS.DiffIDs[i].String())
		if err != nil {
			return nil, err
		}
		b.layers = append(b.layers, layerInfo{desc: v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}, diffID: d})
	}
	return b, nil
}

// hasImage reports whether the store holds every blob of img.
func (bd *build) hasImage(ctx context.Context, img v1.Image) bool {
	m, err := img.Manifest()
	if err != nil {
		return false
	}
	d, err := img.Digest()
	if err != nil || !bd.store.Has(ctx, d, -1) || !bd.store.Has(ctx, m.Config.Digest, m.Config.Size) {
		return false
	}
	for _, l := range m.Layers {
		if !bd.store.Has(ctx, l.Digest, l.Size) {
			return false
		}
	}
	return true
}

// fromRef resolves a COPY --from or RUN --mount from= value: a built stage
// (by name or number) or an image. key is what it adds to the cache key:
// the stage's last step key, or the image's manifest digest.
func (bd *build) fromRef(ctx context.Context, from string) (src *stage, layers []layerInfo, key string, err error) {
	ref, _, err := bd.lex.ProcessWord(from, bd.global)
	if err != nil {
		return nil, nil, "", err
	}
	if j, ok := bd.df.stageIndex(ref, len(bd.df.Stages)); ok {
		if bd.stages[j] == nil {
			return nil, nil, "", errdefs.InvalidArgument(fmt.Errorf("--from=%s: stage %s is not built before this one", from, ref))
		}
		return bd.stages[j], bd.stages[j].layers, bd.stages[j].key.String(), nil
	}
	bi, err := bd.loadBase(ctx, ref, bd.target)
	if err != nil {
		return nil, nil, "", err
	}
	return nil, bi.layers, bi.digest.String(), nil
}

// fromSource returns what COPY --from reads: a built stage's file system,
// or an image's, unpacked into a temporary directory (once per build), and
// its cache key (see fromRef).
func (bd *build) fromSource(ctx context.Context, from string) (*Context, string, error) {
	src, layers, key, err := bd.fromRef(ctx, from)
	if err != nil {
		return nil, "", err
	}
	if c, ok := bd.sources[key]; ok {
		return c, key, nil
	}
	dir, err := bd.unpack(ctx, layers)
	if err != nil {
		return nil, "", err
	}
	if src != nil && src.rootDir == "" {
		src.rootDir = dir
	} else {
		bd.unpacked = append(bd.unpacked, dir)
	}
	c, err := ContextFromDir(dir)
	if err != nil {
		return nil, "", err
	}
	// Unpacked as root, files keep their owners; otherwise they were not
	// set and are taken as root's (0:0), as for the build context.
	c.owners = os.Geteuid() == 0
	bd.contexts = append(bd.contexts, c)
	if bd.sources == nil {
		bd.sources = map[string]*Context{}
	}
	bd.sources[key] = c
	return c, key, nil
}

// unpack extracts layers, with overlay rules, into a new temporary
// directory.
func (bd *build) unpack(ctx context.Context, layers []layerInfo) (string, error) {
	dir, err := os.MkdirTemp(bd.tempDir(), "lading-stage-*")
	if err != nil {
		return "", err
	}
	for _, l := range layers {
		rc, err := bd.openLayer(ctx, l)
		if err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		err = layer.Extract(ctx, dir, rc, layer.ApplyWhiteouts(), layer.WithXattrs(), layer.AllowDevices(), layer.WithName("layer "+l.desc.Digest.String()))
		rc.Close()
		if err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// openLayer opens a layer of the store, decompressed and verified.
func (bd *build) openLayer(ctx context.Context, l layerInfo) (io.ReadCloser, error) {
	rc, _, err := bd.store.OpenBlob(ctx, l.desc.Digest)
	if err != nil {
		return nil, err
	}
	ur, _, err := layer.Decompress(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &stackCloser{ReadCloser: ur, under: rc}, nil
}

type stackCloser struct {
	io.ReadCloser
	under io.Closer
}

func (s *stackCloser) Close() error {
	err := s.ReadCloser.Close()
	if e := s.under.Close(); err == nil {
		err = e
	}
	return err
}

// commit writes the stage's config and manifest into the store and
// returns the image. The config's created time is the last history
// entry's (so a rebuild from the cache gives the same image).
func (st *stage) commit(ctx context.Context) (*Result, error) {
	cfg := cloneImage(st.img)
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = nil
	for _, l := range st.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digestOf(l.diffID))
	}
	if n := len(cfg.History); n > 0 && cfg.History[n-1].Created != nil {
		t := *cfg.History[n-1].Created
		cfg.Created = &t
	} else if st.bd.o.epoch != nil {
		t := *st.bd.o.epoch
		cfg.Created = &t
	} else {
		t := time.Now().UTC()
		cfg.Created = &t
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDigest, err := st.bd.store.PutBlob(ctx, rawCfg)
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: cfgDigest, Size: int64(len(rawCfg))},
		Layers:        []v1.Descriptor{},
	}
	for _, l := range st.layers {
		m.Layers = append(m.Layers, l.desc)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, err := st.bd.store.PutBlob(ctx, raw)
	if err != nil {
		return nil, err
	}
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: md, Size: int64(len(raw))}
	img, err := content.ImageFromManifest(storeSource{ctx: ctx, st: st.bd.store}, desc, raw)
	if err != nil {
		return nil, err
	}
	desc.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	return &Result{Image: img, Descriptor: desc, ID: cfgDigest}, nil
}

// storeSource serves the store's blobs to content.
type storeSource struct {
	ctx context.Context
	st  *store.Store
}

func (s storeSource) Name() string { return "local store" }

func (s storeSource) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	rc, _, err := s.st.OpenBlob(s.ctx, d.Digest)
	return rc, err
}

func digestOf(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }
