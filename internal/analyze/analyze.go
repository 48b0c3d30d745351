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
// the digest of its blob as it was read and verified, one entry per
// analyzer and analyzer version plus one for the layer's path index and
// the diffID the content was found to have ([WithCache]); bumping one
// analyzer's version makes only that analyzer read the layer again. A
// diffID the image config gives is a claim: it is checked against the
// content as the layer is read, or against the diffID recorded in the
// cache, and never keys anything.
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
// An integrity failure stops the analysis with an [*IntegrityError] naming
// the layer and its digest: a blob that is missing, cannot be read, or does
// not match its digest or size, content that does not match the config's
// diffID, a config with another number of diffIDs than the manifest has
// layers. The first one found ends the analysis; layers not started are not
// read. Short of that, a file an analyzer cannot read and a layer whose
// entries the walker refuses as hostile or malformed are warnings in the
// Inventory, naming the layer and the file or entry; such a layer
// contributes what was read before the problem (what a runtime that
// unpacked it that far would show) and is not cached.
//
// The analyzers run are listed in [Default]; each has a version, and none
// registers itself.
package analyze

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/errdefs"
)

// LayerSource is one layer to analyze.
type LayerSource struct {
	// Digest is the digest of the layer blob ("sha256:…") that Open reads
	// and verifies; it keys the cache. Empty disables caching for the
	// layer (a layer whose digest was computed, not given, such as dir:'s).
	Digest string
	// DiffID is the digest of the uncompressed layer that the image config
	// claims; the content is checked against it. Empty: nothing claimed.
	DiffID string
	// CreatedBy is the history entry of the layer, for the inventory.
	CreatedBy string
	// Open returns the uncompressed tar stream, verified against Digest as
	// it is read (a blob that does not match fails the read at its end).
	// It is called at most once, and not at all when every result comes
	// from the cache.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Present, when set, checks without reading it that the image has the
	// blob; it is called when every result comes from the cache.
	Present func(ctx context.Context) error
	// Verify, when set, reads the blob to its end and checks it against
	// Digest. It is called instead of Present when every result comes from
	// the cache but Digest is the config's diffID (an uncompressed layer of
	// a docker-archive, found by its path, not its digest): the digest is
	// then a claim of the config, and a claim is checked before cached
	// results stand for it.
	Verify func(ctx context.Context) error
}

// Image analyzes img. The error is an [*IntegrityError] when a layer is not
// what the image says it is, or one that prevents any analysis (the image's
// config or manifest cannot be read); a file that cannot be analyzed, or a
// layer the walker refuses, is a warning in the Inventory.
func Image(ctx context.Context, img v1.Image, opts ...Option) (*Inventory, error) {
	srcs, err := Sources(img)
	var ie *IntegrityError
	if errors.As(err, &ie) && ie.Name == "" {
		ie.Name = cmp.Or(makeOptions(opts).name, "image")
	}
	if err != nil {
		return nil, err
	}
	return Layers(ctx, srcs, opts...)
}

// Sources returns the layers of img as LayerSources, with the history
// entry of each layer. A config that gives another number of diffIDs than
// the manifest has layers is an integrity failure.
func Sources(img v1.Image) ([]LayerSource, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if n := len(cf.RootFS.DiffIDs); n != len(ls) {
		return nil, &IntegrityError{Index: -1, Err: errdefs.Corrupt(fmt.Errorf(
			"the manifest lists %d layers, but the config gives %d diffIDs", len(ls), n))}
	}
	var created []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			created = append(created, h.CreatedBy)
		}
	}
	srcs := make([]LayerSource, len(ls))
	for i, l := range ls {
		src := LayerSource{
			DiffID: cf.RootFS.DiffIDs[i].String(),
			Open:   func(context.Context) (io.ReadCloser, error) { return openLayer(l) },
		}
		if d, err := l.Digest(); err == nil {
			src.Digest = d.String()
		}
		if p, ok := l.(interface{ Present() error }); ok {
			src.Present = func(context.Context) error { return p.Present() }
		}
		src.Verify = func(ctx context.Context) error {
			rc, err := l.Compressed() // verifies the digest at its end
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = ctxio.Copy(ctx, io.Discard, rc)
			return err
		}
		if len(created) == len(ls) {
			src.CreatedBy = created[i]
		}
		srcs[i] = src
	}
	return srcs, nil
}

// Layers analyzes a stack of layers, base first. The first integrity
// failure ends it: layers above the failing one are stopped and those not
// started are not read; layers below it are finished, and the error of the
// lowest failing layer is returned, whatever the order they failed in.
func Layers(ctx context.Context, layers []LayerSource, opts ...Option) (*Inventory, error) {
	o := makeOptions(opts)
	outs := make([]*layerOutcome, len(layers))
	errs := make([]error, len(layers))
	var (
		mu      sync.Mutex
		cancels = make([]context.CancelFunc, len(layers))
		failed  = len(layers) // the lowest failing layer
	)
	// fail records that layer i failed and stops the layers above it.
	fail := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		if i >= failed {
			return
		}
		failed = i
		for j := i + 1; j < len(cancels); j++ {
			if cancels[j] != nil {
				cancels[j]()
			}
		}
	}
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i, src := range layers {
		sem <- struct{}{}
		mu.Lock()
		stop := failed < len(layers) || ctx.Err() != nil
		lctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		mu.Unlock()
		if stop {
			<-sem
			break
		}
		name := fmt.Sprintf("layer %d/%d", i+1, len(layers))
		if o.name != "" {
			name = o.name + ": " + name
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i], errs[i] = o.analyzeLayer(lctx, i, src, name)
			if errs[i] != nil {
				fail(i)
			}
		}()
	}
	wg.Wait()
	for _, c := range cancels {
		if c != nil {
			c()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		var ie *IntegrityError
		if errors.As(err, &ie) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
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
