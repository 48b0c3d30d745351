// Package fs is the storage driver for a local directory.
//
// Files live at <root>/<path>. A Writer writes to a temporary file beside its
// target, named ".<base>.tmp-<random>", which Commit fsyncs, renames over the
// target and makes durable by fsyncing the directory; no other process ever
// sees a partial file at a driver path. A crash leaves at most such
// temporary files, which Purge removes and Walk never reports.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/storage"
)

// Driver stores files below a root directory.
type Driver struct {
	root string
}

var (
	_ storage.Driver = (*Driver)(nil)
	_ storage.Purger = (*Driver)(nil)
)

// New returns a driver rooted at dir, creating dir if needed.
func New(dir string) (*Driver, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage root %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage root %s: %w", dir, err)
	}
	return &Driver{root: abs}, nil
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return "filesystem" }

// Root is the directory the driver stores its files in.
func (d *Driver) Root() string { return d.root }

func (d *Driver) full(p string, allowRoot bool) (string, error) {
	if err := storage.CheckPath(p, allowRoot); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(p)), nil
}

func classify(p string, err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return errdefs.NotFound(fmt.Errorf("storage path %s: %w", p, err))
	}
	return fmt.Errorf("storage path %s: %w", p, err)
}

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	full, err := d.full(p, false)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, classify(p, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, classify(p, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, errdefs.NotFound(fmt.Errorf("storage path %s: is a directory", p))
	}
	if offset < 0 || offset > st.Size() {
		f.Close()
		return nil, errdefs.InvalidArgument(fmt.Errorf("storage path %s: offset %d outside 0..%d", p, offset, st.Size()))
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, classify(p, err)
		}
	}
	return f, nil
}

