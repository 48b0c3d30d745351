package trust

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// cosignPredicateType is the predicate of cosign v3's image signatures.
const (
	cosignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	intotoPayloadType   = "application/vnd.in-toto+json"
)

// bundle verifies a Sigstore bundle referrer.
func (v *verification) bundle(ctx context.Context, sigManifest v1.Hash, m *manifest) (Signature, error) {
	var layer *v1.Descriptor
	for i := range m.Layers {
		if strings.HasPrefix(string(m.Layers[i].MediaType), "application/vnd.dev.sigstore.bundle") {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		return Signature{}, fail(ReasonMalformed, "no bundle layer")
	}
	raw, err := readAll(ctx, v.src, *layer, MaxBlobSize, "bundle")
	if err != nil {
		return Signature{}, err
	}
	b := bundle.Bundle{}
	bundle.AllowCertificateChain()(&b) // intermediates, as private CAs issue
	if err := b.UnmarshalJSON(raw); err != nil {
		return Signature{}, fail(ReasonMalformed, "bundle %s: %v", layer.Digest, err)
	}
	if b.VerificationMaterial.GetPublicKey() != nil {
		return v.bundleWithKey(sigManifest, m, &b)
	}
	return v.bundleKeyless(sigManifest, &b)
}

// bundleWithKey verifies a bundle signed with a public key: the key its
// hint names, or any trusted key when it names none.
func (v *verification) bundleWithKey(sigManifest v1.Hash, m *manifest, b *bundle.Bundle) (Signature, error) {
	if len(v.p.Keys) == 0 {
		return Signature{}, fail(ReasonNoPolicy, "signed with a public key, and no cosign public key is given")
	}
	keys := v.p.Keys
	if hint := b.VerificationMaterial.GetPublicKey().GetHint(); hint != "" {
		keys = nil
		for _, k := range v.p.Keys {
			if k.ID == hint {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return Signature{}, fail(ReasonUntrustedKey, "signed with key %s, which is not trusted", hint)
		}
	}
	var lastErr error
	for _, k := range keys {
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return k.expiring, nil })
		ver, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
		if err != nil {
			return Signature{}, err
		}
		res, err := ver.Verify(b, sgverify.NewPolicy(v.artifactPolicy(b), sgverify.WithKey()))
		if err != nil {
			lastErr = err
			continue
		}
		s, err := v.bundleResult(sigManifest, b, res)
		if err != nil {
			return Signature{}, err
		}
		s.Signer = Signer{KeyID: k.ID}
		s.Time, s.TimeSource = claimedTime(m)
		return s, nil
	}
	return Signature{}, bundleFailure(lastErr, nil, time.Time{})
}

