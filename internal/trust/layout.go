package trust

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
)

// refNameAnnotation names an index.json entry of an OCI image layout.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// maxLayoutEntries bounds how many index.json entries a referrer search
// reads manifests of.
const maxLayoutEntries = 10000

// LayoutStore is an OCI image layout: index.json and blobs by digest.
// lading's store (store.Store) is one, opened on the local store or on an
// OCI layout directory.
type LayoutStore interface {
	Index(ctx context.Context) (*v1.IndexManifest, error)
	OpenBlob(ctx context.Context, h v1.Hash) (io.ReadCloser, int64, error)
	PutBlob(ctx context.Context, b []byte) (v1.Hash, error)
	UpdateIndex(ctx context.Context, fn func(*v1.IndexManifest) error) error
}

// Layout is an OCI image layout as a Source and a Sink. Signatures live
// in index.json as Notation and cosign do in layouts: a referrer is an
// entry without a name (its subject in the manifest), a legacy .sig
// manifest an entry named prefix+"sha256-<hex>.sig". In lading's store,
// where names are whole references, prefix is the repository and a colon
// ("docker.io/library/alpine:"); in an OCI layout directory it is "".
type Layout struct {
	st     LayoutStore
	prefix string
}

// NewLayout returns st as a Source and Sink; tags are prefixed as above.
func NewLayout(st LayoutStore, prefix string) *Layout { return &Layout{st: st, prefix: prefix} }

// Referrers reads the manifests index.json lists and returns those whose
// subject is digest.
func (l *Layout) Referrers(ctx context.Context, digest v1.Hash) ([]v1.Descriptor, error) {
	idx, err := l.st.Index(ctx)
	if err != nil {
		return nil, err
	}
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for i, d := range idx.Manifests {
		if i == maxLayoutEntries {
			return out, errdefs.TooLarge(fmt.Errorf("index.json: over %d entries", maxLayoutEntries))
		}
		if seen[d.Digest] || d.Digest == digest || (d.MediaType != types.OCIManifestSchema1 && d.MediaType != "") {
			continue
		}
		seen[d.Digest] = true
		raw, err := readAll(ctx, l, d, MaxManifestSize, "manifest")
		if err != nil {
			continue // not ours to judge: Verify reads only what claims the subject
		}
		m, err := parseManifest(raw)
		if err != nil || m.Subject == nil || m.Subject.Digest != digest {
			continue
		}
		rd := v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: m.artifactType(), Annotations: m.Annotations}
		out = append(out, rd)
	}
	return out, nil
}

// Resolve finds the entry named prefix+tag.
func (l *Layout) Resolve(ctx context.Context, tag string) (v1.Descriptor, error) {
	idx, err := l.st.Index(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[refNameAnnotation] == l.prefix+tag {
			return d, nil
		}
	}
	return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("%s%s: no such reference", l.prefix, tag))
}

// Fetch opens a blob.
func (l *Layout) Fetch(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	rc, _, err := l.st.OpenBlob(ctx, d.Digest)
	return rc, err
}

// PutBlob stores a blob.
func (l *Layout) PutBlob(ctx context.Context, d v1.Descriptor, b []byte) error {
	h, err := l.st.PutBlob(ctx, b)
	if err != nil {
		return err
	}
	if h != d.Digest {
		return fmt.Errorf("blob stored as %s, not %s", h, d.Digest)
	}
	return nil
}

// PutManifest stores a manifest and lists it in index.json: named
// prefix+tag (replacing what had the name), or unnamed.
func (l *Layout) PutManifest(ctx context.Context, d v1.Descriptor, raw []byte, tag string) error {
	if err := l.PutBlob(ctx, d, raw); err != nil {
		return err
	}
	entry := v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType}
	if tag != "" {
		entry.Annotations = map[string]string{refNameAnnotation: l.prefix + tag}
	}
	return l.st.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
		out := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			switch {
			case tag != "" && m.Annotations[refNameAnnotation] == l.prefix+tag:
				continue // the name moves to the new manifest
			case tag == "" && m.Digest == d.Digest && m.Annotations[refNameAnnotation] == "":
				continue // listed already
			}
			out = append(out, m)
		}
		idx.Manifests = append(out, entry)
		return nil
	})
}
