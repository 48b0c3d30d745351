package trust

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
)

// SignOptions say how to sign.
type SignOptions struct {
	// Format is Cosign (legacy tag layout), CosignBundle (a Sigstore bundle
	// referrer, cosign v3's default) or Notation.
	Format Format
	// Key signs.
	Key crypto.Signer
	// Chain is the signing certificate and its intermediates, leaf first:
	// required for Notation; for a cosign bundle the leaf replaces the
	// public key hint (the intermediates belong in the verifier's trusted
	// root, as Sigstore bundles v0.3 hold the leaf alone).
	Chain []*x509.Certificate
	// Envelope is Notation's envelope media type, NotationJWS (default) or
	// NotationCOSE.
	Envelope string
	// Annotations are signed with the digest (cosign's -a, Notation's user
	// metadata).
	Annotations map[string]string
}

// Sign signs subj and stores the signature through dst; src is where the
// subject's existing signatures are read (the legacy format appends to the
// .sig manifest). It returns the signature manifest's descriptor.
func Sign(ctx context.Context, src Source, dst Sink, subj Subject, o SignOptions) (v1.Descriptor, error) {
	if o.Key == nil {
		return v1.Descriptor{}, errdefs.InvalidArgument(errors.New("no signing key"))
	}
	if subj.Name == "" {
		return v1.Descriptor{}, errdefs.InvalidArgument(errors.New("the subject needs a repository name"))
	}
	switch o.Format {
	case Cosign, CosignBundle:
		kp, err := newKeypair(o.Key)
		if err != nil {
			return v1.Descriptor{}, err
		}
		if o.Format == Cosign {
			if len(o.Chain) > 0 {
				return v1.Descriptor{}, errdefs.Unsupported(errors.New("a certificate chain is signed in the bundle format only"))
			}
			return signLegacy(ctx, src, dst, subj, kp, o.Annotations)
		}
		return signBundle(ctx, dst, subj, kp, o.Chain, o.Annotations)
	case Notation:
		return signNotation(ctx, dst, subj, o)
	}
	return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("signature format %q: want %s, %s or %s", o.Format, Cosign, CosignBundle, Notation))
}

// ParseFormat parses a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Cosign, CosignBundle, Notation:
		return f, nil
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("signature format %q: want cosign, cosign-bundle or notation", s))
}

// blobDescriptor describes b.
func blobDescriptor(mediaType string, b []byte) v1.Descriptor {
	sum := sha256.Sum256(b)
	return v1.Descriptor{
		MediaType: types.MediaType(mediaType),
		Digest:    v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum[:])},
		Size:      int64(len(b)),
	}
}

// putManifest marshals m and stores it through dst under tag.
func putManifest(ctx context.Context, dst Sink, m *manifest, tag string) (v1.Descriptor, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := blobDescriptor(string(m.MediaType), raw)
	d.ArtifactType = m.artifactType()
	if m.Subject == nil {
		d.ArtifactType = ""
	}
	if len(m.Annotations) > 0 {
		d.Annotations = m.Annotations
	}
	if err := dst.PutManifest(ctx, d, raw, tag); err != nil {
		return v1.Descriptor{}, err
	}
	return d, nil
}

// emptyJSON is the OCI empty descriptor's content.
var emptyJSON = []byte("{}")
