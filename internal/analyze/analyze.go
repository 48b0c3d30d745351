// Package analyze finds what an image holds, without running it: its
// operating system and the exact set of packages of its merged root
// filesystem, each with the layer that introduced it and the layer that last
// changed it, plus the packages that a layer installed and a higher layer
// removed.
//
// [Image] reads each layer's tar stream once, layers in parallel, and hands
// each file to the analyzers that ask for it (by path and file info; see
// package analyzer). Nothing is extracted to disk: files are read as they
// stream by, and only files an analyzer needs whole are buffered, in memory
// when small and in an unlinked temporary file otherwise, so memory stays
// bounded whatever the size of a layer. Each layer's results are cached by
// its diffID, one entry per analyzer and analyzer version plus one for the
// layer's path index ([WithCache]); bumping one analyzer's version makes
// only that analyzer read the layer again.
//
// The per-layer results are then merged by overlay rules, the rules the
// kernel's overlayfs applies to the layers as lower directories: a result
// counts only while its file is visible. A higher layer hides a lower file
// by having an entry at its path (a new version of the file, a directory, a
// symlink, a whiteout) or by having, above it, a whiteout, an opaque
// directory, or a non-directory (a directory replaced by a file or a
// symlink hides the old subtree). So a package database that a later layer
// rewrites replaces the earlier one as a whole. Hard links carry the result
// of their target.
//
// Nothing stops the analysis but a context that ends: a file an analyzer
// cannot read, a layer that cannot be opened, a layer the walker refuses as
// hostile or finds truncated are warnings in the Inventory, naming the layer
// and the file or entry. A layer that cannot be read to its end contributes
// what was read before the problem (what a runtime that unpacked it that far
// would show) and is not cached.
//
// The analyzers run are listed in [Default]; each has a version, and none
// registers itself.
package analyze

import (
	"context"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerSource is one layer to analyze.
type LayerSource struct {
	// DiffID is the digest of the uncompressed layer ("sha256:…"); it keys
	// the cache. Empty disables caching for the layer.
	DiffID string
	// Digest is the digest of the layer blob, for the inventory.
	Digest string
	// CreatedBy is the history entry of the layer, for the inventory.
	CreatedBy string
	// Open returns the uncompressed tar stream. It is called at most once,
	// and not at all when every result comes from the cache.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Image analyzes img. Errors are only those that prevent any analysis
// (the image's config or manifest cannot be read); a layer or a file that
// cannot be read is a warning in the Inventory, and the rest is analyzed.
func Image(ctx context.Context, img v1.Image, opts ...Option) (*Inventory, error) {
	srcs, err := Sources(img)
	if err != nil {
		return nil, err
	}
	return Layers(ctx, srcs, opts...)
}

// Sources returns the layers of img as LayerSources, with the history
// entry of each layer.
func Sources(img v1.Image) ([]LayerSource, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	var created []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			created = append(created, h.CreatedBy)
		}
	}
	srcs := make([]LayerSource, len(ls))
	for i, l := range ls {
		src := LayerSource{Open: func(context.Context) (io.ReadCloser, error) { return openLayer(l) }}
		if d, err := l.DiffID(); err == nil {
			src.DiffID = d.String()
		}
		if d, err := l.Digest(); err == nil {
			src.Digest = d.String()
		}
		if len(created) == len(ls) {
			src.CreatedBy = created[i]
		}
		srcs[i] = src
	}
	return srcs, nil
}

// Layers analyzes a stack of layers, base first.
func Layers(ctx context.Context, layers []LayerSource, opts ...Option) (*Inventory, error) {
	o := makeOptions(opts)
	outs := make([]*layerOutcome, len(layers))
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i, src := range layers {
		name := fmt.Sprintf("layer %d/%d", i+1, len(layers))
		if src.DiffID != "" {
			name += " " + shortDigest(src.DiffID)
		}
		if o.name != "" {
			name = o.name + ": " + name
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = o.analyzeLayer(ctx, i, src, name)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, out := range outs {
		if out.stored {
			if _, err := o.cache.MaybeTrim(ctx); err != nil {
				o.log.Warn("cannot trim the cache", "error", err)
			}
			break
		}
	}
	return merge(outs, o), nil
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}
