package registry

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/verify"
)

// In-process access to a repository's content, for the services lading
// serve composes with the registry: the scanner reads manifests and layers
// straight from storage, and accessories (an SBOM) are stored without an
// HTTP round trip. Reads answer only what belongs to the repository, as a
// pull would; writes follow the protocol's rules (verified blobs, manifests
// whose blobs are linked, the metadata store's hooks) and tell Events as a
// push does. The Gate is not asked: the callers are lading's own services,
// which decide for themselves.

// Manifest returns the manifest ref (a digest or a tag) of repo and its
// bytes, verified against its digest.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) (meta.Manifest, []byte, error) {
	if err := CheckRepository(repo); err != nil {
		return meta.Manifest{}, nil, errdefs.InvalidArgument(err)
	}
	var m meta.Manifest
	var err error
	if isDigestRef(ref) {
		m, err = r.manifests.Manifest(ctx, repo, ref)
	} else {
		if err := CheckTag(ref); err != nil {
			return meta.Manifest{}, nil, errdefs.InvalidArgument(err)
		}
		m, err = r.manifests.Tag(ctx, repo, ref)
	}
	if err != nil {
		return meta.Manifest{}, nil, err
	}
	if m.Size > r.limits.MaxManifestSize {
		return meta.Manifest{}, nil, errdefs.TooLarge(fmt.Errorf("manifest %s of %s: %d bytes, limit %d", m.Digest, repo, m.Size, r.limits.MaxManifestSize))
	}
	rc, err := r.openVerified(ctx, m.Digest, m.Size)
	if err != nil {
		return meta.Manifest{}, nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return meta.Manifest{}, nil, fmt.Errorf("manifest %s of %s: %w", m.Digest, repo, err)
	}
	return m, body, nil
}

// OpenBlob opens the blob dgst of repo. The reader verifies the content
// against the digest and the recorded size: a blob damaged in storage fails
// at its end with errdefs.ErrCorrupt. It returns the blob's size.
func (r *Registry) OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return nil, 0, err
	}
	b, err := r.blobs.Blob(ctx, repo, h.String())
	if err != nil {
		return nil, 0, err
	}
	rc, err := r.openVerified(ctx, b.Digest, b.Size)
	return rc, b.Size, err
}

func (r *Registry) openVerified(ctx context.Context, dgst string, size int64) (io.ReadCloser, error) {
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return nil, err
	}
	rc, err := r.driver.Reader(ctx, blobPath(h), 0)
	if err != nil {
		return nil, err
	}
	return verify.NewReadCloser(rc, h, size)
}

// PushBlob stores src as the blob dgst of size bytes and links it into
// repo; content that does not match is refused (errdefs.ErrCorrupt) and
// never becomes visible.
func (r *Registry) PushBlob(ctx context.Context, repo, dgst string, size int64, src io.Reader) error {
	if err := CheckRepository(repo); err != nil {
		return errdefs.InvalidArgument(err)
	}
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return err
	}
	_, err = r.writeBlob(ctx, repo, h, size, src)
	return err
}

// PushManifest stores body (of media type mediaType) as a manifest of
// repo, tagged with tags, as a push by user, and returns its digest. Its
// blobs must have been pushed first.
func (r *Registry) PushManifest(ctx context.Context, repo, mediaType string, body []byte, tags []string, user string) (string, error) {
	if err := CheckRepository(repo); err != nil {
		return "", errdefs.InvalidArgument(err)
	}
	if int64(len(body)) > r.limits.MaxManifestSize {
		return "", errdefs.TooLarge(fmt.Errorf("manifest of %d bytes exceeds the limit of %d bytes", len(body), r.limits.MaxManifestSize))
	}
	for _, t := range tags {
		if err := CheckTag(t); err != nil {
			return "", errdefs.InvalidArgument(err)
		}
	}
	tags = slices.Compact(slices.Sorted(slices.Values(tags)))
	dgst, _ := verify.FromBytes(body, "sha256")
	pm, err := parseManifest(body, mediaType)
	if err != nil {
		return "", err
	}
	m := meta.Manifest{
		Digest: dgst.String(), MediaType: pm.MediaType, Size: int64(len(body)), ArtifactType: pm.ArtifactType,
		Subject: pm.Subject, Annotations: pm.Annotations, Blobs: pm.Blobs, Manifests: pm.Manifests, Sizes: pm.Sizes, Content: body,
	}
	if err := r.storeManifest(ctx, repo, dgst, body, m, tags); err != nil {
		return "", sizeMismatch(err, pm)
	}
	if r.metrics != nil {
		r.metrics.manifestsPushed.Inc()
	}
	r.events.Pushed(ctx, Event{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Tags: tags, Subject: m.Subject, User: user})
	return m.Digest, nil
}
