package dockerarchive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/verify"
)

// Named is an image to write with the names it is saved under (RepoTags,
// in docker's familiar form such as "alpine:3.10"; none is allowed).
type Named struct {
	Image v1.Image
	Tags  []string
	// RefNames are the full names for the OCI index.json annotations; they
	// parallel Tags. If nil, Tags are used.
	RefNames []string
}

// WriteOption configures Write.
type WriteOption func(*writeOptions)

type writeOptions struct {
	tmpDir   string
	jobs     int
	progress progress.Reporter
}

// WithTempDir sets where compressed layers are decompressed before they are
// written (their uncompressed size must be known for the tar header).
func WithTempDir(dir string) WriteOption { return func(o *writeOptions) { o.tmpDir = dir } }

// WithJobs sets how many layers are decompressed at once.
func WithJobs(n int) WriteOption { return func(o *writeOptions) { o.jobs = n } }

// WithProgress reports each layer written.
func WithProgress(p progress.Reporter) WriteOption { return func(o *writeOptions) { o.progress = p } }

// layerOut is one unique layer to write.
type layerOut struct {
	diffID v1.Hash
	src    v1.Layer
	direct bool // the source bytes are the uncompressed tar
	size   int64
	tmp    *os.File
	ready  chan struct{}
	err    error
}

// imageOut is one image to write: its config and the diffIDs of its layers.
type imageOut struct {
	named   Named
	cfg     []byte
	cfgHash v1.Hash
	diffIDs []v1.Hash
}

// Write writes images to w as a docker-archive (see the package comment).
// Layers shared by several images are written once. Every layer's
// uncompressed bytes are verified against its diffID; a mismatch aborts with
// an error of class errdefs.ErrCorrupt naming the image and layer, and what
// was written to w until then is not a valid archive. Compressed layers are
// decompressed into temp files ahead of the writer; Write returns only when
// every decompression has stopped and its temp file is gone, whether it
// succeeds or fails.
func Write(ctx context.Context, w io.Writer, images []Named, opts ...WriteOption) error {
	o := writeOptions{jobs: runtime.GOMAXPROCS(0), progress: progress.Nop{}}
	for _, opt := range opts {
		opt(&o)
	}
	o.jobs = max(o.jobs, 1)
	outs, layers, err := plan(images)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	d := decompressAhead(ctx, layers, o)
	defer d.stop(cancel)

	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	sizes := map[v1.Hash]int64{}
	for _, l := range layers {
		select {
		case <-l.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if l.err != nil {
			return l.err
		}
		if err := writeLayer(ctx, tw, l, o.progress, epoch); err != nil {
			return err
		}
		sizes[l.diffID] = l.size
	}
	if err := writeMetadata(tw, outs, sizes, epoch); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return d.g.Wait()
}

// plan reads the configs of images and lists their unique layers, in order
// of first use.
func plan(images []Named) ([]imageOut, []*layerOut, error) {
	var outs []imageOut
	var layers []*layerOut
	seen := map[v1.Hash]bool{}
	for _, n := range images {
		cfg, err := n.Image.RawConfigFile()
		if err != nil {
			return nil, nil, err
		}
		cf, err := n.Image.ConfigFile()
		if err != nil {
			return nil, nil, err
		}
		ls, err := n.Image.Layers()
		if err != nil {
			return nil, nil, err
		}
		if len(ls) != len(cf.RootFS.DiffIDs) {
			return nil, nil, errdefs.InvalidArgument(fmt.Errorf("image %v: %d layers but %d diffIDs in the config", n.Tags, len(ls), len(cf.RootFS.DiffIDs)))
		}
		cfgHash, _ := verify.FromBytes(cfg, "sha256")
		for i, l := range ls {
			diffID := cf.RootFS.DiffIDs[i]
			if seen[diffID] {
				continue
			}
			seen[diffID] = true
			lo, err := newLayerOut(diffID, l)
			if err != nil {
				return nil, nil, err
			}
			layers = append(layers, lo)
		}
		outs = append(outs, imageOut{named: n, cfg: cfg, cfgHash: cfgHash, diffIDs: cf.RootFS.DiffIDs})
	}
	return outs, layers, nil
}

func newLayerOut(diffID v1.Hash, l v1.Layer) (*layerOut, error) {
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	lo := &layerOut{diffID: diffID, src: l, ready: make(chan struct{})}
	if !content.IsCompressed(mt) {
		lo.direct = true
		if lo.size, err = l.Size(); err != nil {
			return nil, err
		}
	}
	return lo, nil
}

// decompressor decompresses compressed layers into temp files, o.jobs at a
// time, in the order the writer consumes them.
type decompressor struct {
	g      *errgroup.Group
	fed    chan struct{} // closed when every layer has been handed out
	layers []*layerOut
}

func decompressAhead(ctx context.Context, layers []*layerOut, o writeOptions) *decompressor {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	d := &decompressor{g: g, fed: make(chan struct{}), layers: layers}
	go func() {
		defer close(d.fed)
		for _, l := range layers {
			if l.direct {
				close(l.ready)
				continue
			}
			if err := gctx.Err(); err != nil {
				l.err = err
				close(l.ready)
				continue
			}
			g.Go(func() error {
				defer close(l.ready)
				l.err = decompressTo(gctx, l, o.tmpDir)
				return l.err
			})
		}
	}()
	return d
}

// stop cancels what is still running, waits for it and removes the temp
// files.
func (d *decompressor) stop(cancel context.CancelFunc) {
	cancel()
	<-d.fed
	d.g.Wait()
	for _, l := range d.layers {
		if l.tmp != nil {
			l.tmp.Close()
			os.Remove(l.tmp.Name())
		}
	}
}

// writeMetadata writes each image's config and OCI manifest (once per
// digest), then index.json, manifest.json and oci-layout.
func writeMetadata(tw *tar.Writer, outs []imageOut, sizes map[v1.Hash]int64, epoch time.Time) error {
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	var entries []Entry
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	written := map[v1.Hash]bool{}
	for _, out := range outs {
		mb, e := out.manifest(sizes)
		mh, _ := verify.FromBytes(mb, "sha256")
		for _, blob := range []struct {
			h v1.Hash
			b []byte
		}{{out.cfgHash, out.cfg}, {mh, mb}} {
			if !written[blob.h] {
				written[blob.h] = true
				if err := writeFile("blobs/sha256/"+blob.h.Hex, blob.b); err != nil {
					return err
				}
			}
		}
		entries = append(entries, e)
		idx.Manifests = append(idx.Manifests, out.indexEntries(v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(mb))})...)
	}
	ib, _ := json.Marshal(idx)
	mj, _ := json.Marshal(entries)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"index.json", ib}, {"manifest.json", mj}, {"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}} {
		if err := writeFile(f.name, f.b); err != nil {
			return err
		}
	}
	return nil
}

