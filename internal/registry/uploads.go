package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
)

// An upload session is a row in the metadata store and a directory of
// chunks in storage (uploads/<id>/). Each PATCH writes its body as a new
// chunk object, committed atomically, and then advances the session with a
// compare-and-swap on its size; a chunk that loses the race, or a request
// that dies, leaves only a chunk file that no session names, which the
// garbage collector removes. The session also keeps the running sha256 of
// its chunks, so closing it verifies a sha256 digest without reading the
// data again, and a single-chunk upload becomes the blob by a rename.

func uploadDir(id string) string { return "uploads/" + id }

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkUploadID rejects ids this registry never issues, before they reach
// storage paths or the database.
func checkUploadID(id string) error {
	if len(id) != 32 {
		return errdefs.NotFound(fmt.Errorf("upload %.40q", id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errdefs.NotFound(fmt.Errorf("upload %.40q", id))
		}
	}
	return nil
}

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func blobLocation(repo string, dgst v1.Hash) string { return "/v2/" + repo + "/blobs/" + dgst.String() }

// uploadHeaders describes a session's progress.
func uploadHeaders(c *call, u meta.Upload) {
	h := c.w.Header()
	h.Set("Location", uploadLocation(u.Repo, u.ID))
	h.Set("Docker-Upload-UUID", u.ID)
	end := u.Size - 1
	if end < 0 {
		end = 0 // what Docker's registry answers for an empty session
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Content-Length", "0")
}

func blobCreated(c *call, dgst v1.Hash) {
	h := c.w.Header()
	h.Set("Location", blobLocation(c.rt.repo, dgst))
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusCreated)
}

// startUpload is POST /v2/<name>/blobs/uploads/: a mount, a monolithic
// push (?digest=), or the start of a session.
func (r *Registry) startUpload(c *call) error {
	ctx := c.req.Context()
	q := c.req.URL.Query()
	if m := q.Get("mount"); m != "" {
		dgst, err := parseDigest(m)
		if err != nil {
			return err
		}
		ok, err := r.mount(ctx, c, dgst, q.Get("from"))
		if err != nil {
			return err
		}
		if ok {
			blobCreated(c, dgst)
			return nil
		}
		// Not mountable: start a session instead, as the spec says.
	} else if d := q.Get("digest"); d != "" {
		dgst, err := parseDigest(d)
		if err != nil {
			return err
		}
		if err := r.checkBlob(c, c.req.ContentLength); err != nil {
			return err
		}
		if _, err := r.storeBlob(ctx, c.rt.repo, dgst, c.req.ContentLength, c.req.Body); err != nil {
			return err
		}
		blobCreated(c, dgst)
		return nil
	}
	u := meta.Upload{ID: newUploadID(), Repo: c.rt.repo}
	if err := r.uploads.CreateUpload(ctx, u); err != nil {
		return err
	}
	uploadHeaders(c, u)
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

// mount links a blob from another repository; it reports false when the
// blob cannot be mounted (unknown, or not readable by the caller).
func (r *Registry) mount(ctx context.Context, c *call, dgst v1.Hash, from string) (bool, error) {
	if _, err := r.blobs.Blob(ctx, c.rt.repo, dgst.String()); err == nil {
		return true, r.blobs.LinkBlob(ctx, c.rt.repo, dgst.String())
	}
	var sources []string
	if from != "" {
		if CheckRepository(from) != nil {
			return false, nil
		}
		sources = []string{from}
	} else {
		// No source named: any repository the caller may read will do.
		var err error
		if sources, err = r.blobs.BlobRepositories(ctx, dgst.String(), 100); err != nil {
			return false, err
		}
	}
	for _, src := range sources {
		if !r.readable(c.req, c.who, src) {
			continue
		}
		if _, err := r.blobs.Blob(ctx, src, dgst.String()); err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return false, err
		}
		err := r.blobs.LinkBlob(ctx, c.rt.repo, dgst.String())
		if errdefs.IsNotFound(err) {
			return false, nil // collected meanwhile
		}
		return err == nil, err
	}
	return false, nil
}

// checkBlob asks the Gate's policy whether size bytes may come into the
// route's repository (an early quota refusal, before the bytes arrive).
func (r *Registry) checkBlob(c *call, size int64) error {
	if r.gate == nil {
		return nil
	}
	return r.gate.CheckBlob(c.req.Context(), c.who, c.rt.repo, size)
}

func (r *Registry) session(c *call) (meta.Upload, error) {
	if err := checkUploadID(c.rt.ref); err != nil {
		return meta.Upload{}, err
	}
	return r.uploads.Upload(c.req.Context(), c.rt.repo, c.rt.ref)
}

func (r *Registry) uploadStatus(c *call) error {
	u, err := r.session(c)
	if err != nil {
		return err
	}
	uploadHeaders(c, u)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(c *call) error {
	if err := checkUploadID(c.rt.ref); err != nil {
		return err
	}
	ctx := c.req.Context()
	if err := r.uploads.DeleteUpload(ctx, c.rt.repo, c.rt.ref, -1); err != nil {
		return err
	}
	if err := r.driver.Delete(ctx, uploadDir(c.rt.ref)); err != nil {
		r.log.Warn("cancelled upload: chunks left for the collector", "upload", c.rt.ref, "error", err)
	}
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// chunkRange checks a request's Content-Range against the session: it
// returns the number of bytes the body must have (-1: any).
func chunkRange(c *call, u meta.Upload) (int64, error) {
	cr := c.req.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	start, end, err := parseContentRange(cr)
	if err != nil {
		return 0, withCode(http.StatusBadRequest, codeBlobUploadInvalid, err)
	}
	if start != u.Size {
		uploadHeaders(c, u)
		return 0, withCode(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
			fmt.Errorf("chunk starts at %d but the upload has %d bytes; chunks must be sent in order", start, u.Size))
	}
	want := end - start + 1
	if cl := c.req.ContentLength; cl >= 0 && cl != want {
		return 0, withCode(http.StatusBadRequest, codeSizeInvalid,
			fmt.Errorf("Content-Range %q names %d bytes but Content-Length is %d", cr, want, cl))
	}
	return want, nil
}

func (r *Registry) patchUpload(c *call) error {
	u, err := r.session(c)
	if err != nil {
		return err
	}
	want, err := chunkRange(c, u)
	if err != nil {
		return err
	}
	u, err = r.appendChunk(c, u, want)
	if err != nil {
		return err
	}
	uploadHeaders(c, u)
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

// restoreHash returns the session's running sha256, or nil when the state
// is missing or unreadable (the digest is then checked by reading).
func restoreHash(u meta.Upload) hash.Hash {
	h := sha256.New()
	if u.Size == 0 {
		return h
	}
	if len(u.HashState) == 0 {
		return nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
		return nil
	}
	return h
}

// appendChunk stores the request body as the session's next chunk. want is
// the body's exact size, or -1.
func (r *Registry) appendChunk(c *call, u meta.Upload, want int64) (meta.Upload, error) {
	ctx := c.req.Context()
	var name [8]byte
	rand.Read(name[:])
	chunk := fmt.Sprintf("%020d-%x", u.Size, name)
	path := uploadDir(u.ID) + "/" + chunk
	w, err := r.driver.Writer(ctx, path)
	if err != nil {
		return u, err
	}
	h := restoreHash(u)
	var dst io.Writer = w
	if h != nil {
		dst = io.MultiWriter(w, h)
	}
	src := io.Reader(c.req.Body)
	if want >= 0 {
		src = io.LimitReader(src, want+1)
	}
	n, err := io.Copy(dst, src)
	if err == nil && want >= 0 && n != want {
		err = withCode(http.StatusBadRequest, codeSizeInvalid, fmt.Errorf("chunk has %d bytes, Content-Range says %d", n, want))
	}
	if err != nil {
		w.Cancel(context.WithoutCancel(ctx))
		if be := bodyFailure(err); be != nil {
			return u, be
		}
		return u, err
	}
	if n == 0 {
		w.Cancel(ctx)
		return u, nil
	}
	if err := w.Commit(ctx); err != nil {
		return u, err
	}
	next := u
	next.Size += n
	next.Chunks = append(append([]string(nil), u.Chunks...), chunk)
	next.HashState = nil
	if h != nil {
		if st, err := h.(encoding.BinaryMarshaler).MarshalBinary(); err == nil {
			next.HashState = st
		}
	}
	if err := r.uploads.UpdateUpload(ctx, next, u.Size); err != nil {
		r.driver.Delete(context.WithoutCancel(ctx), path)
		if errors.Is(err, errdefs.ErrConflict) {
			if cur, gerr := r.uploads.Upload(ctx, u.Repo, u.ID); gerr == nil {
				uploadHeaders(c, cur)
			}
			return u, withCode(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, err)
		}
		return u, err
	}
	if r.metrics != nil {
		r.metrics.bytesIn.Add(float64(n))
	}
	return next, nil
}

// finishUpload is the closing PUT: an optional last chunk, then the blob.
func (r *Registry) finishUpload(c *call) error {
	ctx := c.req.Context()
	u, err := r.session(c)
	if err != nil {
		return err
	}
	d := c.req.URL.Query().Get("digest")
	if d == "" {
		return withCode(http.StatusBadRequest, codeDigestInvalid, errors.New("closing an upload needs the blob's digest in the digest query parameter"))
	}
	dgst, err := parseDigest(d)
	if err != nil {
		return err
	}
	want, err := chunkRange(c, u)
	if err != nil {
		return err
	}
	hasBody := c.req.ContentLength != 0 && c.req.Body != nil && c.req.Body != http.NoBody
	if hasBody && len(u.Chunks) == 0 {
		// POST then PUT: stream the body straight into the blob.
		if err := r.checkBlob(c, c.req.ContentLength); err != nil {
			return err
		}
		if err := r.uploads.DeleteUpload(ctx, u.Repo, u.ID, u.Size); err != nil {
			return err
		}
		size := want
		if size < 0 {
			size = c.req.ContentLength
		}
		if _, err := r.storeBlob(ctx, u.Repo, dgst, size, c.req.Body); err != nil {
			return err
		}
		blobCreated(c, dgst)
		return nil
	}
	if hasBody {
		if u, err = r.appendChunk(c, u, want); err != nil {
			return err
		}
	}
	closed, err := r.assemble(ctx, u, dgst)
	if closed {
		if derr := r.driver.Delete(context.WithoutCancel(ctx), uploadDir(u.ID)); derr != nil {
			r.log.Warn("closed upload: chunks left for the collector", "upload", u.ID, "error", derr)
		}
	}
	if err != nil {
		return err
	}
	blobCreated(c, dgst)
	return nil
}

// assemble closes a session and turns its chunks into the blob dgst.
// Closing comes first: from there a concurrent PATCH fails, and a crash
// leaves chunks that no session names, for the collector. It reports
// whether the session was closed (its chunks are then the caller's to
// delete).
func (r *Registry) assemble(ctx context.Context, u meta.Upload, dgst v1.Hash) (bool, error) {
	paths := make([]string, len(u.Chunks))
	for i, ch := range u.Chunks {
		paths[i] = uploadDir(u.ID) + "/" + ch
	}
	closeErr := func(err error) error {
		if errors.Is(err, errdefs.ErrConflict) {
			return withCode(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, err)
		}
		return err
	}
	verified := false
	if dgst.Algorithm == "sha256" {
		if h := restoreHash(u); h != nil {
			if got := hex.EncodeToString(h.Sum(nil)); got != dgst.Hex {
				if err := r.uploads.DeleteUpload(ctx, u.Repo, u.ID, u.Size); err != nil {
					return false, closeErr(err)
				}
				return true, withCode(http.StatusBadRequest, codeDigestInvalid, fmt.Errorf("upload %s: content has digest sha256:%s, not %s", u.ID, got, dgst))
			}
			verified = true
		}
	}
	if len(paths) == 1 && verified {
		// The common push (one PATCH, then PUT): closing the session
		// claims the digest, and the chunk becomes the blob by a
		// rename.
		closed := false
		_, err := r.publishClaimed(ctx, u.Repo, dgst, u.Size, func() error {
			return r.driver.Move(ctx, paths[0], blobPath(dgst))
		}, func() (bool, error) {
			present, err := r.waitCollector(ctx, func() (bool, error) {
				return r.uploads.CloseUpload(ctx, u.Repo, u.ID, u.Size, dgst.String())
			})
			closed = err == nil
			return present, err
		})
		return closed, closeErr(err)
	}
	if err := r.uploads.DeleteUpload(ctx, u.Repo, u.ID, u.Size); err != nil {
		return false, closeErr(err)
	}
	cr := &chunkReader{ctx: ctx, d: r.driver, paths: paths}
	defer cr.Close()
	n, err := r.writeBlob(ctx, u.Repo, dgst, u.Size, cr)
	if err != nil {
		return true, err
	}
	if n != u.Size {
		return true, fmt.Errorf("upload %s: read %d bytes of %d", u.ID, n, u.Size)
	}
	return true, nil
}
