// Package storage defines the driver interface behind the registry's content:
// a small file system of slash-separated paths that a local directory
// (storage/fs) or an S3-compatible bucket (storage/s3) provides. Every driver
// runs the conformance suite in storage/storagetest.
//
// # Layout
//
// The registry keeps its content under these paths (relative to the driver's
// root: a directory for fs, a bucket and key prefix for s3):
//
//	blobs/
//	  sha256/
//	    ab/
//	      abcdef0123.../
//	        data            a verified blob or manifest, by digest; written
//	                        once through Writer.Commit, never modified
//	  sha512/
//	    12/1234.../data
//	uploads/
//	  <session id>/           32 hex digits
//	    00000000000000000000-3f9a1c0de4b27a65
//	    00000000000001048576-80c1e2f3a4b5c6d7
//	                          committed chunks of an upload session: the
//	                          start offset (20 decimal digits) and a random
//	                          suffix, so racing writers never share a name;
//	                          the session row in the metadata database says
//	                          which chunks count
//
// A blob path exists only for content whose digest has been verified: an
// upload is assembled from its chunks, checked against the digest the client
// names, and only then committed under blobs/. Which repository may see which
// blob, the tags and the manifests' metadata live in the metadata database
// (registry/meta), not here.
//
// Drivers keep their own invisible temporary data next to the paths above
// (fs: files whose names start with "."; s3: incomplete multipart uploads);
// a driver that can leave such data behind after a crash implements Purger.
//
// # Contract
//
// Paths are relative, slash-separated, with segments made of
// [A-Za-z0-9._-] that do not start with a dot; CheckPath enforces this and
// every method of every driver returns an error of class
// errdefs.ErrInvalidArgument for a path it rejects. A missing path is an
// error of class errdefs.ErrNotFound.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Driver is a file system of slash-separated paths.
type Driver interface {
	// Name names the driver for logs and metrics ("filesystem", "s3").
	Name() string

	// Reader opens the file at path for reading from offset. An offset
	// equal to the file's size yields an empty stream; a larger one is an
	// error of class errdefs.ErrInvalidArgument.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)

	// Writer starts a new file at path. Nothing written is visible at
	// path until Commit returns nil; then the whole content is, at once and
	// durably, replacing any previous file at path. Cancel discards the
	// content. The caller must call Commit or Cancel exactly once.
	Writer(ctx context.Context, path string) (Writer, error)

	// Stat describes the file or directory at path. A directory exists
	// while some file exists below it.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// Delete removes the file at path, or every file below path when path
	// is a directory. Deleting a path that does not exist is not an error.
	Delete(ctx context.Context, path string) error

	// Walk calls fn for every file below path (not for directories), in
	// lexical order of their paths. Walking a path that does not exist
	// calls fn never and returns nil. An error from fn stops the walk and
	// is returned; SkipAll stops it without an error.
	Walk(ctx context.Context, path string, fn WalkFunc) error

	// Move replaces the file at dst with the file at src, at once, and
	// removes src.
	Move(ctx context.Context, src, dst string) error
}

// Writer is the write side of Driver.Writer.
type Writer interface {
	io.Writer
	// Size is the number of bytes written so far.
	Size() int64
	// Commit makes the content visible at the writer's path.
	Commit(ctx context.Context) error
	// Cancel discards the content.
	Cancel(ctx context.Context) error
}

// Purger is implemented by drivers that can leave invisible temporary data
// behind when the process dies in the middle of a write. Purge removes such
// data last touched before the given time and reports how much it removed.
type Purger interface {
	Purge(ctx context.Context, before time.Time) (int, error)
}

// FileInfo describes a path.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// WalkFunc is called by Driver.Walk for each file.
type WalkFunc func(FileInfo) error

// SkipAll, returned by a WalkFunc, stops a walk without an error.
var SkipAll = errors.New("skip everything and stop the walk")

// CheckPath reports whether p is a valid driver path. The empty path is the
// root and is only valid where allowRoot is set (Walk, Delete of everything
// is refused).
func CheckPath(p string, allowRoot bool) error {
	if p == "" {
		if allowRoot {
			return nil
		}
		return errdefs.InvalidArgument(errors.New("storage path: empty"))
	}
	if len(p) > 1024 {
		return errdefs.InvalidArgument(fmt.Errorf("storage path %.40q...: longer than 1024 bytes", p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" {
			return errdefs.InvalidArgument(fmt.Errorf("storage path %q: empty segment", p))
		}
		if seg[0] == '.' {
			return errdefs.InvalidArgument(fmt.Errorf("storage path %q: segment %q starts with a dot", p, seg))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return errdefs.InvalidArgument(fmt.Errorf("storage path %q: byte %q not allowed", p, c))
			}
		}
	}
	return nil
}

// ReadAll returns the whole content of the file at path.
func ReadAll(ctx context.Context, d Driver, path string) ([]byte, error) {
	rc, err := d.Reader(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// WriteAll writes b as the file at path, committing it.
func WriteAll(ctx context.Context, d Driver, path string, b []byte) error {
	w, err := d.Writer(ctx, path)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		return fmt.Errorf("write %s: %w", path, err)
	}
	return w.Commit(ctx)
}

// ErrWriterClosed is returned by a Writer used after Commit or Cancel.
var ErrWriterClosed = errors.New("storage writer already committed or cancelled")