// manifest returns the image's OCI manifest (uncompressed layers) and its
// manifest.json entry.
func (out imageOut) manifest(sizes map[v1.Hash]int64) ([]byte, Entry) {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: out.cfgHash, Size: int64(len(out.cfg))}}
	e := Entry{Config: "blobs/sha256/" + out.cfgHash.Hex, RepoTags: out.named.Tags}
	if e.RepoTags == nil {
		e.RepoTags = []string{}
	}
	for _, d := range out.diffIDs {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: d, Size: sizes[d]})
		e.Layers = append(e.Layers, "blobs/sha256/"+d.Hex)
	}
	mb, _ := json.Marshal(m)
	return mb, e
}

// indexEntries are the index.json entries of the image's manifest desc: one
// per name, or one without a name.
func (out imageOut) indexEntries(desc v1.Descriptor) []v1.Descriptor {
	refs := out.named.RefNames
	if refs == nil {
		refs = out.named.Tags
	}
	if len(refs) == 0 {
		return []v1.Descriptor{desc}
	}
	var ds []v1.Descriptor
	for j, r := range refs {
		d := desc
		d.Annotations = map[string]string{"io.containerd.image.name": r}
		if j < len(out.named.Tags) {
			d.Annotations["org.opencontainers.image.ref.name"] = tagOf(out.named.Tags[j])
		}
		ds = append(ds, d)
	}
	return ds
}

// tagOf returns the tag of a familiar name ("alpine:3.10" -> "3.10").
func tagOf(n string) string {
	slash := -1
	for i := len(n) - 1; i >= 0; i-- {
		if n[i] == '/' {
			slash = i
			break
		}
	}
	for i := len(n) - 1; i > slash; i-- {
		if n[i] == ':' {
			return n[i+1:]
		}
	}
	return "latest"
}

// decompressTo writes the uncompressed, diffID-verified bytes of a
// compressed layer to a temp file and records its size.
func decompressTo(ctx context.Context, l *layerOut, tmpDir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := l.src.Compressed()
	if err != nil {
		return err
	}
	ur, err := content.Decompress(rc)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	defer ur.Close()
	vr, err := verify.NewReader(ur, l.diffID, -1)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "lading-layer-*.tar")
	if err != nil {
		return err
	}
	l.tmp = f
	n, err := ctxio.Copy(ctx, f, vr)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	l.size = n
	_, err = f.Seek(0, io.SeekStart)
	return err
}

func writeLayer(ctx context.Context, tw *tar.Writer, l *layerOut, p progress.Reporter, epoch time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + l.diffID.Hex, Mode: 0o644, Size: l.size, ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	task := p.Task(short(l.diffID), "write", l.size)
	var r io.Reader
	if l.direct {
		rc, err := l.src.Compressed()
		if err != nil {
			task.Done(err)
			return err
		}
		defer rc.Close()
		vr, err := verify.NewReader(rc, l.diffID, l.size)
		if err != nil {
			return err
		}
		r = vr
	} else {
		r = l.tmp
	}
	_, err := ctxio.Copy(ctx, tw, progress.Reader(r, task))
	if err != nil {
		err = fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	task.Done(err)
	return err
}

func short(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Hex[:12]
	}
	return h.Hex
}
