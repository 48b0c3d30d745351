package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// ReadContent returns the manifest (manifest set) or the blob dgst of
// repo, read whole from storage and checked against its digest and its
// recorded size: what a pull of it would serve, for the services lading
// serve composes with the registry (signature verification reads
// signatures this way). It answers only for content that belongs to repo
// (a manifest of repo, a blob linked into it), as a pull would; content
// over max bytes is errdefs.ErrTooLarge, named with its size, and is not
// read. The Gate is not asked: the callers decide for themselves.
func (r *Registry) ReadContent(ctx context.Context, repo, dgst string, manifest bool, max int64) ([]byte, error) {
	if err := CheckRepository(repo); err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return nil, err
	}
	var size int64
	what := "blob"
	if manifest {
		m, err := r.manifests.Manifest(ctx, repo, h.String())
		if err != nil {
			return nil, err
		}
		size, what = m.Size, "manifest"
	} else {
		b, err := r.blobs.Blob(ctx, repo, h.String())
		if err != nil {
			return nil, err
		}
		size = b.Size
	}
	if size > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s %s of %s: %d bytes, limit %d", what, h, repo, size, max))
	}
	rc, err := r.driver.Reader(ctx, blobPath(h), 0)
	if err != nil {
		return nil, err
	}
	vr, err := verify.NewReadCloser(rc, h, size)
	if err != nil {
		return nil, err
	}
	defer vr.Close()
	b, err := io.ReadAll(vr)
	if err != nil {
		return nil, fmt.Errorf("%s %s of %s: %w", what, h, repo, err)
	}
	return b, nil
}
