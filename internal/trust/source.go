package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// Limits on what Verify reads. A signature manifest, bundle or envelope is
// a few kilobytes; anything larger is refused before it is read whole.
const (
	// MaxManifestSize bounds a signature manifest and a referrers index
	// (Notation's own limit for manifests).
	MaxManifestSize = 4 << 20
	// MaxBlobSize bounds a signature payload, bundle or envelope.
	MaxBlobSize = 4 << 20
	// MaxSignatures bounds how many signature manifests (referrers) and
	// legacy signature layers one Verify looks at (Notation's default
	// signature attempts).
	MaxSignatures = 50
)

// Media and artifact types of the formats.
const (
	// NotationArtifactType is the artifact type (config media type) of a
	// Notation signature manifest.
	NotationArtifactType = "application/vnd.cncf.notary.signature"
	// NotationJWS and NotationCOSE are the envelope media types.
	NotationJWS  = "application/jose+json"
	NotationCOSE = "application/cose"
	// BundleArtifactType is the artifact type of a cosign v3 bundle
	// referrer, and the media type of its layer.
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// SimpleSigningMediaType is the layer media type of cosign's legacy
	// signatures.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// CosignSignatureAnnotation holds a legacy layer's base64 signature.
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
	emptyJSONMediaType        = "application/vnd.oci.empty.v1+json"
)

// Format names a signature format.
type Format string

// The formats.
const (
	Cosign       Format = "cosign"        // legacy tag layout, simple signing
	CosignBundle Format = "cosign-bundle" // Sigstore bundle referrer
	Notation     Format = "notation"      // Notary Project
)

// A Source lists what is stored next to an image and reads it. The
// implementations need not verify what they return: Verify checks every
// manifest and blob against its digest and bounds every read.
type Source interface {
	// Referrers returns the descriptors of the manifests whose subject is
	// digest (the OCI 1.1 referrers API, or its tag fallback). None is not
	// an error.
	Referrers(ctx context.Context, digest v1.Hash) ([]v1.Descriptor, error)
	// Resolve returns the descriptor of the manifest that tag (a bare tag
	// such as "sha256-<hex>.sig", in the image's repository) points at, or
	// an error of class errdefs.ErrNotFound.
	Resolve(ctx context.Context, tag string) (v1.Descriptor, error)
	// Fetch opens the manifest or blob d names. A manifest is asked for
	// with a manifest media type or none (""); anything else is a blob.
	Fetch(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
}

// A Sink stores signatures next to an image.
type Sink interface {
	// PutBlob stores a blob (a config, payload, bundle or envelope).
	PutBlob(ctx context.Context, d v1.Descriptor, b []byte) error
	// PutManifest stores a manifest whose blobs are stored, under tag when
	// tag is not empty (a bare tag in the image's repository). A manifest
	// with a subject must become one of its subject's referrers.
	PutManifest(ctx context.Context, d v1.Descriptor, raw []byte, tag string) error
}

// readAll reads what d names, at most max bytes, and checks it against d's
// digest (and size, when d gives one).
func readAll(ctx context.Context, src Source, d v1.Descriptor, max int64, what string) ([]byte, error) {
	if err := verify.CheckHash(d.Digest); err != nil {
		return nil, fail(ReasonMalformed, "%s: %v", what, err)
	}
	if d.Size > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s %s: %d bytes, limit %d", what, d.Digest, d.Size, max))
	}
	rc, err := src.Fetch(ctx, d)
	if errors.Is(err, errdefs.ErrTooLarge) {
		return nil, fail(ReasonTooLarge, "%s %s: %w", what, d.Digest, err)
	}
	if err != nil {
		return nil, fail(ReasonUnavailable, "%s %s: %w", what, d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fail(ReasonUnavailable, "%s %s: %w", what, d.Digest, err)
	}
	if int64(len(b)) > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s %s: over %d bytes", what, d.Digest, max))
	}
	got, err := verify.FromBytes(b, d.Digest.Algorithm)
	if err != nil {
		return nil, fail(ReasonMalformed, "%s %s: %v", what, d.Digest, err)
	}
	if got != d.Digest {
		return nil, fail(ReasonMalformed, "%s %s: content has digest %s", what, d.Digest, got)
	}
	if d.Size > 0 && int64(len(b)) != d.Size {
		return nil, fail(ReasonMalformed, "%s %s: %d bytes, descriptor says %d", what, d.Digest, len(b), d.Size)
	}
	return b, nil
}

// manifest is an OCI image manifest with the fields signatures use.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// artifactType is the manifest's artifact type, or its config's media type.
func (m *manifest) artifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return string(m.Config.MediaType)
}

// fetchManifest reads and parses a signature manifest.
func fetchManifest(ctx context.Context, src Source, d v1.Descriptor) (*manifest, []byte, error) {
	if !isManifestType(d.MediaType) {
		d.MediaType = "" // a manifest all the same: Fetch must ask for one
	}
	raw, err := readAll(ctx, src, d, MaxManifestSize, "signature manifest")
	if err != nil {
		return nil, nil, err
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, nil, fail(ReasonMalformed, "signature manifest %s: %v", d.Digest, err)
	}
	return m, raw, nil
}

// parseManifest parses an image manifest strictly enough for signatures:
// schema 2, an image manifest media type, well-formed descriptors.
func parseManifest(raw []byte) (*manifest, error) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the manifest")
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	switch m.MediaType {
	case "", types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, errdefs.Unsupported(fmt.Errorf("media type %q is not an image manifest", m.MediaType))
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := verify.CheckHash(d.Digest); err != nil {
			return nil, err
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("descriptor %s: negative size", d.Digest)
		}
	}
	if m.Subject != nil {
		if err := verify.CheckHash(m.Subject.Digest); err != nil {
			return nil, fmt.Errorf("subject: %w", err)
		}
	}
	return &m, nil
}

// legacyTag is cosign's tag for the signatures of digest.
func legacyTag(digest v1.Hash) string {
	return digest.Algorithm + "-" + digest.Hex + ".sig"
}
