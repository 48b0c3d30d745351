package server

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/verify"
)

// stored implements inspect.Content over the metadata store and the blob
// storage: a manifest or blob is read only when the repository links it,
// and every byte is verified against its digest.
type stored struct {
	meta   *meta.SQL
	driver storage.Driver
}

var _ inspect.Content = stored{}

// maxManifest bounds a manifest read whole.
const maxManifest = 8 << 20

func (s stored) Manifest(ctx context.Context, repo, dgst string) ([]byte, error) {
	m, err := s.meta.Manifest(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	if m.Size > maxManifest {
		return nil, errdefs.TooLarge(fmt.Errorf("manifest %s: %d bytes", dgst, m.Size))
	}
	rc, err := s.open(ctx, dgst, m.Size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (s stored) Blob(ctx context.Context, repo, dgst string) (io.ReadCloser, error) {
	b, err := s.meta.Blob(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, dgst, b.Size)
}

// open reads content at its storage path (see package storage's layout),
// verifying digest and size at EOF.
func (s stored) open(ctx context.Context, dgst string, size int64) (io.ReadCloser, error) {
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	rc, err := s.driver.Reader(ctx, "blobs/"+h.Algorithm+"/"+h.Hex[:2]+"/"+h.Hex+"/data", 0)
	if err != nil {
		return nil, err
	}
	return verify.NewReadCloser(rc, v1.Hash(h), size)
}
