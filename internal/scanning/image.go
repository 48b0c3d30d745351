package scanning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/verify"
)

// regSource is a repository of this registry as a content.Source: blobs
// are read from storage, and content checks each against its digest.
type regSource struct {
	ctx  context.Context
	c    Content
	repo string
}

func (r regSource) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	rc, _, err := r.c.OpenBlob(r.ctx, r.repo, d.Digest.String())
	return rc, err
}

func (r regSource) Name() string { return r.repo }

// openImage returns the image whose manifest m is in repo.
func (s *Service) openImage(ctx context.Context, repo string, m Manifest) (v1.Image, error) {
	h, err := verify.ParseDigest(m.Digest)
	if err != nil {
		return nil, err
	}
	d := v1.Descriptor{Digest: h, MediaType: types.MediaType(m.MediaType), Size: int64(len(m.Body))}
	return content.ImageFromManifest(regSource{ctx: ctx, c: s.d.Content, repo: repo}, d, m.Body)
}

// analyzeImage analyzes img. Each layer's results come from the shared
// cache, or are stored there (when the caller stores or flushes the
// returned writes), under the digest of the blob read (verified
// as it streams, the registry having verified it on upload), never under
// the diffID the config claims. The analysis fails
// when a layer expands beyond MaxLayerSize (a decompression bomb), when
// the walker refuses a layer (hostile entry names, a truncated stream) or
// when a blob does not match its digest: a registry's verdict must not
// rest on part of an image.
func (s *Service) analyzeImage(ctx context.Context, img v1.Image, name string, log *slog.Logger) (*analyze.Inventory, *layerWrites, error) {
	srcs, err := analyze.Sources(img)
	if err != nil {
		return nil, nil, err
	}
	blobs := make(map[string]bool, len(srcs))
	var tripped atomic.Pointer[error]
	for i := range srcs {
		src := &srcs[i]
		if src.Digest == "" {
			return nil, nil, errdefs.InvalidArgument(fmt.Errorf("layer %d has no digest", i+1))
		}
		blobs[src.Digest] = true
		open, digest, max, idx := src.Open, src.Digest, s.opt.MaxLayerSize, i
		src.Open = func(ctx context.Context) (io.ReadCloser, error) {
			tm, t0 := timingOf(ctx), time.Now()
			rc, err := open(ctx)
			if err != nil {
				return nil, err
			}
			tm.since("blob open", t0)
			return &limitedLayer{rc: rc, left: max, max: max, digest: digest, trip: &tripped, opened: t0, layer: idx, tm: tm}, nil
		}
	}
	writes := &layerWrites{c: s.layers}
	inv, err := analyze.Layers(ctx, srcs,
		analyze.WithCache(imageCache{c: s.layers, blobs: blobs, writes: writes}),
		analyze.WithParallel(s.opt.Parallel),
		analyze.WithTempDir(s.opt.TempDir),
		analyze.WithName(name),
		analyze.WithLogger(s.log))
	if p := tripped.Load(); p != nil {
		return nil, nil, *p
	}
	if err != nil {
		return nil, nil, err
	}
	cached := 0
	for _, l := range inv.Layers {
		if l.Cached {
			cached++
		}
	}
	log.Info(fmt.Sprintf("analyzed %d layers, %d from the layer cache", len(inv.Layers), cached))
	for _, w := range inv.Warnings {
		if w.Layer >= 0 && w.Path == "" && w.Analyzer == "" {
			return nil, nil, errdefs.InvalidArgument(fmt.Errorf("%s", w))
		}
		log.Warn("not analyzed: " + w.String())
	}
	return inv, writes, nil
}

// limitedLayer ends a layer's uncompressed stream with an error once it
// passes max bytes.
type limitedLayer struct {
	rc        io.ReadCloser
	left, max int64
	digest    string
	trip      *atomic.Pointer[error]
	// opened is when the blob was opened: its close ends the layer's
	// analysis, counted in tm.
	opened time.Time
	layer  int
	tm     *timing
}

var errLayerTooLarge = errors.New("layer too large")

func (l *limitedLayer) Read(p []byte) (int, error) {
	if l.left == 0 {
		// At the limit: a stream that has more is too large.
		var one [1]byte
		for {
			n, err := l.rc.Read(one[:])
			if n > 0 {
				err := errdefs.TooLarge(fmt.Errorf("layer %s expands beyond %d bytes uncompressed (scan.max_layer_size): refused as a decompression bomb: %w", l.digest, l.max, errLayerTooLarge))
				l.trip.CompareAndSwap(nil, &err)
				return 0, err
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitedLayer) Close() error {
	l.tm.layer(l.layer, time.Since(l.opened))
	return l.rc.Close()
}
