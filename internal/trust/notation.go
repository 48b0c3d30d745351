package trust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // the JWS envelope
	"github.com/notaryproject/notation-go"
	nsigner "github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// notationThumbprints is the annotation of a Notation signature manifest
// that lists the SHA-256 thumbprints of the signing chain.
const notationThumbprints = "io.cncf.notary.x509chain.thumbprint#S256"

// notation verifies a Notation signature referrer with notation-go.
func (v *verification) notation(ctx context.Context, sigManifest v1.Hash, m *manifest) (Signature, error) {
	np := v.p.Notation
	if np == nil {
		return Signature{}, fail(ReasonNoPolicy, "no Notation trust policy and trust store given")
	}
	if len(m.Layers) != 1 {
		return Signature{}, fail(ReasonMalformed, "%d layers, want one envelope", len(m.Layers))
	}
	l := m.Layers[0]
	mt := string(l.MediaType)
	if mt != NotationJWS && mt != NotationCOSE {
		return Signature{}, fail(ReasonUnsupported, "envelope media type %q: want %s or %s", mt, NotationJWS, NotationCOSE)
	}
	blob, err := readAll(ctx, v.src, l, MaxBlobSize, "signature envelope")
	if err != nil {
		return Signature{}, err
	}
	sd := v.subj.Descriptor
	desc := ocispec.Descriptor{MediaType: string(sd.MediaType), Digest: digest.Digest(sd.Digest.String()), Size: sd.Size}
	ref := v.subj.Name + "@" + sd.Digest.String()
	outcome, err := np.verifier.Verify(ctx, desc, blob, notation.VerifierVerifyOptions{ArtifactReference: ref, SignatureMediaType: mt})
	if err != nil {
		return Signature{}, notationFailure(outcome, err)
	}
	if outcome == nil || outcome.EnvelopeContent == nil || outcome.VerificationLevel == trustpolicy.LevelSkip {
		return Signature{}, fail(ReasonNoPolicy, "the trust policy for %s skips verification", v.subj.Name)
	}
	s := Signature{Format: Notation, Manifest: sigManifest}
	si := outcome.EnvelopeContent.SignerInfo
	if len(si.CertificateChain) > 0 {
		leaf := si.CertificateChain[0]
		sum := sha256.Sum256(leaf.Raw)
		s.Signer = Signer{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), KeyID: "sha256:" + hex.EncodeToString(sum[:])}
	}
	if tp, err := np.doc.GetApplicableTrustPolicy(ref); err == nil {
		s.Signer.TrustPolicy = tp.Name
	}
	s.Time, s.TimeSource = si.SignedAttributes.SigningTime, "claimed"
	if len(si.UnsignedAttributes.TimestampSignature) > 0 {
		s.TimeSource = "claimed (timestamped)"
	}
	if ann, err := outcome.UserMetadata(); err == nil && len(ann) > 0 {
		s.Annotations = ann
	}
	if err := v.checkAnnotations(s.Annotations); err != nil {
		return Signature{}, err
	}
	return s, nil
}

// notationFailure gives a notation-go verification failure its reason,
// from the check that failed.
func notationFailure(outcome *notation.VerificationOutcome, err error) error {
	var noPolicy notation.ErrorNoApplicableTrustPolicy
	if errors.As(err, &noPolicy) {
		return fail(ReasonNoPolicy, "%v", err)
	}
	if outcome != nil {
		for _, r := range outcome.VerificationResults {
			if r.Error == nil || r.Action != trustpolicy.ActionEnforce {
				continue
			}
			switch r.Type {
			case trustpolicy.TypeIntegrity:
				var ie *signature.SignatureIntegrityError
				if errors.As(r.Error, &ie) {
					return fail(ReasonBadSignature, "integrity: %v", r.Error)
				}
				return fail(ReasonMalformed, "integrity: %v", r.Error)
			case trustpolicy.TypeAuthenticity:
				if strings.Contains(r.Error.Error(), "trusted identities") {
					return fail(ReasonUntrustedIdentity, "authenticity: %v", r.Error)
				}
				return fail(ReasonUntrustedKey, "authenticity: %v", r.Error)
			case trustpolicy.TypeExpiry, trustpolicy.TypeAuthenticTimestamp:
				return fail(ReasonExpired, "%s: %v", r.Type, r.Error)
			case trustpolicy.TypeRevocation:
				return fail(ReasonRevoked, "revocation: %v", r.Error)
			}
		}
		if err.Error() == "content descriptor mismatch" {
			return fail(ReasonDigestMismatch, "the signature covers another manifest (%v)", err)
		}
	}
	var vf notation.ErrorUserMetadataVerificationFailed
	if errors.As(err, &vf) {
		return fail(ReasonAnnotations, "%v", err)
	}
	return fail(ReasonBadSignature, "%v", err)
}

// signNotation signs subj with notation-go's generic signer and stores
// the envelope as a referrer, as `notation sign` does.
func signNotation(ctx context.Context, dst Sink, subj Subject, o SignOptions) (v1.Descriptor, error) {
	if len(o.Chain) == 0 {
		return v1.Descriptor{}, errdefs.InvalidArgument(errors.New("notation signing needs the signing certificate chain"))
	}
	env := o.Envelope
	if env == "" {
		env = NotationJWS
	}
	if env != NotationJWS && env != NotationCOSE {
		return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("envelope %q: want %s or %s", env, NotationJWS, NotationCOSE))
	}
	for k := range o.Annotations {
		if strings.HasPrefix(k, "io.cncf.notary") {
			return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("annotation %s: the io.cncf.notary prefix is reserved", k))
		}
	}
	s, err := nsigner.NewGenericSigner(o.Key, o.Chain)
	if err != nil {
		return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("notation signer: %w", err))
	}
	sd := subj.Descriptor
	desc := ocispec.Descriptor{MediaType: string(sd.MediaType), Digest: digest.Digest(sd.Digest.String()), Size: sd.Size}
	if len(o.Annotations) > 0 {
		desc.Annotations = o.Annotations
	}
	sig, info, err := s.Sign(ctx, desc, notation.SignerSignOptions{SignatureMediaType: env})
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("sign: %w", err)
	}
	var thumbs []string
	for _, c := range info.CertificateChain {
		sum := sha256.Sum256(c.Raw)
		thumbs = append(thumbs, hex.EncodeToString(sum[:]))
	}
	tj, err := json.Marshal(thumbs)
	if err != nil {
		return v1.Descriptor{}, err
	}
	layer := blobDescriptor(env, sig)
	cfg := blobDescriptor(NotationArtifactType, emptyJSON)
	for _, blob := range []struct {
		d v1.Descriptor
		b []byte
	}{{cfg, emptyJSON}, {layer, sig}} {
		if err := dst.PutBlob(ctx, blob.d, blob.b); err != nil {
			return v1.Descriptor{}, err
		}
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        cfg,
		Layers:        []v1.Descriptor{layer},
		Subject:       &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
		Annotations: map[string]string{
			notationThumbprints:                string(tj),
			"org.opencontainers.image.created": info.SignedAttributes.SigningTime.UTC().Format(time.RFC3339),
		},
	}
	return putManifest(ctx, dst, &m, "")
}
