package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/verify"
)

func isIndexType(mt types.MediaType) bool { return content.IsIndex(mt) }

// compressUncompressed is what CompressAuto means for a registry: gzip the
// layers that are stored uncompressed, keep the others.
const compressUncompressed Compression = "gzip-uncompressed"

// needsConversion reports whether a layer of media type mt must be
// rewritten to end up in compression c.
func needsConversion(mt types.MediaType, c Compression) bool {
	if !mt.IsDistributable() || !mt.IsLayer() {
		return false
	}
	switch c {
	case compressUncompressed:
		return !content.IsCompressed(mt)
	case CompressGzip:
		return mt != types.OCILayer && mt != types.DockerLayer
	case CompressZstd:
		return mt != types.OCILayerZStd
	}
	return false
}

// memSource serves blobs from openers, for rewritten artifacts.
type memSource map[v1.Hash]func() (io.ReadCloser, error)

func (m memSource) Name() string { return "recompressed image" }

func (m memSource) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	if f, ok := m[d.Digest]; ok {
		return f()
	}
	return nil, errdefs.NotFound(fmt.Errorf("blob %s", d.Digest))
}

func (m memSource) raw(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// recompress returns art with its layers in compression c: it is what the
// sinks do with WithCompression. Layers that are already in c, and
// non-distributable layers, are kept byte for byte; others are decompressed
// and compressed again into temp files, which cleanup removes. Configs are
// never changed, so image IDs stay the same; manifest digests change when a
// layer does. Zstd needs OCI media types, so a Docker manifest becomes an
// OCI one. With CompressKeep or CompressAuto, art is returned as it is.
//
// Layers are converted min(o.jobs, GOMAXPROCS) at a time. When one fails,
// or ctx ends, the others stop, and recompress returns only when none is
// running any more and their temp files are gone.
func recompress(ctx context.Context, art Artifact, c Compression, o *options) (Artifact, func(), error) {
	nop := func() {}
	if c != CompressGzip && c != CompressZstd && c != compressUncompressed {
		return art, nop, nil
	}
	blobs, err := blobsOf(art)
	if err != nil {
		return Artifact{}, nop, err
	}
	src := memSource{}
	var jobs []*conversion
	for _, b := range blobs {
		if b.layer && needsConversion(b.desc.MediaType, c) {
			jobs = append(jobs, &conversion{b: b})
		} else if b.layer {
			src[b.desc.Digest] = b.open
		} else {
			src[b.desc.Digest] = src.raw(b.raw)
		}
	}
	if len(jobs) == 0 {
		return art, nop, nil
	}
	cleanup := func() {
		for _, j := range jobs {
			if j.tmp != "" {
				os.Remove(j.tmp)
			}
		}
	}
	if err := convertLayers(ctx, jobs, c, o); err != nil {
		cleanup()
		return Artifact{}, nop, err
	}
	converted := map[v1.Hash]v1.Descriptor{}
	for _, j := range jobs {
		converted[j.b.desc.Digest] = j.out
		tmp := j.tmp
		src[j.out.Digest] = func() (io.ReadCloser, error) { return os.Open(tmp) }
	}
	top, err := rewriteParents(blobs, converted, c, src)
	if err != nil {
		cleanup()
		return Artifact{}, nop, err
	}
	out, err := artifactFor(src, top)
	if err != nil {
		cleanup()
		return Artifact{}, nop, err
	}
	return out, cleanup, nil
}

// conversion is one layer to recompress: its blob, and once done the temp
// file that holds the result and the result's descriptor.
type conversion struct {
	b   blob
	tmp string
	out v1.Descriptor
}

// convertLayers runs the conversions, min(o.jobs, GOMAXPROCS) at a time, and
// returns when every one has stopped.
func convertLayers(ctx context.Context, jobs []*conversion, c Compression, o *options) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(o.jobs, runtime.GOMAXPROCS(0))))
	action := string(c)
	if c == compressUncompressed {
		action = string(CompressGzip)
	}
	for _, j := range jobs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // another layer failed: do not start this one
			}
			f, err := os.CreateTemp(o.tmpDir, "lading-layer-*")
			if err != nil {
				return err
			}
			j.tmp = f.Name()
			defer f.Close()
			task := o.progress.Task(short(j.b.desc.Digest), action, j.b.desc.Size)
			j.out, err = compressLayer(gctx, j.b, c, f)
			task.Done(err)
			return err
		})
	}
	return g.Wait()
}