// bundleKeyless verifies a bundle signed with a certificate against the
// trusted root, offline. The time the certificate must be valid at is a
// verified timestamp when the bundle and the root allow one (a
// transparency log entry, a signed timestamp), else now.
func (v *verification) bundleKeyless(sigManifest v1.Hash, b *bundle.Bundle) (Signature, error) {
	kl := v.p.Keyless
	if kl == nil {
		return Signature{}, fail(ReasonNoPolicy, "signed with a certificate, and no trusted root and identity are given")
	}
	opts := []sgverify.VerifierOption{}
	if len(kl.root.CTLogs()) > 0 {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	entries, _ := b.TlogEntries()
	stamps, _ := b.Timestamps()
	switch {
	case len(entries) > 0 && len(kl.root.RekorLogs()) > 0:
		opts = append(opts, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	case len(stamps) > 0 && len(kl.root.TimestampingAuthorities()) > 0:
		opts = append(opts, sgverify.WithSignedTimestamps(1))
	default:
		opts = append(opts, sgverify.WithCurrentTime())
	}
	ver, err := sgverify.NewVerifier(kl.root, opts...)
	if err != nil {
		return Signature{}, err
	}
	popts := []sgverify.PolicyOption{}
	for _, id := range kl.identities {
		popts = append(popts, sgverify.WithCertificateIdentity(id))
	}
	res, err := ver.Verify(b, sgverify.NewPolicy(v.artifactPolicy(b), popts...))
	if err != nil {
		var leaf *x509.Certificate
		if vc, verr := b.VerificationContent(); verr == nil {
			leaf = vc.Certificate()
		}
		return Signature{}, bundleFailure(err, leaf, time.Now())
	}
	s, err := v.bundleResult(sigManifest, b, res)
	if err != nil {
		return Signature{}, err
	}
	if c := res.Signature.Certificate; c != nil {
		s.Signer = Signer{Subject: c.SubjectAlternativeName, Issuer: c.Issuer}
	}
	for _, ts := range res.VerifiedTimestamps {
		s.Time = ts.Timestamp
		s.TimeSource = "transparency log"
		if ts.Type == "TimestampAuthority" {
			s.TimeSource = "signed timestamp"
		}
		break
	}
	return s, nil
}

// artifactPolicy checks a message signature against the subject's digest;
// a DSSE statement's subject is checked after verification (bundleResult),
// so that a valid signature over another digest gets its own reason.
func (v *verification) artifactPolicy(b *bundle.Bundle) sgverify.ArtifactPolicyOption {
	if b.GetDsseEnvelope() != nil {
		return sgverify.WithoutArtifactUnsafe()
	}
	h, err := hex.DecodeString(v.subj.Descriptor.Digest.Hex)
	if err != nil {
		return sgverify.WithoutArtifactUnsafe()
	}
	return sgverify.WithArtifactDigest(v.subj.Descriptor.Digest.Algorithm, h)
}

// bundleResult checks what a verified bundle signed: the in-toto
// statement's subject digest and annotations.
func (v *verification) bundleResult(sigManifest v1.Hash, b *bundle.Bundle, res *sgverify.VerificationResult) (Signature, error) {
	s := Signature{Format: CosignBundle, Manifest: sigManifest}
	if b.GetDsseEnvelope() == nil {
		// A message signature over the digest itself: the policy checked it.
		return s, v.checkAnnotations(nil)
	}
	st := res.Statement
	if st == nil {
		return Signature{}, fail(ReasonMalformed, "the bundle's envelope holds no in-toto statement")
	}
	want := v.subj.Descriptor.Digest
	var found []string
	for _, sub := range st.GetSubject() {
		got, ok := sub.GetDigest()[want.Algorithm]
		if !ok {
			continue
		}
		if got != want.Hex {
			found = append(found, want.Algorithm+":"+got)
			continue
		}
		s.Annotations = stringMap(sub.GetAnnotations().AsMap())
		if err := v.checkAnnotations(s.Annotations); err != nil {
			return Signature{}, err
		}
		return s, nil
	}
	if len(found) == 0 {
		return Signature{}, fail(ReasonDigestMismatch, "the signed statement names no %s digest", want.Algorithm)
	}
	return Signature{}, fail(ReasonDigestMismatch, "signed digest is %s, not %s", strings.Join(found, ", "), want)
}

// bundleFailure gives a sigstore-go verification error its reason. sigstore
// wraps its errors in messages that name the step that failed; the
// certificate's validity is checked here, since the library reports an
// expired certificate and an unknown authority alike.
func bundleFailure(err error, leaf *x509.Certificate, at time.Time) error {
	if err == nil {
		return fail(ReasonBadSignature, "no trusted key verifies the bundle")
	}
	var idErr *sgverify.ErrNoMatchingCertificateIdentity
	msg := err.Error()
	switch {
	case errors.As(err, &idErr) || strings.Contains(msg, "failed to verify certificate identity"):
		return fail(ReasonUntrustedIdentity, "%v", err)
	case strings.Contains(msg, "failed to verify leaf certificate"):
		if leaf != nil && (at.After(leaf.NotAfter) || at.Before(leaf.NotBefore)) {
			return fail(ReasonExpired, "the signing certificate is valid from %s to %s, not at %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
		return fail(ReasonUntrustedKey, "the signing certificate does not chain to the trusted root: %v", err)
	case strings.Contains(msg, "failed to verify signature"):
		return fail(ReasonBadSignature, "%v", err)
	case strings.Contains(msg, "log inclusion"), strings.Contains(msg, "timestamp"), strings.Contains(msg, "certificate timestamp"):
		return fail(ReasonUntrustedKey, "%v", err)
	}
	return fail(ReasonBadSignature, "%v", err)
}

// signBundle signs subj in cosign v3's bundle format and stores it as a
// referrer.
func signBundle(ctx context.Context, dst Sink, subj Subject, kp *keypair, chain []*x509.Certificate, ann map[string]string) (v1.Descriptor, error) {
	sub := &intoto.ResourceDescriptor{Digest: map[string]string{subj.Descriptor.Digest.Algorithm: subj.Descriptor.Digest.Hex}}
	if len(ann) > 0 {
		fields := map[string]any{}
		for k, v := range ann {
			fields[k] = v
		}
		st, err := structpb.NewStruct(fields)
		if err != nil {
			return v1.Descriptor{}, err
		}
		sub.Annotations = st
	}
	statement := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{sub},
		PredicateType: cosignPredicateType,
		Predicate:     &structpb.Struct{},
	}
	payload, err := protojson.Marshal(statement)
	if err != nil {
		return v1.Descriptor{}, err
	}
	opts := sign.BundleOptions{Context: ctx}
	if len(chain) > 0 {
		// A v0.3 bundle holds the leaf alone; the intermediates belong in
		// the verifier's trusted root (cosign refuses chains in v0.3).
		opts.CertificateProvider = leafProvider{chain[0]}
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: intotoPayloadType}, kp, opts)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("sign: %w", err)
	}
	raw, err := protojson.Marshal(pb)
	if err != nil {
		return v1.Descriptor{}, err
	}
	layer := blobDescriptor(BundleArtifactType, raw)
	cfg := blobDescriptor(emptyJSONMediaType, emptyJSON)
	cfg.ArtifactType = BundleArtifactType
	for _, blob := range []struct {
		d v1.Descriptor
		b []byte
	}{{cfg, emptyJSON}, {layer, raw}} {
		if err := dst.PutBlob(ctx, blob.d, blob.b); err != nil {
			return v1.Descriptor{}, err
		}
	}
	sd := subj.Descriptor
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleArtifactType,
		Config:        cfg,
		Layers:        []v1.Descriptor{layer},
		Subject:       &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
		Annotations: map[string]string{
			"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": cosignPredicateType,
		},
	}
	return putManifest(ctx, dst, &m, "")
}

// leafProvider hands sigstore-go a fixed signing certificate.
type leafProvider struct{ leaf *x509.Certificate }

func (p leafProvider) GetCertificate(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([]byte, error) {
	return p.leaf.Raw, nil
}
