package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/image/ocilayout"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/store"
)

// CommitOptions say how Commit names and describes the new image.
type CommitOptions struct {
	Name    string   // the reference in the local store; "" leaves it untagged
	Message string   // the history entry's comment (-m)
	Author  string   // the config's and the history entry's author (-a)
	Changes []string // Dockerfile instructions applied to the config (--change; see ApplyChanges)
	// Created is the image's creation time (default now); with
	// SourceDateEpoch set, file times in the layer are clamped to it too.
	Created         time.Time
	SourceDateEpoch *time.Time
}

// Committed is the image a commit made.
type Committed struct {
	ID       v1.Hash       // the config digest (the image ID)
	Manifest v1.Descriptor // in the local store
}

// Changes lists what the container changed, as docker diff does.
func (c *Container) Changes(ctx context.Context) ([]rootfs.Change, error) {
	done, err := c.use()
	if err != nil {
		return nil, err
	}
	defer done()
	fsys, err := c.openFS(ctx)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	return fsys.Changes(ctx)
}

func (c *Container) openFS(ctx context.Context) (*rootfs.FS, error) {
	return rootfs.Open(ctx, c.path("rootfs"), rootfs.WithCache(c.s.LayerCache()), rootfs.WithoutMount(), rootfs.WithLogger(c.s.log))
}

// BaseImage returns the container's image from the local store st.
func (c *Container) BaseImage(st *store.Store) (v1.Image, error) {
	l, err := ocilayout.Open(os.DirFS(st.Root()), "local store")
	if err != nil {
		return nil, err
	}
	img, err := content.Image(l, c.Manifest)
	if err != nil {
		return nil, fmt.Errorf("container %s: its image %s: %w", c.Name, c.Image, err)
	}
	return img, nil
}

// Commit turns the container's changes into a new layer on its image, with
// the config and history docker commit writes: the container's config
// (the image's with the run's options: Cmd, Env, ...) changed by
// o.Changes, "container" set to the container's ID, and a history entry
// created by the container's Cmd, with o.Message as comment. The image
// is written into st under o.Name. A running container is committed as it
// is at that moment (it is not paused).
func (c *Container) Commit(ctx context.Context, st *store.Store, o CommitOptions) (Committed, error) {
	done, err := c.use()
	if err != nil {
		return Committed{}, err
	}
	defer done()
	base, err := c.BaseImage(st)
	if err != nil {
		return Committed{}, err
	}
	fsys, err := c.openFS(ctx)
	if err != nil {
		return Committed{}, err
	}
	defer fsys.Close()
	cf, err := base.ConfigFile()
	if err != nil {
		return Committed{}, err
	}
	cf = cf.DeepCopy()
	cf.Config = *c.Config.DeepCopy()
	cf.Container = c.ID
	// As docker: the history entry names the container's Cmd (without the
	// Entrypoint).
	return commit(ctx, st, base, fsys, cf, strings.Join(c.Config.Cmd, " "), o)
}

// Diff writes the container's changes as a layer tar (see rootfs.FS.Diff).
func (c *Container) Diff(ctx context.Context, w io.Writer, opts rootfs.DiffOptions) error {
	done, err := c.use()
	if err != nil {
		return err
	}
	defer done()
	fsys, err := c.openFS(ctx)
	if err != nil {
		return err
	}
	defer fsys.Close()
	return fsys.Diff(ctx, w, opts)
}

// CommitDir commits dir, a root file system changed outside lading, as a
// new layer on base (an image whose layers are in st): the layer holds what
// differs between dir and base's merged layers. The config is base's,
// changed by o.Changes. layerCache is where base's layers are unpacked to
// compare (rootfs.WithCache).
func CommitDir(ctx context.Context, st *store.Store, layerCache, dir string, base v1.Image, o CommitOptions) (Committed, error) {
	layers, err := base.Layers()
	if err != nil {
		return Committed{}, err
	}
	fsys, err := rootfs.FromDir(ctx, dir, layers, rootfs.WithCache(layerCache))
	if err != nil {
		return Committed{}, err
	}
	defer fsys.Close()
	cf, err := base.ConfigFile()
	if err != nil {
		return Committed{}, err
	}
	return commit(ctx, st, base, fsys, cf.DeepCopy(), "lading commit --rootfs", o)
}

