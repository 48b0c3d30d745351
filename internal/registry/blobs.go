package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/verify"
)

// blobDir is the storage directory of a blob; see package storage for the
// layout.
func blobDir(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex[:2] + "/" + h.Hex
}

// blobPath is the storage path of a blob's content.
func blobPath(h v1.Hash) string { return blobDir(h) + "/data" }

func (r *Registry) getBlob(c *call) error {
	ctx := c.req.Context()
	dgst, err := parseDigest(c.rt.ref)
	if err != nil {
		return err
	}
	b, err := r.blobs.Blob(ctx, c.rt.repo, dgst.String())
	if errdefs.IsNotFound(err) {
		up, uerr := r.upstream(c)
		if uerr != nil {
			return uerr
		}
		if up != nil {
			served, perr := r.proxyBlob(c, up, dgst)
			if served || perr != nil {
				return perr
			}
			b, err = r.blobs.Blob(ctx, c.rt.repo, dgst.String())
		}
	}
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+dgst.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	kind, start, end := rangeFull, int64(0), b.Size-1
	if rh := c.req.Header.Get("Range"); rh != "" {
		kind, start, end = parseRange(rh, b.Size)
	}
	switch kind {
	case rangeUnsatisfiable:
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
		return withCode(http.StatusRequestedRangeNotSatisfiable, codeSizeInvalid,
			fmt.Errorf("range %q outside blob %s of %d bytes", c.req.Header.Get("Range"), dgst, b.Size))
	case rangePartial:
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, b.Size))
	}
	n := end - start + 1
	if b.Size == 0 {
		n = 0
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if kind == rangePartial {
		status = http.StatusPartialContent
	}
	if c.req.Method == http.MethodHead {
		c.w.WriteHeader(status)
		return nil
	}
	rc, err := r.driver.Reader(ctx, blobPath(dgst), start)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// Collected between the lookup and the read.
			r.log.Warn("blob listed but not in storage", "repository", c.rt.repo, "digest", dgst.String(), "error", err)
		}
		h.Del("Content-Range")
		return err
	}
	defer rc.Close()
	c.w.WriteHeader(status)
	if err := r.copyOut(c, rc, n); err != nil {
		// The status is out; returning short of Content-Length makes
		// the server close the connection, which the client sees.
		return clientGone(err)
	}
	return nil
}

