package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/verify"
)

// Copy copies the manifest ref (a digest or a tag) of repository src, with
// everything it references, into repository dst, tagged ref when ref is a
// tag, and returns its digest. Blobs are linked, not copied: content is
// stored once.
func (r *Registry) Copy(ctx context.Context, src, ref, dst string) (string, error) {
	if err := CheckRepository(src); err != nil {
		return "", err
	}
	if err := CheckRepository(dst); err != nil {
		return "", err
	}
	var m meta.Manifest
	var err error
	var tags []string
	if isDigestRef(ref) {
		m, err = r.manifests.Manifest(ctx, src, ref)
	} else {
		if err := CheckTag(ref); err != nil {
			return "", errdefs.InvalidArgument(err)
		}
		m, err = r.manifests.Tag(ctx, src, ref)
		tags = []string{ref}
	}
	if err != nil {
		return "", err
	}
	if err := r.copyManifest(ctx, src, dst, m.Digest, tags, 0); err != nil {
		return "", err
	}
	return m.Digest, nil
}

// copyManifest copies one manifest (children first) into dst.
func (r *Registry) copyManifest(ctx context.Context, src, dst, dgst string, tags []string, depth int) error {
	if depth > 8 {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: indexes nested too deep", dgst))
	}
	m, err := r.manifests.Manifest(ctx, src, dgst)
	if err != nil {
		return err
	}
	h, err := verify.ParseDigest(m.Digest)
	if err != nil {
		return err
	}
	rc, err := r.driver.Reader(ctx, blobPath(h), 0)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(rc, r.limits.MaxManifestSize+1))
	rc.Close()
	if err != nil {
		return err
	}
	pm, err := parseManifest(body, m.MediaType)
	if err != nil {
		return err
	}
	for _, child := range pm.Manifests {
		if err := r.copyManifest(ctx, src, dst, child, nil, depth+1); err != nil {
			return err
		}
	}
	for _, b := range pm.Blobs {
		if err := r.blobs.LinkBlob(ctx, dst, b); err != nil {
			return fmt.Errorf("linking blob %s into %s: %w", b, dst, err)
		}
	}
	m.Blobs, m.Manifests, m.Content = pm.Blobs, pm.Manifests, body
	return r.manifests.PutManifest(ctx, dst, m, tags)
}
