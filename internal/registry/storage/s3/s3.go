// Package s3 is the storage driver for an S3-compatible object store (AWS S3,
// MinIO, Ceph RGW, versitygw, ...), built on minio-go.
//
// A driver path p is the object key <prefix>p in one bucket; directories are
// key prefixes ending in "/". Writes are atomic by S3's own rule that an
// object appears only when its PUT or its multipart upload completes: a
// Writer buffers up to PartSize bytes, sends a single PutObject at Commit if
// the content fits in one part, and otherwise uploads parts as they fill and
// completes the multipart upload at Commit. Cancel, or a crash, leaves at
// most an incomplete multipart upload, which is invisible and which Purge
// aborts (a bucket lifecycle rule for incomplete uploads does the same).
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/storage"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	Endpoint  string // host[:port], without scheme
	Secure    bool   // https
	Bucket    string
	Prefix    string // key prefix, "" or ending in "/"
	Region    string
	AccessKey string
	SecretKey string
	// PartSize is the size of multipart upload parts; 0 means 8 MiB. S3
	// requires at least 5 MiB for every part but the last.
	PartSize int64
	// Transport overrides the HTTP transport (tests, custom CAs).
	Transport http.RoundTripper
}

// MinPartSize is the smallest part S3 accepts (but for the last part).
const MinPartSize = 5 << 20

// Driver stores files as objects in a bucket.
type Driver struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	partSize int64
}

var (
	_ storage.Driver = (*Driver)(nil)
	_ storage.Purger = (*Driver)(nil)
)

// New connects to the bucket described by c. It does not create the
// bucket; EnsureBucket does.
func New(c Config) (*Driver, error) {
	if c.Endpoint == "" || c.Bucket == "" {
		return nil, errdefs.InvalidArgument(errors.New("s3 storage: endpoint and bucket are required"))
	}
	if c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.PartSize == 0 {
		c.PartSize = 8 << 20
	}
	if c.PartSize < MinPartSize {
		return nil, errdefs.InvalidArgument(fmt.Errorf("s3 storage: part size %d below the S3 minimum %d", c.PartSize, MinPartSize))
	}
	cl, err := minio.New(c.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:       c.Secure,
		Region:       c.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    c.Transport,
	})
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("s3 storage %s: %w", c.Endpoint, err))
	}
	return &Driver{client: cl, core: minio.Core{Client: cl}, bucket: c.Bucket, prefix: c.Prefix, partSize: c.PartSize}, nil
}

// EnsureBucket creates the bucket when it does not exist.
func (d *Driver) EnsureBucket(ctx context.Context, region string) error {
	ok, err := d.client.BucketExists(ctx, d.bucket)
	if err != nil {
		return d.classify("bucket "+d.bucket, err)
	}
	if ok {
		return nil
	}
	if err := d.client.MakeBucket(ctx, d.bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return d.classify("bucket "+d.bucket, err)
	}
	return nil
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return "s3" }

func (d *Driver) key(p string, allowRoot bool) (string, error) {
	if err := storage.CheckPath(p, allowRoot); err != nil {
		return "", err
	}
	return d.prefix + p, nil
}

