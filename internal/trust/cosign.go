package trust

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	sgpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/lading-dev/lading/internal/errdefs"
)

// legacyLayer verifies one layer of a cosign .sig manifest: the signature
// in its annotation over the simple-signing payload it holds.
func (v *verification) legacyLayer(ctx context.Context, sigManifest v1.Hash, l v1.Descriptor) (Signature, error) {
	b64, ok := l.Annotations[CosignSignatureAnnotation]
	if !ok || b64 == "" {
		return Signature{}, fail(ReasonMalformed, "no %s annotation", CosignSignatureAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Signature{}, fail(ReasonMalformed, "%s: %v", CosignSignatureAnnotation, err)
	}
	if len(v.p.Keys) == 0 {
		if v.p.Keyless != nil {
			return Signature{}, fail(ReasonUnsupported, "keyless signatures in cosign's legacy tag layout are not supported (verify those with a public key, or sign in the bundle format)")
		}
		return Signature{}, fail(ReasonNoPolicy, "no cosign public key given")
	}
	payload, err := readAll(ctx, v.src, l, MaxBlobSize, "signature payload")
	if err != nil {
		return Signature{}, err
	}
	var signer *Key
	for _, k := range v.p.Keys {
		if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			signer = k
			break
		}
	}
	if signer == nil {
		return Signature{}, fail(ReasonBadSignature, "the signature does not verify with any trusted key: signed with another key, or the payload or signature was altered")
	}
	var sc sgpayload.SimpleContainerImage
	if err := json.Unmarshal(payload, &sc); err != nil {
		return Signature{}, fail(ReasonMalformed, "signed payload: %v", err)
	}
	if sc.Critical.Type != sgpayload.CosignSignatureType {
		return Signature{}, fail(ReasonMalformed, "signed payload: type %q, want %q", sc.Critical.Type, sgpayload.CosignSignatureType)
	}
	if got := sc.Critical.Image.DockerManifestDigest; got != v.subj.Descriptor.Digest.String() {
		return Signature{}, fail(ReasonDigestMismatch, "signed digest is %s, not %s", got, v.subj.Descriptor.Digest)
	}
	ann := stringMap(sc.Optional)
	if err := v.checkAnnotations(ann); err != nil {
		return Signature{}, err
	}
	return Signature{Format: Cosign, Manifest: sigManifest, Signer: Signer{KeyID: signer.ID}, Annotations: ann}, nil
}

// signLegacy adds a signature layer to the subject's cosign .sig manifest
// (creating it), as cosign sign --new-bundle-format=false does.
func signLegacy(ctx context.Context, src Source, dst Sink, subj Subject, kp *keypair, ann map[string]string) (v1.Descriptor, error) {
	d, err := name.NewDigest(subj.Name + "@" + subj.Descriptor.Digest.String())
	if err != nil {
		return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("image name %q: %w", subj.Name, err))
	}
	var optional map[string]any
	if len(ann) > 0 {
		optional = map[string]any{}
		for k, val := range ann {
			optional[k] = val
		}
	}
	payload, err := (&sgpayload.Cosign{Image: d, Annotations: optional}).MarshalJSON()
	if err != nil {
		return v1.Descriptor{}, err
	}
	sig, _, err := kp.SignData(ctx, payload)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("sign: %w", err)
	}
	layer := blobDescriptor(SimpleSigningMediaType, payload)
	layer.Annotations = map[string]string{CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}

	tag := legacyTag(subj.Descriptor.Digest)
	var layers []v1.Descriptor
	if old, err := src.Resolve(ctx, tag); err == nil {
		m, _, err := fetchManifest(ctx, src, old)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("existing signatures %s: %w", tag, err)
		}
		layers = m.Layers
	} else if !errdefs.IsNotFound(err) {
		return v1.Descriptor{}, fmt.Errorf("existing signatures %s: %w", tag, err)
	}
	layers = append(layers, layer)
	if err := dst.PutBlob(ctx, layer, payload); err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := legacyConfig(layers)
	if err != nil {
		return v1.Descriptor{}, err
	}
	cd := blobDescriptor(string(types.OCIConfigJSON), cfg)
	if err := dst.PutBlob(ctx, cd, cfg); err != nil {
		return v1.Descriptor{}, err
	}
	m := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: layers}
	return putManifest(ctx, dst, &m, tag)
}

// legacyConfig is the image config of a .sig manifest: its layers as the
// root filesystem, as cosign writes it.
func legacyConfig(layers []v1.Descriptor) ([]byte, error) {
	cf := v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.Digest)
	}
	return json.Marshal(cf)
}
