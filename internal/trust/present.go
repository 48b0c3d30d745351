package trust

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// Present finds the signatures stored next to subj without verifying
// them: what a registry that only asks that an image be signed (Harbor's
// content trust without keys) counts. A signature is present when its
// manifest is well formed (read within the limits, its digest checked),
// of a format Verify knows, about subj (its subject, or cosign's legacy
// tag for subj's digest) and not subj itself; the Result lists each such
// signature in Verified with its Format and Manifest only (no signer: none
// was checked), and everything else stored as one in Rejected, with its
// reason. Present reads manifests, never payloads, bundles or envelopes.
func Present(ctx context.Context, src Source, subj Subject) (*Result, error) {
	if err := verify.CheckHash(subj.Descriptor.Digest); err != nil {
		return nil, err
	}
	res := &Result{Subject: subj.Descriptor, Name: subj.Name, Verified: []Signature{}, Rejected: []Rejection{}}
	refs, err := src.Referrers(ctx, subj.Descriptor.Digest)
	if err != nil {
		return nil, fmt.Errorf("list the signatures of %s: %w", subj.Descriptor.Digest, err)
	}
	for i, d := range refs {
		if i == MaxSignatures {
			res.Rejected = append(res.Rejected, reject("", d.Digest, ReasonTooLarge,
				fmt.Errorf("%d referrers: only the first %d were examined", len(refs), MaxSignatures)))
			break
		}
		f, err := presentReferrer(ctx, src, subj, d)
		switch {
		case err != nil:
			res.Rejected = append(res.Rejected, reject(f, d.Digest, reasonOf(err, ReasonMalformed), err))
		case f != "":
			res.Verified = append(res.Verified, Signature{Format: f, Manifest: d.Digest})
		}
	}
	d, err := presentLegacy(ctx, src, subj)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		res.Rejected = append(res.Rejected, reject(Cosign, d.Digest, reasonOf(err, ReasonMalformed), err))
	default:
		res.Verified = append(res.Verified, Signature{Format: Cosign, Manifest: d.Digest})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// presentReferrer checks one referrer: its format ("" and no error for a
// referrer that is no signature: an SBOM, an attestation), or why it is
// not a well-formed signature of subj.
func presentReferrer(ctx context.Context, src Source, subj Subject, d v1.Descriptor) (Format, error) {
	format := formatOf(d.ArtifactType)
	if d.Digest == subj.Descriptor.Digest {
		return format, fail(ReasonSelfReference, "the image is listed as its own referrer")
	}
	if format == "" && d.ArtifactType != "" {
		return "", nil
	}
	m, _, err := fetchManifest(ctx, src, d)
	if err != nil {
		return format, err
	}
	format = formatOf(m.artifactType())
	if format == "" {
		return "", nil
	}
	if m.Subject == nil || m.Subject.Digest != subj.Descriptor.Digest {
		return format, fail(ReasonDigestMismatch, "listed as a referrer, but its subject is not %s", subj.Descriptor.Digest)
	}
	switch format {
	case Notation:
		if len(m.Layers) != 1 {
			return format, fail(ReasonMalformed, "%d layers, want one envelope", len(m.Layers))
		}
		if mt := string(m.Layers[0].MediaType); mt != NotationJWS && mt != NotationCOSE {
			return format, fail(ReasonUnsupported, "envelope media type %q: want %s or %s", mt, NotationJWS, NotationCOSE)
		}
	case CosignBundle:
		ok := false
		for _, l := range m.Layers {
			ok = ok || strings.HasPrefix(string(l.MediaType), "application/vnd.dev.sigstore.bundle")
		}
		if !ok {
			return format, fail(ReasonMalformed, "no bundle layer")
		}
	}
	return format, nil
}

// presentLegacy checks cosign's legacy signature manifest of subj: its
// descriptor, errdefs.ErrNotFound when there is none, or why it is not a
// well-formed one.
func presentLegacy(ctx context.Context, src Source, subj Subject) (v1.Descriptor, error) {
	tag := legacyTag(subj.Descriptor.Digest)
	d, err := src.Resolve(ctx, tag)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return d, err
		}
		return d, fail(ReasonUnavailable, "tag %s: %v", tag, err)
	}
	if d.Digest == subj.Descriptor.Digest {
		return d, fail(ReasonSelfReference, "tag %s points at the image itself", tag)
	}
	m, _, err := fetchManifest(ctx, src, d)
	if err != nil {
		return d, err
	}
	for _, l := range m.Layers {
		if l.MediaType == SimpleSigningMediaType && l.Annotations[CosignSignatureAnnotation] != "" {
			return d, nil
		}
	}
	return d, fail(ReasonMalformed, "tag %s: no %s layer with a %s annotation", tag, SimpleSigningMediaType, CosignSignatureAnnotation)
}