func (d *Driver) classify(p string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NotFound" || resp.StatusCode == http.StatusNotFound:
		return errdefs.NotFound(fmt.Errorf("s3 %s: %w", p, err))
	case resp.Code == "AccessDenied" || resp.StatusCode == http.StatusForbidden:
		return errdefs.Denied(fmt.Errorf("s3 %s: %w", p, err))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return errdefs.Unavailable(fmt.Errorf("s3 %s: %w", p, err))
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) {
		return errdefs.Unavailable(fmt.Errorf("s3 %s: %w", p, err))
	}
	return fmt.Errorf("s3 %s: %w", p, err)
}

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	k, err := d.key(p, false)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("s3 %s: negative offset %d", p, offset))
	}
	opts := minio.GetObjectOptions{}
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("s3 %s: %w", p, err))
		}
	}
	rc, _, _, err := d.core.GetObject(ctx, d.bucket, k, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// The offset is at or past the end: S3 has no empty
			// ranges, so decide from the size.
			fi, serr := d.Stat(ctx, p)
			if serr != nil {
				return nil, serr
			}
			if offset == fi.Size {
				return io.NopCloser(bytes.NewReader(nil)), nil
			}
			return nil, errdefs.InvalidArgument(fmt.Errorf("s3 %s: offset %d outside 0..%d", p, offset, fi.Size))
		}
		return nil, d.classify(p, err)
	}
	return rc, nil
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	k, err := d.key(p, false)
	if err != nil {
		return storage.FileInfo{}, err
	}
	oi, err := d.client.StatObject(ctx, d.bucket, k, minio.StatObjectOptions{})
	if err == nil {
		return storage.FileInfo{Path: p, Size: oi.Size, ModTime: oi.LastModified}, nil
	}
	cerr := d.classify(p, err)
	if !errdefs.IsNotFound(cerr) {
		return storage.FileInfo{}, cerr
	}
	// A directory: some key below p/.
	for oi := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: k + "/", Recursive: true, MaxKeys: 1}) {
		if oi.Err != nil {
			return storage.FileInfo{}, d.classify(p, oi.Err)
		}
		return storage.FileInfo{Path: p, IsDir: true, ModTime: oi.LastModified}, nil
	}
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("s3 %s: %w", p, err)
	}
	return storage.FileInfo{}, cerr
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, p string) error {
	k, err := d.key(p, false)
	if err != nil {
		return err
	}
	if err := d.client.RemoveObject(ctx, d.bucket, k, minio.RemoveObjectOptions{}); err != nil {
		if cerr := d.classify(p, err); !errdefs.IsNotFound(cerr) {
			return cerr
		}
	}
	// The listing feeds the bulk delete; both are iterators run in this
	// goroutine, so that nothing outlives the call however it ends.
	var listErr error
	keys := func(yield func(minio.ObjectInfo) bool) {
		for oi := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: k + "/", Recursive: true}) {
			if oi.Err != nil {
				listErr = oi.Err
				return
			}
			if !yield(oi) {
				return
			}
		}
	}
	results, err := d.client.RemoveObjectsWithIter(ctx, d.bucket, keys, minio.RemoveObjectsOptions{})
	if err != nil {
		return d.classify(p, err)
	}
	var rmErr error
	for r := range results {
		if r.Err != nil && rmErr == nil {
			rmErr = r.Err
		}
	}
	switch {
	case listErr != nil:
		return d.classify(p, listErr)
	case rmErr != nil:
		return d.classify(p, rmErr)
	case ctx.Err() != nil:
		// The iterators stop quietly when the context ends.
		return fmt.Errorf("s3 %s: %w", p, ctx.Err())
	}
	return nil
}

// Walk implements storage.Driver.
func (d *Driver) Walk(ctx context.Context, p string, fn storage.WalkFunc) error {
	k, err := d.key(p, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p != "" {
		// p itself may be a file.
		oi, err := d.client.StatObject(ctx, d.bucket, k, minio.StatObjectOptions{})
		if err == nil {
			if err := fn(storage.FileInfo{Path: p, Size: oi.Size, ModTime: oi.LastModified}); err != nil && !errors.Is(err, storage.SkipAll) {
				return err
			}
			return nil
		}
		if cerr := d.classify(p, err); !errdefs.IsNotFound(cerr) {
			return cerr
		}
		k += "/"
	}
	for oi := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: k, Recursive: true}) {
		if oi.Err != nil {
			return d.classify(p, oi.Err)
		}
		rel := strings.TrimPrefix(oi.Key, d.prefix)
		if storage.CheckPath(rel, false) != nil {
			continue // not ours (foreign keys in a shared bucket)
		}
		if err := fn(storage.FileInfo{Path: rel, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			if errors.Is(err, storage.SkipAll) {
				return nil
			}
			return err
		}
	}
	return ctx.Err()
}

