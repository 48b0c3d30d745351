package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// maxIndexSize bounds index.json, manifests and configs read whole.
const maxIndexSize = 64 << 20

// Index returns the store's index.json. It reads without locking: the file
// is only ever replaced by rename, so a reader sees one whole version.
func (s *Store) Index(ctx context.Context) (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(s.root, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.root, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("store %s: index.json: %w", s.root, err)
	}
	if len(b) > maxIndexSize {
		return nil, errdefs.TooLarge(fmt.Errorf("store %s: index.json over %d bytes", s.root, maxIndexSize))
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, errdefs.Corrupt(fmt.Errorf("store %s: index.json: %w", s.root, err))
	}
	return &idx, nil
}

// Resolve returns the descriptor that index.json names name, or an error of
// class ErrNotFound.
func (s *Store) Resolve(ctx context.Context, name string) (v1.Descriptor, error) {
	idx, err := s.Index(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[RefNameAnnotation] == name {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w", name, errdefs.ErrNotFound)
}

// SetRef points name at desc, replacing what name pointed at before. The
// caller must have written every blob desc reaches.
func (s *Store) SetRef(ctx context.Context, name string, desc v1.Descriptor) error {
	if name == "" {
		return errdefs.InvalidArgument(errors.New("empty reference name"))
	}
	d := desc
	d.Annotations = map[string]string{}
	for k, v := range desc.Annotations {
		d.Annotations[k] = v
	}
	d.Annotations[RefNameAnnotation] = name
	return s.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
		out := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Annotations[RefNameAnnotation] != name {
				out = append(out, m)
			}
		}
		idx.Manifests = append(out, d)
		return nil
	})
}

// RemoveRef removes name from index.json and returns what it pointed at.
func (s *Store) RemoveRef(ctx context.Context, name string) (v1.Descriptor, error) {
	var removed *v1.Descriptor
	err := s.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
		out := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Annotations[RefNameAnnotation] == name {
				m := m
				removed = &m
				continue
			}
			out = append(out, m)
		}
		idx.Manifests = out
		if removed == nil {
			return fmt.Errorf("%s: %w", name, errdefs.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return *removed, nil
}

// UpdateIndex applies fn to index.json under the index lock and writes the
// result atomically. If fn fails, index.json is unchanged.
func (s *Store) UpdateIndex(ctx context.Context, fn func(*v1.IndexManifest) error) error {
	unlock, err := s.lockIndex(ctx)
	if err != nil {
		return fmt.Errorf("store %s: lock index: %w", s.root, err)
	}
	defer unlock()
	idx, err := s.Index(ctx)
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	if idx.SchemaVersion == 0 {
		idx.SchemaVersion = 2
	}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.ingest, filepath.Join(s.root, "index.json"), b)
}
