package store

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/verify"
)

// BlobWriter writes a blob whose digest is not known in advance (a layer
// being made): bytes go to a temp file in ingest/ while they are hashed, and
// Commit moves the file into place under its sha256 digest. Until Commit
// nothing is visible; a crash leaves only a temp file in ingest/, which
// Prune removes.
type BlobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// NewBlobWriter starts a blob. Call Commit or Abort.
func (s *Store) NewBlobWriter() (*BlobWriter, error) {
	f, err := os.CreateTemp(s.ingest, "blob-*")
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.root, err)
	}
	h, _ := verify.Hasher("sha256")
	return &BlobWriter{s: s, f: f, h: h}, nil
}

// Write writes p to the blob.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("blob writer: write after commit or abort")
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.n }

// Commit fsyncs the blob and moves it into place under its digest, which it
// returns with the size. If the store already holds that blob, the temp
// file is dropped.
func (w *BlobWriter) Commit(ctx context.Context) (v1.Hash, int64, error) {
	if w.done {
		return v1.Hash{}, 0, errors.New("blob writer: already committed or aborted")
	}
	w.done = true
	tmp := w.f.Name()
	fail := func(err error) (v1.Hash, int64, error) {
		w.f.Close()
		os.Remove(tmp)
		return v1.Hash{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", w.h.Sum(nil))}
	if w.s.Has(ctx, d, w.n) {
		return d, w.n, errors.Join(w.f.Close(), os.Remove(tmp))
	}
	if err := w.f.Sync(); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fail(err)
	}
	dst := w.s.blobPath(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fail(err)
	}
	return d, w.n, syncDir(filepath.Dir(dst))
}

// Abort drops what was written. It is safe to call after Commit (it does
// nothing then), so `defer w.Abort()` is the usual pattern.
func (w *BlobWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}
