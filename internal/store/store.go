// Package store is lading's local content store: an OCI image layout on disk
// that several lading processes may use at the same time.
//
// On-disk layout (the same bytes `skopeo inspect oci:ROOT:NAME` and
// `umoci unpack --image ROOT:NAME` read):
//
//	<root>/
//	  oci-layout            {"imageLayoutVersion":"1.0.0"}
//	  index.json            the references: one descriptor per name, annotated with
//	                        org.opencontainers.image.ref.name = the name
//	  blobs/sha256/<hex>    content, named by digest; also blobs/sha512/<hex>
//	  ingest/               temp files of writes in progress (never read as blobs)
//
// Contracts:
//   - A blob becomes visible under blobs/ only after its bytes were hashed and
//     counted while written to a temp file in ingest/, matched the expected
//     digest and size, and were fsynced; the rename is then fsynced through
//     the directory. A crash at any moment leaves either no blob or a whole,
//     verified one, plus possibly a temp file in ingest/ that Prune removes.
//   - index.json is replaced as a whole (temp file, fsync, rename, fsync dir)
//     under an exclusive flock on the root directory, so concurrent writers
//     never lose each other's references. Callers write every blob an image
//     needs before they add its reference, so a reference never names a
//     missing blob (non-distributable layers excepted).
//   - Every process holds a shared flock on ingest/ for as long as the Store is
//     open; Prune takes it exclusively, so blobs being written by another
//     process for a reference not yet added are never collected.
//   - Reads verify: OpenBlob's reader fails at EOF if the file no longer
//     matches its name.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// RefNameAnnotation is the index.json annotation that names a reference.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Store is an open content store. Its methods are safe for concurrent use by
// several goroutines and several processes.
type Store struct {
	root   string
	ingest string
	mu     sync.Mutex // serializes index updates inside this process
	rootFD *os.File   // flock: index.json updates
	gcFD   *os.File   // flock: shared while open, exclusive for Prune
	layout bool       // a user's plain OCI layout: remove ingest/ on Close
}

// Option configures Open.
type Option func(*Store)

// AsLayout opens dir as a plain OCI layout that belongs to the user (an
// `oci:DIR` destination) rather than lading's own store: ingest/ is removed
// on Close when empty.
func AsLayout() Option { return func(s *Store) { s.layout = true } }

// Open opens the store at root, creating it if needed. Close releases it.
func Open(root string, opts ...Option) (*Store, error) {
	s := &Store{root: root, ingest: filepath.Join(root, "ingest")}
	for _, o := range opts {
		o(s)
	}
	for _, d := range []string{root, filepath.Join(root, "blobs", "sha256"), s.ingest} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("store %s: %w", root, err)
		}
	}
	if err := s.initFiles(); err != nil {
		return nil, err
	}
	var err error
	if s.rootFD, err = os.Open(root); err != nil {
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	if s.gcFD, err = os.Open(s.ingest); err != nil {
		s.rootFD.Close()
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	if err := syscall.Flock(int(s.gcFD.Fd()), syscall.LOCK_SH); err != nil {
		s.Close()
		return nil, fmt.Errorf("store %s: lock: %w", root, err)
	}
	return s, nil
}

// initFiles writes oci-layout and an empty index.json if they are missing.
func (s *Store) initFiles() error {
	p := filepath.Join(s.root, "oci-layout")
	if b, err := os.ReadFile(p); err == nil {
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
			return errdefs.InvalidArgument(fmt.Errorf("store %s: oci-layout is not an OCI layout file", s.root))
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(s.ingest, p, []byte(layoutFile)); err != nil {
			return fmt.Errorf("store %s: %w", s.root, err)
		}
	} else {
		return fmt.Errorf("store %s: %w", s.root, err)
	}
	p = filepath.Join(s.root, "index.json")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		b, _ := json.Marshal(emptyIndex())
		if err := writeFileAtomic(s.ingest, p, b); err != nil {
			return fmt.Errorf("store %s: %w", s.root, err)
		}
	}
	return nil
}