// Move implements storage.Driver: a server-side copy (multipart for large
// objects), then a delete of the source.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	ks, err := d.key(src, false)
	if err != nil {
		return err
	}
	kd, err := d.key(dst, false)
	if err != nil {
		return err
	}
	_, err = d.client.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: d.bucket, Object: kd},
		minio.CopySrcOptions{Bucket: d.bucket, Object: ks})
	if err != nil {
		return d.classify(src, err)
	}
	if err := d.client.RemoveObject(ctx, d.bucket, ks, minio.RemoveObjectOptions{}); err != nil {
		return d.classify(src, err)
	}
	return nil
}

// Purge implements storage.Purger: it aborts multipart uploads under the
// prefix started before the given time.
func (d *Driver) Purge(ctx context.Context, before time.Time) (int, error) {
	n := 0
	for u := range d.client.ListIncompleteUploads(ctx, d.bucket, d.prefix, true) {
		if u.Err != nil {
			return n, d.classify("incomplete uploads", u.Err)
		}
		if u.Initiated.Before(before) {
			if err := d.core.AbortMultipartUpload(ctx, d.bucket, u.Key, u.UploadID); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// Writer implements storage.Driver.
func (d *Driver) Writer(ctx context.Context, p string) (storage.Writer, error) {
	k, err := d.key(p, false)
	if err != nil {
		return nil, err
	}
	return &writer{d: d, path: p, key: k, ctx: ctx}, nil
}

type writer struct {
	d     *Driver
	path  string
	key   string
	ctx   context.Context // for part uploads made from Write
	buf   []byte
	size  int64
	id    string // multipart upload id, once started
	parts []minio.CompletePart
	done  bool
	err   error // sticky
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, storage.ErrWriterClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(b) > 0 {
		room := int(w.d.partSize) - len(w.buf)
		take := min(room, len(b))
		w.buf = append(w.buf, b[:take]...)
		b = b[take:]
		n += take
		w.size += int64(take)
		if len(w.buf) == int(w.d.partSize) {
			// Keep a full part buffered until more data arrives,
			// so the last part is never empty; flush the one
			// before.
			if len(b) > 0 {
				if err := w.flush(w.ctx); err != nil {
					w.err = err
					return n, err
				}
			}
		}
	}
	return n, nil
}

func (w *writer) flush(ctx context.Context) error {
	if w.id == "" {
		id, err := w.d.core.NewMultipartUpload(ctx, w.d.bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			return w.d.classify(w.path, err)
		}
		w.id = id
	}
	num := len(w.parts) + 1
	part, err := w.d.core.PutObjectPart(ctx, w.d.bucket, w.key, w.id, num, bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return w.d.classify(w.path, err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
	w.buf = w.buf[:0]
	return nil
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return storage.ErrWriterClosed
	}
	w.done = true
	if w.err != nil {
		w.abort(ctx)
		return w.err
	}
	if w.id == "" {
		_, err := w.d.core.PutObject(ctx, w.d.bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)), "", "", minio.PutObjectOptions{})
		w.buf = nil
		if err != nil {
			return w.d.classify(w.path, err)
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.flush(ctx); err != nil {
			w.abort(ctx)
			return err
		}
	}
	w.buf = nil
	if _, err := w.d.core.CompleteMultipartUpload(ctx, w.d.bucket, w.key, w.id, w.parts, minio.PutObjectOptions{}); err != nil {
		w.abort(ctx)
		return w.d.classify(w.path, err)
	}
	return nil
}

func (w *writer) abort(ctx context.Context) {
	if w.id != "" {
		w.d.core.AbortMultipartUpload(context.WithoutCancel(ctx), w.d.bucket, w.key, w.id)
	}
}

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return storage.ErrWriterClosed
	}
	w.done = true
	w.buf = nil
	if w.id != "" {
		if err := w.d.core.AbortMultipartUpload(ctx, w.d.bucket, w.key, w.id); err != nil {
			return w.d.classify(w.path, err)
		}
	}
	return nil
}
