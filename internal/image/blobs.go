package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/store"
)

// blob is one blob of an artifact.
type blob struct {
	desc  v1.Descriptor
	raw   []byte                        // manifests, indexes, configs
	open  func() (io.ReadCloser, error) // layers: a verified stream
	layer bool
}

func (b blob) reader() (io.ReadCloser, error) {
	if b.raw != nil {
		return io.NopCloser(bytes.NewReader(b.raw)), nil
	}
	return b.open()
}

// blobsOf lists every blob of an artifact once, each before the manifest or
// index that names it; the artifact's own manifest comes last.
func blobsOf(art Artifact) ([]blob, error) {
	var out []blob
	seen := map[v1.Hash]bool{}
	add := func(b blob) {
		if !seen[b.desc.Digest] {
			seen[b.desc.Digest] = true
			out = append(out, b)
		}
	}
	var walkImage func(img v1.Image) error
	var walkIndex func(x v1.ImageIndex, depth int) error
	walkImage = func(img v1.Image) error {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			var desc v1.Descriptor
			for _, ld := range m.Layers {
				if ld.Digest == d {
					desc = ld
					break
				}
			}
			add(blob{desc: desc, open: l.Compressed, layer: true})
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		add(blob{desc: m.Config, raw: cfg})
		d, err := Artifact{Image: img}.Descriptor()
		if err != nil {
			return err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return err
		}
		add(blob{desc: d, raw: raw})
		return nil
	}
	walkIndex = func(x v1.ImageIndex, depth int) error {
		if depth > 4 {
			return errdefs.InvalidArgument(errors.New("indexes nested deeper than 4"))
		}
		m, err := x.IndexManifest()
		if err != nil {
			return err
		}
		for _, c := range m.Manifests {
			if seen[c.Digest] {
				continue
			}
			if isIndexType(c.MediaType) {
				child, err := x.ImageIndex(c.Digest)
				if err != nil {
					return err
				}
				if err := walkIndex(child, depth+1); err != nil {
					return err
				}
				continue
			}
			img, err := x.Image(c.Digest)
			if err != nil {
				return err
			}
			if err := walkImage(img); err != nil {
				return err
			}
		}
		d, err := Artifact{Index: x}.Descriptor()
		if err != nil {
			return err
		}
		raw, err := x.RawManifest()
		if err != nil {
			return err
		}
		add(blob{desc: d, raw: raw})
		return nil
	}
	var err error
	if art.Image != nil {
		err = walkImage(art.Image)
	} else {
		err = walkIndex(art.Index, 0)
	}
	return out, err
}

// writeToStore writes every blob of art into st, layers in parallel, then
// configs and manifests, and returns the artifact's descriptor. Blobs st
// already has are not read. Non-distributable layers the source lacks are
// skipped.
func writeToStore(ctx context.Context, st *store.Store, art Artifact, o *options) (v1.Descriptor, error) {
	blobs, err := blobsOf(art)
	if err != nil {
		return v1.Descriptor{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for _, b := range blobs {
		if !b.layer {
			continue
		}
		b := b
		g.Go(func() error { return writeLayerBlob(gctx, st, b, o.progress) })
	}
	if err := g.Wait(); err != nil {
		return v1.Descriptor{}, err
	}
	for _, b := range blobs {
		if b.layer {
			continue
		}
		if err := st.WriteBlob(ctx, b.desc.Digest, int64(len(b.raw)), bytes.NewReader(b.raw)); err != nil {
			return v1.Descriptor{}, err
		}
	}
	return art.Descriptor()
}

func writeLayerBlob(ctx context.Context, st *store.Store, b blob, p progress.Reporter) error {
	id := short(b.desc.Digest)
	if st.Has(ctx, b.desc.Digest, b.desc.Size) {
		p.Task(id, "copy", b.desc.Size).Skip("already exists")
		return nil
	}
	rc, err := b.open()
	if err != nil {
		if errdefs.IsNotFound(err) && !b.desc.MediaType.IsDistributable() {
			p.Task(id, "copy", b.desc.Size).Skip("non-distributable layer, not copied")
			return nil
		}
		return err
	}
	defer rc.Close()
	task := p.Task(id, "copy", b.desc.Size)
	err = st.WriteBlob(ctx, b.desc.Digest, b.desc.Size, progress.Reader(rc, task))
	if err != nil {
		err = fmt.Errorf("layer %s: %w", b.desc.Digest, err)
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