// commit writes fsys's diff as a gzip layer on base with config cf and
// adds the image to st.
func commit(ctx context.Context, st *store.Store, base v1.Image, fsys *rootfs.FS, cf *v1.ConfigFile, createdBy string, o CommitOptions) (Committed, error) {
	if err := ApplyChanges(&cf.Config, o.Changes); err != nil {
		return Committed{}, err
	}
	m, err := base.Manifest()
	if err != nil {
		return Committed{}, err
	}
	// The new image reuses the base's blobs: they must still be in the
	// store (lading rmi and prune do not know containers).
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if !st.Has(ctx, d.Digest, d.Size) && d.MediaType.IsDistributable() {
			return Committed{}, errdefs.NotFound(fmt.Errorf("blob %s of the base image is no longer in the local store: pull the image again", d.Digest))
		}
	}
	mt, err := base.MediaType()
	if err != nil {
		return Committed{}, err
	}
	lf, err := writeLayer(ctx, fsys, o.SourceDateEpoch)
	if err != nil {
		return Committed{}, err
	}
	defer os.Remove(lf.path)
	f, err := os.Open(lf.path)
	if err != nil {
		return Committed{}, err
	}
	err = st.WriteBlob(ctx, lf.digest, lf.size, f)
	f.Close()
	if err != nil {
		return Committed{}, err
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC()
	cf.Created = v1.Time{Time: created}
	if o.Author != "" {
		cf.Author = o.Author
	}
	cf.RootFS.Type = "layers"
	cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, lf.diffID)
	cf.History = append(cf.History, v1.History{Created: cf.Created, CreatedBy: createdBy, Comment: o.Message, Author: o.Author})
	rawCfg, err := json.Marshal(cf)
	if err != nil {
		return Committed{}, err
	}
	cfgDigest, err := st.PutBlob(ctx, rawCfg)
	if err != nil {
		return Committed{}, err
	}
	layerMT := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerMT = types.DockerLayer
	}
	m = m.DeepCopy()
	m.Config = v1.Descriptor{MediaType: m.Config.MediaType, Digest: cfgDigest, Size: int64(len(rawCfg))}
	m.Layers = append(m.Layers, v1.Descriptor{MediaType: layerMT, Digest: lf.digest, Size: lf.size})
	m.Annotations = nil
	m.Subject = nil
	if m.MediaType == "" {
		m.MediaType = mt
	}
	rawM, err := json.Marshal(m)
	if err != nil {
		return Committed{}, err
	}
	md, err := st.PutBlob(ctx, rawM)
	if err != nil {
		return Committed{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Digest: md, Size: int64(len(rawM)),
		Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}
	if o.Name != "" {
		err = st.SetRef(ctx, o.Name, desc)
	} else {
		err = st.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
			idx.Manifests = append(idx.Manifests, desc)
			return nil
		})
	}
	if err != nil {
		return Committed{}, err
	}
	return Committed{ID: cfgDigest, Manifest: desc}, nil
}

type layerFile struct {
	path           string
	diffID, digest v1.Hash
	size           int64
}

// writeLayer writes fsys's diff, gzipped, into a temp file, hashing the
// tar (diffID) and the blob (digest) on the way.
func writeLayer(ctx context.Context, fsys *rootfs.FS, epoch *time.Time) (*layerFile, error) {
	f, err := os.CreateTemp("", "lading-commit-*.tar.gz")
	if err != nil {
		return nil, err
	}
	lf := &layerFile{path: f.Name()}
	fail := func(err error) (*layerFile, error) {
		f.Close()
		os.Remove(lf.path)
		return nil, err
	}
	blobHash, tarHash := sha256.New(), sha256.New()
	cw := &counter{w: io.MultiWriter(f, blobHash)}
	gz, err := layer.Compress(cw, layer.Gzip)
	if err != nil {
		return fail(err)
	}
	if err := fsys.Diff(ctx, io.MultiWriter(gz, tarHash), rootfs.DiffOptions{SourceDateEpoch: epoch}); err != nil {
		return fail(err)
	}
	if err := gz.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	lf.size = cw.n
	lf.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarHash.Sum(nil))}
	lf.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(blobHash.Sum(nil))}
	return lf, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