func (r *Registry) deleteBlob(c *call) error {
	dgst, err := parseDigest(c.rt.ref)
	if err != nil {
		return err
	}
	if err := r.blobs.UnlinkBlob(c.req.Context(), c.rt.repo, dgst.String()); err != nil {
		return err
	}
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

// claim announces a blob write to the metadata store, waiting while the
// garbage collector finishes deleting the same digest.
func (r *Registry) claim(ctx context.Context, dgst v1.Hash) (bool, error) {
	return r.waitCollector(ctx, func() (bool, error) { return r.blobs.ClaimBlob(ctx, dgst.String()) })
}

// waitCollector retries a claim while the collector deletes its digest.
func (r *Registry) waitCollector(ctx context.Context, claim func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(r.limits.ClaimWait)
	for {
		present, err := claim()
		if err == nil || !errors.Is(err, errdefs.ErrUnavailable) || time.Now().After(deadline) {
			return present, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publish makes received and verified content visible as the blob dgst and
// links it into repo: it claims the digest, calls put (a Writer's Commit, a
// Move) unless the content is already present, and commits the row. The
// claim covers only this short step, so the collector's grace window need
// not cover the time a client takes to send the content. It reports whether
// put was called; when it was not, the caller discards its copy.
func (r *Registry) publish(ctx context.Context, repo string, dgst v1.Hash, size int64, put func() error) (bool, error) {
	return r.publishClaimed(ctx, repo, dgst, size, put, nil)
}

// publishClaimed is publish with a first claim made another way (closing
// an upload session claims its digest); nil means a plain claim.
func (r *Registry) publishClaimed(ctx context.Context, repo string, dgst v1.Hash, size int64, put func() error, first func() (bool, error)) (bool, error) {
	used := false
	for attempt := 0; ; attempt++ {
		claim := func() (bool, error) { return r.claim(ctx, dgst) }
		if attempt == 0 && first != nil {
			claim = first
		}
		present, err := claim()
		if err != nil {
			return used, err
		}
		if !present && !used {
			used = true
			if err := put(); err != nil {
				return used, storageWriteError(dgst, err)
			}
		}
		err = r.blobs.CommitBlob(ctx, repo, dgst.String(), size)
		if err == nil || used || attempt == 2 || !errors.Is(err, errdefs.ErrUnavailable) {
			return used, err
		}
		// The present copy was collected between the claim and the
		// commit: claim again (after the collector is done) and write
		// ours.
	}
}

// storeBlob writes src, received from the client, as the blob dgst and
// links it into repo; see writeBlob.
func (r *Registry) storeBlob(ctx context.Context, repo string, dgst v1.Hash, size int64, src io.Reader) (int64, error) {
	n, err := r.writeBlob(ctx, repo, dgst, size, src)
	if r.metrics != nil {
		r.metrics.bytesIn.Add(float64(n))
	}
	return n, err
}

// writeBlob writes src as the blob dgst and links it into repo. The
// content streams into an invisible storage.Writer while it is verified
// against dgst (and size, unless it is -1); only verified content is
// published. It returns the bytes read.
func (r *Registry) writeBlob(ctx context.Context, repo string, dgst v1.Hash, size int64, src io.Reader) (int64, error) {
	vr, err := verify.NewReader(src, dgst, size)
	if err != nil {
		return 0, withCode(http.StatusBadRequest, codeDigestInvalid, err)
	}
	w, err := r.driver.Writer(ctx, blobPath(dgst))
	if err != nil {
		return 0, storageWriteError(dgst, err)
	}
	n, err := io.Copy(w, vr)
	if err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		return n, blobWriteError(dgst, err)
	}
	used, err := r.publish(ctx, repo, dgst, n, func() error { return w.Commit(ctx) })
	if !used {
		w.Cancel(context.WithoutCancel(ctx))
	}
	return n, err
}

// blobWriteError classifies a failed blob write: the client's body, the
// digest check, or the storage.
func blobWriteError(dgst v1.Hash, err error) error {
	if be := bodyFailure(err); be != nil {
		return be
	}
	if errdefs.IsCorrupt(err) {
		return withCode(http.StatusBadRequest, codeDigestInvalid, fmt.Errorf("blob %s: %w", dgst, err))
	}
	return storageWriteError(dgst, err)
}

// storageWriteError keeps a storage failure during a write from reading as
// a client error: a path that vanished under a write (a concurrent
// collection) is a reason to retry, not a 404.
func storageWriteError(dgst v1.Hash, err error) error {
	if errdefs.IsNotFound(err) {
		// %v, not %w: the class is Unavailable, not NotFound.
		return errdefs.Unavailable(fmt.Errorf("blob %s: storage changed during the write, retry: %v", dgst, err))
	}
	return fmt.Errorf("blob %s: %w", dgst, err)
}

// chunkReader reads the chunks of an upload one after another.
type chunkReader struct {
	ctx   context.Context
	d     storage.Driver
	paths []string
	cur   io.ReadCloser
}

func (cr *chunkReader) Read(p []byte) (int, error) {
	for {
		if cr.cur == nil {
			if len(cr.paths) == 0 {
				return 0, io.EOF
			}
			rc, err := cr.d.Reader(cr.ctx, cr.paths[0], 0)
			if err != nil {
				return 0, err
			}
			cr.cur, cr.paths = rc, cr.paths[1:]
		}
		n, err := cr.cur.Read(p)
		if err == io.EOF {
			cr.cur.Close()
			cr.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (cr *chunkReader) Close() error {
	if cr.cur != nil {
		return cr.cur.Close()
	}
	return nil
}