// Writer implements storage.Driver.
func (d *Driver) Writer(ctx context.Context, p string) (storage.Writer, error) {
	full, err := d.full(p, false)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(full)
	var f *os.File
	// A concurrent Delete may prune a directory between its creation
	// and the creation of its child or the open (two uploads of one
	// image: one ends and prunes uploads/ as the other starts); try
	// again a few times.
	for try := 0; ; try++ {
		err := d.mkdirAll(dir)
		if err == nil {
			f, err = os.OpenFile(filepath.Join(dir, "."+filepath.Base(full)+".tmp-"+randomSuffix()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				break
			}
		}
		if !errors.Is(err, iofs.ErrNotExist) || try == 7 {
			return nil, classify(p, err)
		}
	}
	return &writer{path: p, target: full, f: f}, nil
}

// mkdirAll creates dir and its missing parents, fsyncing the parent of every
// directory it creates so the new entries survive a crash. A concurrent
// Delete may prune a parent it just made before dir is made in it: it
// makes the parent again, a few times.
func (d *Driver) mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	for try := 0; ; try++ {
		if parent != dir {
			if err := d.mkdirAll(parent); err != nil {
				return err
			}
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil || errors.Is(err, iofs.ErrExist) {
			break
		}
		if !errors.Is(err, iofs.ErrNotExist) || try == 3 {
			return err
		}
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type writer struct {
	path   string
	target string
	f      *os.File
	size   int64
	done   bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, storage.ErrWriterClosed
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return n, err
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return storage.ErrWriterClosed
	}
	w.done = true
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		os.Remove(tmp)
		return classify(w.path, err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return classify(w.path, err)
	}
	if err := os.Rename(tmp, w.target); err != nil {
		os.Remove(tmp)
		return classify(w.path, err)
	}
	if err := syncDir(filepath.Dir(w.target)); err != nil {
		return classify(w.path, err)
	}
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return storage.ErrWriterClosed
	}
	w.done = true
	tmp := w.f.Name()
	w.f.Close()
	if err := os.Remove(tmp); err != nil {
		return classify(w.path, err)
	}
	return nil
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	full, err := d.full(p, false)
	if err != nil {
		return storage.FileInfo{}, err
	}
	st, err := os.Stat(full)
	if err != nil {
		return storage.FileInfo{}, classify(p, err)
	}
	if st.IsDir() {
		// A directory exists while it holds a file; empty directories
		// are leftovers of deletes.
		found := false
		err := d.Walk(ctx, p, func(storage.FileInfo) error {
			found = true
			return storage.SkipAll
		})
		if err != nil {
			return storage.FileInfo{}, err
		}
		if !found {
			return storage.FileInfo{}, errdefs.NotFound(fmt.Errorf("storage path %s: empty directory", p))
		}
		return storage.FileInfo{Path: p, IsDir: true, ModTime: st.ModTime()}, nil
	}
	return storage.FileInfo{Path: p, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, p string) error {
	full, err := d.full(p, false)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(full); err != nil {
		return classify(p, err)
	}
	// Prune now-empty parents so directories do not pile up; a racing
	// writer recreates what it needs (mkdirAll), and a failed prune is
	// harmless.
	for dir := filepath.Dir(full); dir != d.root && strings.HasPrefix(dir, d.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// Walk implements storage.Driver.
func (d *Driver) Walk(ctx context.Context, p string, fn storage.WalkFunc) error {
	full, err := d.full(p, true)
	if err != nil {
		return err
	}
	err = d.walk(ctx, full, p, fn)
	if errors.Is(err, storage.SkipAll) {
		return nil
	}
	return err
}

func (d *Driver) walk(ctx context.Context, full, p string, fn storage.WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Lstat(full)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return classify(p, err)
	}
	if !st.IsDir() {
		if st.Mode().IsRegular() {
			return fn(storage.FileInfo{Path: p, Size: st.Size(), ModTime: st.ModTime()})
		}
		return nil
	}
	ents, err := os.ReadDir(full)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return classify(p, err)
	}
	// Lexical order of the full paths: "a/b" sorts after "a-c" only when
	// names are compared with the separator in place, so sort by name+"/"
	// for directories.
	sort.Slice(ents, func(i, j int) bool { return sortKey(ents[i]) < sortKey(ents[j]) })
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // temporary files of writers in flight
		}
		child := name
		if p != "" {
			child = p + "/" + name
		}
		if err := d.walk(ctx, filepath.Join(full, name), child, fn); err != nil {
			return err
		}
	}
	return nil
}

func sortKey(e os.DirEntry) string {
	if e.IsDir() {
		return e.Name() + "/"
	}
	return e.Name()
}

// Move implements storage.Driver.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	fsrc, err := d.full(src, false)
	if err != nil {
		return err
	}
	fdst, err := d.full(dst, false)
	if err != nil {
		return err
	}
	st, err := os.Stat(fsrc)
	if err != nil {
		return classify(src, err)
	}
	if st.IsDir() {
		return errdefs.InvalidArgument(fmt.Errorf("storage move %s: is a directory", src))
	}
	for try := 0; ; try++ {
		if err := d.mkdirAll(filepath.Dir(fdst)); err != nil {
			return classify(dst, err)
		}
		err := os.Rename(fsrc, fdst)
		if err == nil {
			break
		}
		if _, serr := os.Stat(fsrc); serr != nil || try == 3 {
			return classify(src, err)
		}
	}
	if err := syncDir(filepath.Dir(fdst)); err != nil {
		return classify(dst, err)
	}
	if filepath.Dir(fsrc) != filepath.Dir(fdst) {
		if err := syncDir(filepath.Dir(fsrc)); err != nil {
			return classify(src, err)
		}
	}
	return nil
}

// Purge implements storage.Purger: it removes writers' temporary files last
// modified before the given time, and empty directories.
func (d *Driver) Purge(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(d.root, func(path string, e iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), ".") || !strings.Contains(e.Name(), ".tmp-") {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		if info.ModTime().Before(before) {
			if os.Remove(path) == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("purge %s: %w", d.root, err)
	}
	return n, nil
}
