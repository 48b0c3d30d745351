package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/verify"
)

// The registry's content as lading's own services reach it, without HTTP:
// replication reads what it pushes elsewhere and writes what it pulls in,
// the proxy cache completes what it fetched. Reads go straight to storage
// and metadata; writes take the path a client's push takes: the content is
// verified against its digest before it becomes visible, the Gate's
// policy is asked (quota, read-only mode, immutable tags, vulnerability
// and signature policies) in the name of the given subject, and Events
// are told afterwards (scan on push, webhooks, event-based replication).

// ReadManifest returns a manifest of repo by tag or digest, and its
// content.
func (r *Registry) ReadManifest(ctx context.Context, repo, ref string) (meta.Manifest, []byte, error) {
	var m meta.Manifest
	var err error
	if isDigestRef(ref) {
		if _, err := verify.ParseDigest(ref); err != nil {
			return m, nil, errdefs.InvalidArgument(err)
		}
		m, err = r.manifests.Manifest(ctx, repo, ref)
	} else {
		if err := CheckTag(ref); err != nil {
			return m, nil, errdefs.InvalidArgument(err)
		}
		m, err = r.manifests.Tag(ctx, repo, ref)
	}
	if err != nil {
		return m, nil, err
	}
	body, err := r.readManifestContent(ctx, m)
	return m, body, err
}

// readManifestContent reads a recorded manifest's content, verified.
func (r *Registry) readManifestContent(ctx context.Context, m meta.Manifest) ([]byte, error) {
	h, err := verify.ParseDigest(m.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := r.driver.Reader(ctx, blobPath(h), 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	vr, err := verify.NewReader(io.LimitReader(rc, m.Size+1), h, m.Size)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(vr)
}

// HaveBlob reports whether repo can use the blob dgst without receiving
// it: it is linked into repo, or present in the registry and linked now
// (a mount: content is stored once).
func (r *Registry) HaveBlob(ctx context.Context, repo, dgst string) (bool, error) {
	if _, err := r.blobs.Blob(ctx, repo, dgst); err == nil {
		return true, nil
	} else if !errdefs.IsNotFound(err) {
		return false, err
	}
	err := r.blobs.LinkBlob(ctx, repo, dgst)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// WriteBlob stores src as the blob dgst of size bytes (-1: unknown) and
// links it into repo, as a client's monolithic upload does: the Gate's
// policy is asked first, the content is verified before it is visible.
func (r *Registry) WriteBlob(ctx context.Context, who Subject, repo, dgst string, size int64, src io.Reader) error {
	if err := CheckRepository(repo); err != nil {
		return errdefs.InvalidArgument(err)
	}
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return errdefs.InvalidArgument(err)
	}
	if r.gate != nil {
		if err := r.gate.CheckBlob(ctx, who, repo, size); err != nil {
			return err
		}
	}
	_, err = r.storeBlob(ctx, repo, h, size, src)
	return err
}

// WriteManifest stores a manifest in repo with tags, as a client's push
// does: parsed and checked (its blobs and child manifests must be in
// repo), the Gate's policy asked, Events told. It returns the digest
// (sha256 of the content).
func (r *Registry) WriteManifest(ctx context.Context, who Subject, repo string, body []byte, mediaType string, tags []string) (string, error) {
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
		return "", errdefs.InvalidArgument(err)
	}
	m := meta.Manifest{
		Digest: dgst.String(), MediaType: pm.MediaType, Size: int64(len(body)), ArtifactType: pm.ArtifactType,
		Subject: pm.Subject, Annotations: pm.Annotations, Blobs: pm.Blobs, Manifests: pm.Manifests, Sizes: pm.Sizes, Content: body,
	}
	if r.gate != nil {
		pc := PushCheck{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Tags: tags, Subject: m.Subject}
		if err := r.gate.CheckPush(ctx, who, pc); err != nil {
			return "", err
		}
	}
	if err := r.storeManifest(ctx, repo, dgst, body, m, tags); err != nil {
		return "", sizeMismatch(err, pm)
	}
	if r.metrics != nil {
		r.metrics.manifestsPushed.Inc()
	}
	r.events.Pushed(ctx, Event{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Tags: tags, Subject: m.Subject, User: who.Name})
	return m.Digest, nil
}

// Delete deletes a manifest of repo (ref a digest) or a tag (ref a tag),
// as a client's DELETE does: the Gate's policy asked, Events told.
func (r *Registry) Delete(ctx context.Context, who Subject, repo, ref string) error {
	var ev Event
	if isDigestRef(ref) {
		h, err := verify.ParseDigest(ref)
		if err != nil {
			return errdefs.InvalidArgument(err)
		}
		if r.gate != nil {
			if err := r.gate.CheckDelete(ctx, who, repo, h.String(), ""); err != nil {
				return err
			}
		}
		if err := r.manifests.DeleteManifest(ctx, repo, h.String()); err != nil {
			return err
		}
		ev = Event{Repository: repo, Digest: h.String(), User: who.Name}
	} else {
		m, err := r.manifests.Tag(ctx, repo, ref)
		if err != nil {
			return err
		}
		if r.gate != nil {
			if err := r.gate.CheckDelete(ctx, who, repo, m.Digest, ref); err != nil {
				return err
			}
		}
		if err := r.manifests.DeleteTag(ctx, repo, ref); err != nil {
			return err
		}
		ev = Event{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Tags: []string{ref}, User: who.Name}
	}
	r.events.Deleted(ctx, ev)
	return nil
}

// Tags lists every tag of repo.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	return r.manifests.Tags(ctx, repo, "", -1)
}

// Repositories lists every repository.
func (r *Registry) Repositories(ctx context.Context) ([]string, error) {
	var out []string
	last := ""
	for {
		page, err := r.manifests.Repositories(ctx, last, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		last = page[len(page)-1]
	}
}

// Referrers lists the manifests of repo whose subject is dgst.
func (r *Registry) Referrers(ctx context.Context, repo, dgst string) ([]meta.Descriptor, error) {
	return r.manifests.Referrers(ctx, repo, dgst, "")
}

// ManifestRefs parses a manifest's content into the digests it needs:
// blobs (layers, config) and child manifests (an index's), in order.
func ManifestRefs(body []byte, mediaType string) (blobs, manifests []string, sizes map[string]int64, err error) {
	pm, err := parseManifest(body, mediaType)
	if err != nil {
		return nil, nil, nil, errdefs.InvalidArgument(err)
	}
	return pm.Blobs, pm.Manifests, pm.Sizes, nil
}

// manifestOf returns a recorded manifest's content by digest, or
// ErrNotFound.
func (r *Registry) manifestOf(ctx context.Context, repo string, h v1.Hash) (meta.Manifest, []byte, error) {
	m, err := r.manifests.Manifest(ctx, repo, h.String())
	if err != nil {
		return m, nil, err
	}
	body, err := r.readManifestContent(ctx, m)
	if errors.Is(err, errdefs.ErrNotFound) {
		return m, nil, errdefs.Unavailable(fmt.Errorf("manifest %s recorded but not in storage: %v", h, err))
	}
	return m, body, err
}
