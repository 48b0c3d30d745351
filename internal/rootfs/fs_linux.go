//go:build linux

package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// state is rootfs.json.
type state struct {
	Mode   Mode      `json:"mode"`
	Layers []v1.Hash `json:"layers"` // diffIDs, bottom first
}

const stateFile = "rootfs.json"

// New makes a writable root file system over layers (bottom first, as in
// a manifest), unpacking into the cache the layers it does not hold yet.
// When the FS directory ([WithDir]) already holds an FS over the same
// layers, it is reused with its changes, as Open does.
func New(ctx context.Context, layers []v1.Layer, opts ...Option) (*FS, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	diffIDs := make([]v1.Hash, len(layers))
	for i, l := range layers {
		if diffIDs[i], err = l.DiffID(); err != nil {
			return nil, fmt.Errorf("rootfs: layer %d: %w", i+1, err)
		}
	}
	c := &cache{dir: o.cache, log: o.log}
	if err := c.init(); err != nil {
		return nil, err
	}
	if o.dir == "" {
		if o.dir, err = c.tmpDir("fs"); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
		f, err := create(ctx, c, o, layers, diffIDs)
		if err != nil {
			os.RemoveAll(o.dir)
		}
		return f, err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if st, err := readState(o.dir); err == nil {
		if !sameLayers(st.Layers, diffIDs) {
			return nil, errdefs.Conflict(fmt.Errorf("rootfs: %s holds a file system over other layers", o.dir))
		}
		return open(ctx, c, o, st)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return create(ctx, c, o, layers, diffIDs)
}

// create makes a new FS in the empty directory o.dir.
func create(ctx context.Context, c *cache, o options, layers []v1.Layer, diffIDs []v1.Hash) (*FS, error) {
	mode := o.mode
	if mode == Auto {
		mode = Copy
		if os.Geteuid() == 0 {
			mode = Overlay
		}
	}
	if mode == Overlay {
		f, err := newOverlay(ctx, c, o, layers, diffIDs)
		if err == nil || o.mode == Overlay {
			return f, err
		}
		o.log.Warn("overlayfs cannot be used here; copying the layers instead", "err", err)
	}
	return newCopy(ctx, c, o, layers, diffIDs)
}

// Open reopens the FS that New made in dir, with its changes. The layers
// must still be in the cache.
func Open(ctx context.Context, dir string, opts ...Option) (*FS, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	o.dir = dir
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return open(ctx, &cache{dir: o.cache, log: o.log}, o, st)
}

func open(ctx context.Context, c *cache, o options, st state) (*FS, error) {
	f := &FS{mode: st.Mode, dir: o.dir, log: o.log}
	switch st.Mode {
	case Overlay:
		lowers, err := c.cachedLayers(st.Layers)
		if err != nil {
			return nil, err
		}
		f.lowers, f.overlay = lowers, true
		f.upper = filepath.Join(o.dir, "upper")
		f.tree = filepath.Join(o.dir, "merged")
		if o.noMount {
			f.tree = ""
			return f, nil
		}
		if err := mountOverlay(lowers, f.upper, filepath.Join(o.dir, "work"), f.tree); err != nil {
			return nil, err
		}
		f.mounted = true
	case Copy:
		d, err := c.cachedChain(st.Layers)
		if err != nil {
			return nil, err
		}
		f.lowers = []string{d}
		f.tree = filepath.Join(o.dir, "tree")
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("rootfs: %s: unknown mode %q", o.dir, st.Mode))
	}
	return f, nil
}

func newOverlay(ctx context.Context, c *cache, o options, layers []v1.Layer, diffIDs []v1.Hash) (*FS, error) {
	lowers := make([]string, len(layers))
	for i, l := range layers {
		d, err := c.layer(ctx, l, fmt.Sprintf("layer %d/%d", i+1, len(layers)))
		if err != nil {
			return nil, err
		}
		lowers[len(layers)-1-i] = d
	}
	if len(lowers) == 0 {
		lowers = []string{c.empty()}
	}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(o.dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
	}
	f := &FS{mode: Overlay, dir: o.dir, upper: filepath.Join(o.dir, "upper"), lowers: lowers, overlay: true, log: o.log}
	if !o.noMount {
		f.tree = filepath.Join(o.dir, "merged")
		if err := mountOverlay(lowers, f.upper, filepath.Join(o.dir, "work"), f.tree); err != nil {
			for _, d := range []string{"upper", "work", "merged"} {
				os.RemoveAll(filepath.Join(o.dir, d))
			}
			return nil, err
		}
		f.mounted = true
	}
	if err := writeState(o.dir, state{Mode: Overlay, Layers: diffIDs}); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func newCopy(ctx context.Context, c *cache, o options, layers []v1.Layer, diffIDs []v1.Hash) (*FS, error) {
	chain, err := c.chain(ctx, layers)
	if err != nil {
		return nil, err
	}
	tree := filepath.Join(o.dir, "tree")
	tmp := tree + ".tmp"
	os.RemoveAll(tmp)
	if err := copyTree(ctx, chain, tmp); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("rootfs: copy the layers: %w", err)
	}
	if err := os.Rename(tmp, tree); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if err := writeState(o.dir, state{Mode: Copy, Layers: diffIDs}); err != nil {
		return nil, err
	}
	return &FS{mode: Copy, dir: o.dir, tree: tree, lowers: []string{chain}, log: o.log}, nil
}

// FromDir returns an FS for dir, a root file system changed outside
// lading, over layers: Changes and Diff compare dir with the layers. The
// directory stays the caller's: Close and Remove leave it alone.
func FromDir(ctx context.Context, dir string, layers []v1.Layer, opts ...Option) (*FS, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if !fi.IsDir() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("rootfs: %s is not a directory", dir))
	}
	c := &cache{dir: o.cache, log: o.log}
	if err := c.init(); err != nil {
		return nil, err
	}
	f := &FS{mode: Dir, tree: dir, log: o.log}
	if os.Geteuid() == 0 && o.mode != Copy {
		for i := len(layers) - 1; i >= 0; i-- {
			d, err := c.layer(ctx, layers[i], fmt.Sprintf("layer %d/%d", i+1, len(layers)))
			if err != nil {
				return nil, err
			}
			f.lowers = append(f.lowers, d)
		}
		f.overlay = true
		return f, nil
	}
	d, err := c.chain(ctx, layers)
	if err != nil {
		return nil, err
	}
	f.lowers = []string{d}
	return f, nil
}

// Close unmounts an Overlay FS (lazily: it goes once nothing uses it). The
// changes stay; Open mounts them again.
func (f *FS) Close() error {
	if !f.mounted {
		return nil
	}
	f.mounted = false
	return unmount(f.tree)
}

// Remove closes the FS and deletes its directory with its changes. An FS
// from FromDir keeps the caller's directory.
func (f *FS) Remove() error {
	err := f.Close()
	if f.mode == Dir || f.dir == "" {
		return err
	}
	if rerr := os.RemoveAll(f.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, errdefs.InvalidArgument(fmt.Errorf("rootfs: %s: %w", filepath.Join(dir, stateFile), err))
	}
	return st, nil
}

func writeState(dir string, st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

func sameLayers(a, b []v1.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