func emptyIndex() *v1.IndexManifest {
	return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Close releases the store's locks.
func (s *Store) Close() error {
	if s.gcFD != nil {
		s.gcFD.Close()
	}
	if s.rootFD != nil {
		s.rootFD.Close()
	}
	if s.layout {
		os.Remove(s.ingest) // only when empty
	}
	return nil
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.root, "blobs", h.Algorithm, h.Hex)
}

// Stat returns the size of a blob, or an error of class ErrNotFound.
func (s *Store) Stat(ctx context.Context, h v1.Hash) (int64, error) {
	if err := verify.CheckHash(h); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", h, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Has reports whether the store holds blob h with the given size (-1: any).
func (s *Store) Has(ctx context.Context, h v1.Hash, size int64) bool {
	n, err := s.Stat(ctx, h)
	return err == nil && (size < 0 || n == size)
}

// OpenBlob opens a blob for reading. The reader verifies the content against
// h at EOF (errdefs.ErrCorrupt if the file was damaged since it was written).
func (s *Store) OpenBlob(ctx context.Context, h v1.Hash) (io.ReadCloser, int64, error) {
	if err := verify.CheckHash(h); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", h, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	vr, err := verify.NewReadCloser(f, h, fi.Size())
	if err != nil {
		return nil, 0, err
	}
	return vr, fi.Size(), nil
}

// ReadBlob reads a whole blob that is at most max bytes (manifests, configs).
func (s *Store) ReadBlob(ctx context.Context, h v1.Hash, max int64) ([]byte, error) {
	rc, n, err := s.OpenBlob(ctx, h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if n > max {
		return nil, errdefs.TooLarge(fmt.Errorf("blob %s: %d bytes, limit %d", h, n, max))
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return b, nil
}

// WriteBlob stores the content of r as blob h of the given size (-1 when
// unknown; the digest is still checked). If the store already holds h, r is
// not read. Otherwise r is read to EOF; when its bytes do not match, nothing
// becomes visible and the error is of class ErrCorrupt.
func (s *Store) WriteBlob(ctx context.Context, h v1.Hash, size int64, r io.Reader) error {
	if err := verify.CheckHash(h); err != nil {
		return err
	}
	if s.Has(ctx, h, size) {
		return nil
	}
	vr, err := verify.NewReader(r, h, size)
	if err != nil {
		return err
	}
	dst := s.blobPath(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := s.writeAtomic(ctx, dst, vr); err != nil {
		return fmt.Errorf("blob %s: %w", h, err)
	}
	return nil
}

// PutBlob stores b under its sha256 digest and returns the digest.
func (s *Store) PutBlob(ctx context.Context, b []byte) (v1.Hash, error) {
	h, err := verify.FromBytes(b, "sha256")
	if err != nil {
		return v1.Hash{}, err
	}
	return h, s.WriteBlob(ctx, h, int64(len(b)), bytes.NewReader(b))
}

// writeAtomic copies r to a temp file in ingest/, fsyncs it and renames it
// to dst, then fsyncs dst's directory.
func (s *Store) writeAtomic(ctx context.Context, dst string, r io.Reader) error {
	f, err := os.CreateTemp(s.ingest, "blob-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := ctxio.Copy(ctx, f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return syncDir(filepath.Dir(dst))
}

// DeleteBlob removes a blob. It does not check references; Prune does.
func (s *Store) DeleteBlob(ctx context.Context, h v1.Hash) error {
	if err := verify.CheckHash(h); err != nil {
		return err
	}
	err := os.Remove(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", h, errdefs.ErrNotFound)
	}
	return err
}

func writeFileAtomic(tmpDir, dst string, b []byte) error {
	f, err := os.CreateTemp(tmpDir, "file-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	f.Close()
	os.Chmod(tmp, 0o644)
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockIndex takes the index lock (in-process mutex + flock on the root
// directory) and returns its release.
func (s *Store) lockIndex(ctx context.Context) (func(), error) {
	s.mu.Lock()
	if err := flockCtx(ctx, s.rootFD, syscall.LOCK_EX); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func() {
		syscall.Flock(int(s.rootFD.Fd()), syscall.LOCK_UN)
		s.mu.Unlock()
	}, nil
}

// flockCtx takes a flock, polling so that ctx can cancel the wait.
func flockCtx(ctx context.Context, f *os.File, how int) error {
	for delay := time.Millisecond; ; {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}