// rewriteParents rewrites the manifests and indexes of blobs bottom-up
// (blobsOf lists children first) to point at the converted layers, adds the
// rewritten ones to src, and returns the descriptor of the top one.
func rewriteParents(blobs []blob, converted map[v1.Hash]v1.Descriptor, c Compression, src memSource) (v1.Descriptor, error) {
	rewritten := map[v1.Hash]v1.Descriptor{}
	var top v1.Descriptor
	for _, b := range blobs {
		if b.layer || !(content.IsImage(b.desc.MediaType) || content.IsIndex(b.desc.MediaType)) {
			continue
		}
		raw := b.raw
		var err error
		if content.IsImage(b.desc.MediaType) {
			raw, err = rewriteManifest(raw, converted, c)
		} else {
			raw, err = rewriteIndex(raw, rewritten)
		}
		if err != nil {
			return v1.Descriptor{}, err
		}
		d := b.desc
		if !bytes.Equal(raw, b.raw) {
			d.Digest, _ = verify.FromBytes(raw, "sha256")
			d.Size = int64(len(raw))
			var head struct {
				MediaType types.MediaType `json:"mediaType"`
			}
			json.Unmarshal(raw, &head)
			if head.MediaType != "" {
				d.MediaType = head.MediaType
			}
			src[d.Digest] = src.raw(raw)
		}
		rewritten[b.desc.Digest] = d
		top = d
	}
	return top, nil
}

// compressLayer writes layer b, decompressed and compressed with c, to f,
// and returns its new descriptor (media type set for OCI).
func compressLayer(ctx context.Context, b blob, c Compression, f *os.File) (v1.Descriptor, error) {
	rc, err := b.open()
	if err != nil {
		return v1.Descriptor{}, err
	}
	ur, err := content.Decompress(rc)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("layer %s: %w", b.desc.Digest, err)
	}
	defer ur.Close()
	h, _ := verify.Hasher("sha256")
	cw := &countWriter{w: io.MultiWriter(f, h)}
	var zw io.WriteCloser
	mt := types.OCILayer
	if c == CompressZstd {
		zw, err = zstd.NewWriter(cw, zstd.WithEncoderConcurrency(1))
		mt = types.OCILayerZStd
	} else {
		zw, err = gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	if _, err := ctxio.Copy(ctx, zw, ur); err != nil {
		return v1.Descriptor{}, fmt.Errorf("layer %s: %w", b.desc.Digest, err)
	}
	if err := zw.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: sum(h), Size: cw.n}, f.Sync()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// rewriteManifest replaces converted layers in a manifest. A Docker
// manifest stays Docker for gzip and becomes OCI for zstd.
func rewriteManifest(raw []byte, converted map[v1.Hash]v1.Descriptor, c Compression) ([]byte, error) {
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	changed := false
	toOCI := c == CompressZstd && m.MediaType == types.DockerManifestSchema2
	for i, l := range m.Layers {
		if d, ok := converted[l.Digest]; ok {
			nl := l
			nl.Digest, nl.Size, nl.MediaType = d.Digest, d.Size, d.MediaType
			if m.MediaType == types.DockerManifestSchema2 && !toOCI {
				nl.MediaType = types.DockerLayer
			}
			m.Layers[i] = nl
			changed = true
		} else if toOCI {
			m.Layers[i].MediaType = ociLayerType(l.MediaType)
		}
	}
	if !changed {
		return raw, nil
	}
	if toOCI {
		m.MediaType = types.OCIManifestSchema1
		m.Config.MediaType = types.OCIConfigJSON
	}
	return json.Marshal(m)
}

func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}

// rewriteIndex points an index at its rewritten children.
func rewriteIndex(raw []byte, rewritten map[v1.Hash]v1.Descriptor) ([]byte, error) {
	var m v1.IndexManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	changed := false
	for i, c := range m.Manifests {
		if d, ok := rewritten[c.Digest]; ok && d.Digest != c.Digest {
			m.Manifests[i].Digest, m.Manifests[i].Size, m.Manifests[i].MediaType = d.Digest, d.Size, d.MediaType
			changed = true
		}
	}
	if !changed {
		return raw, nil
	}
	if m.MediaType == types.DockerManifestList {
		for _, c := range m.Manifests {
			if c.MediaType == types.OCIManifestSchema1 {
				m.MediaType = types.OCIImageIndex
			}
		}
	}
	return json.Marshal(m)
}
