package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// PruneReport says what Prune removed (or would remove, on a dry run).
type PruneReport struct {
	Blobs     []v1.Hash // unreferenced blobs
	Bytes     int64     // their total size
	TempFiles int       // leftovers of interrupted writes in ingest/
}

// PruneOption configures Prune.
type PruneOption func(*pruneSettings)

type pruneSettings struct {
	keep []func(context.Context) ([]v1.Descriptor, error)
}

// KeepAlso makes Prune keep what the descriptors roots returns reach, as if
// index.json named them (the images of containers). roots is called once
// Prune has the store to itself, so nothing made meanwhile is missed.
func KeepAlso(roots func(context.Context) ([]v1.Descriptor, error)) PruneOption {
	return func(s *pruneSettings) { s.keep = append(s.keep, roots) }
}

// Prune removes every blob that no reference in index.json reaches, through
// indexes, manifests, configs and layers, and the temp files of interrupted
// writes. It needs the store to itself: it waits, until ctx is done, for
// other lading processes that have the store open to close it, and then
// fails with an error of class ErrConflict. With dryRun it only reports.
func (s *Store) Prune(ctx context.Context, dryRun bool, opts ...PruneOption) (PruneReport, error) {
	var ps pruneSettings
	for _, o := range opts {
		o(&ps)
	}
	var rep PruneReport
	if err := flockCtx(ctx, s.gcFD, syscall.LOCK_EX); err != nil {
		// A failed conversion may have dropped the shared lock: take it back.
		syscall.Flock(int(s.gcFD.Fd()), syscall.LOCK_SH)
		return rep, errdefs.Conflict(fmt.Errorf("store %s is in use by another lading process; try again when it is done (%w)", s.root, err))
	}
	defer syscall.Flock(int(s.gcFD.Fd()), syscall.LOCK_SH)

	var roots []v1.Descriptor
	for _, keep := range ps.keep {
		more, err := keep(ctx)
		if err != nil {
			return rep, err
		}
		roots = append(roots, more...)
	}
	live, err := s.Reachable(ctx, roots...)
	if err != nil {
		return rep, err
	}
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return rep, err
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(blobs, alg.Name()))
		if err != nil {
			return rep, err
		}
		for _, e := range ents {
			h := v1.Hash{Algorithm: alg.Name(), Hex: e.Name()}
			if live[h] {
				continue
			}
			if verify.CheckHash(h) != nil {
				continue // not ours: leave it
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			rep.Blobs = append(rep.Blobs, h)
			rep.Bytes += fi.Size()
			if !dryRun {
				if err := os.Remove(filepath.Join(blobs, alg.Name(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					return rep, err
				}
			}
		}
	}
	tmps, err := os.ReadDir(s.ingest)
	if err != nil {
		return rep, err
	}
	for _, t := range tmps {
		rep.TempFiles++
		if !dryRun {
			os.RemoveAll(filepath.Join(s.ingest, t.Name()))
		}
	}
	return rep, nil
}

// Reachable returns the set of blobs the references, and the descriptors
// also, reach. Blobs that are named but absent (non-distributable layers)
// are included.
func (s *Store) Reachable(ctx context.Context, also ...v1.Descriptor) (map[v1.Hash]bool, error) {
	idx, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	live := map[v1.Hash]bool{}
	var walk func(d v1.Descriptor, depth int) error
	walk = func(d v1.Descriptor, depth int) error {
		if live[d.Digest] {
			return nil
		}
		live[d.Digest] = true
		if depth > 8 || !isManifestish(string(d.MediaType)) {
			return nil
		}
		b, err := s.ReadBlob(ctx, d.Digest, maxIndexSize)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		var m struct {
			Config    *v1.Descriptor  `json:"config"`
			Layers    []v1.Descriptor `json:"layers"`
			Manifests []v1.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return errdefs.Corrupt(fmt.Errorf("manifest %s: %w", d.Digest, err))
		}
		if m.Config != nil {
			live[m.Config.Digest] = true
		}
		for _, l := range m.Layers {
			live[l.Digest] = true
		}
		for _, c := range m.Manifests {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range append(idx.Manifests, also...) {
		if err := walk(d, 0); err != nil {
			return nil, err
		}
	}
	return live, nil
}

func isManifestish(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"":
		return true
	}
	return false
}
