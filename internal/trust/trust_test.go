package trust

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/store"
)

// signer is a way to sign and the policy that trusts it.
type signer struct {
	name   string
	opts   SignOptions
	policy func(t *testing.T) *Policy
}

// signers returns one signer per format, each with its own key.
func signers(t *testing.T) []signer {
	cosignKey := newECKey(t)
	p := newPKI(t, certSpec{})
	keyPolicy := func(*testing.T) *Policy { return &Policy{Keys: []*Key{trustedKey(t, cosignKey)}} }
	notPolicy := func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, p)} }
	kl := newPKI(t, certSpec{email: "dev@example.com", issuer: "https://issuer.example"})
	return []signer{
		{"cosign", SignOptions{Format: Cosign, Key: cosignKey}, keyPolicy},
		{"cosign-bundle", SignOptions{Format: CosignBundle, Key: cosignKey}, keyPolicy},
		{"cosign-bundle-keyless", SignOptions{Format: CosignBundle, Key: kl.leafKey, Chain: []*x509.Certificate{kl.leaf}}, func(t *testing.T) *Policy {
			return &Policy{Keyless: keyless(t, kl.root, Identity{Subject: "dev@example.com", Issuer: "https://issuer.example"})}
		}},
		{"notation-jws", SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain(), Envelope: NotationJWS}, notPolicy},
		{"notation-cose", SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain(), Envelope: NotationCOSE}, notPolicy},
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			l, st := newLayout(t)
			subj := putImage(t, st, "app")
			other := putImage(t, st, "other")
			o := s.opts
			o.Annotations = map[string]string{"env": "prod", "team": "core"}
			if _, err := Sign(ctx, l, l, subj, o); err != nil {
				t.Fatal(err)
			}
			p := s.policy(t)
			p.Annotations = map[string]string{"env": "prod"}
			res, err := Verify(ctx, l, subj, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Err(); err != nil {
				t.Fatalf("not trusted: %v", err)
			}
			if len(res.Verified) != 1 {
				t.Fatalf("verified %d signatures, want 1: %+v", len(res.Verified), res)
			}
			got := res.Verified[0]
			if diff := cmp.Diff(o.Annotations, got.Annotations); diff != "" {
				t.Errorf("annotations (-signed +verified):\n%s", diff)
			}
			if got.Signer == (Signer{}) {
				t.Errorf("no signer identity: %+v", got)
			}
			// The other image has no signature of its own.
			res, err = Verify(ctx, l, other, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Err(); !HasReason(err, ReasonNoSignatures) {
				t.Errorf("unsigned image: %v, want no signatures", err)
			}
		})
	}
}

// TestRefusals checks that each way a signature can fail is refused with
// its own reason.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	cosignKey, otherKey := newECKey(t), newECKey(t)
	p := newPKI(t, certSpec{})
	otherPKI := newPKI(t, certSpec{})
	kl := newPKI(t, certSpec{email: "dev@example.com", issuer: "https://issuer.example"})
	expiredKL := newPKI(t, certSpec{email: "dev@example.com", issuer: "https://issuer.example", notBefore: time.Now().Add(-3 * time.Hour), notAfter: time.Now().Add(-2 * time.Hour)})
	devID := Identity{Subject: "dev@example.com", Issuer: "https://issuer.example"}

	keys := func(k ...*Key) *Policy { return &Policy{Keys: k} }
	cosignOpts := SignOptions{Format: Cosign, Key: cosignKey}
	bundleOpts := SignOptions{Format: CosignBundle, Key: cosignKey}
	jwsOpts := SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain(), Envelope: NotationJWS}
	coseOpts := SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain(), Envelope: NotationCOSE}
	klOpts := SignOptions{Format: CosignBundle, Key: kl.leafKey, Chain: []*x509.Certificate{kl.leaf}}

	for _, tc := range []struct {
		name   string
		opts   SignOptions
		tamper func(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor)
		policy func(t *testing.T) *Policy
		want   Reason
	}{
		{"cosign/other-digest", cosignOpts, moveLegacy, func(*testing.T) *Policy { return keys(trustedKey(t, cosignKey)) }, ReasonDigestMismatch},
		{"cosign/wrong-key", cosignOpts, nil, func(*testing.T) *Policy { return keys(trustedKey(t, otherKey)) }, ReasonBadSignature},
		{"cosign/tampered-payload", cosignOpts, tamperLegacy, func(*testing.T) *Policy { return keys(trustedKey(t, cosignKey)) }, ReasonBadSignature},
		{"cosign/annotations", cosignOpts, nil, func(*testing.T) *Policy {
			return &Policy{Keys: []*Key{trustedKey(t, cosignKey)}, Annotations: map[string]string{"env": "prod"}}
		}, ReasonAnnotations},
		{"bundle/other-digest", bundleOpts, moveReferrer, func(*testing.T) *Policy { return keys(trustedKey(t, cosignKey)) }, ReasonDigestMismatch},
		{"bundle/wrong-key", bundleOpts, nil, func(*testing.T) *Policy { return keys(trustedKey(t, otherKey)) }, ReasonUntrustedKey},
		{"bundle/tampered-payload", bundleOpts, tamperBundle, func(*testing.T) *Policy { return keys(trustedKey(t, cosignKey)) }, ReasonBadSignature},
		{"bundle/annotations", bundleOpts, nil, func(*testing.T) *Policy {
			return &Policy{Keys: []*Key{trustedKey(t, cosignKey)}, Annotations: map[string]string{"env": "prod"}}
		}, ReasonAnnotations},
		{"bundle/notation-only-policy", bundleOpts, nil, func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, p)} }, ReasonNoPolicy},
		{"keyless/untrusted-identity", klOpts, nil, func(t *testing.T) *Policy {
			return &Policy{Keyless: keyless(t, kl.root, Identity{Subject: "mallory@example.com", Issuer: "https://issuer.example"})}
		}, ReasonUntrustedIdentity},
		{"keyless/other-ca", klOpts, nil, func(t *testing.T) *Policy { return &Policy{Keyless: keyless(t, otherPKI.root, devID)} }, ReasonUntrustedKey},
		{"keyless/expired", SignOptions{Format: CosignBundle, Key: expiredKL.leafKey, Chain: []*x509.Certificate{expiredKL.leaf}}, nil, func(t *testing.T) *Policy {
			return &Policy{Keyless: keyless(t, expiredKL.root, devID)}
		}, ReasonExpired},
		{"notation/other-digest", jwsOpts, moveReferrer, func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, p)} }, ReasonDigestMismatch},
		{"notation/wrong-key", jwsOpts, nil, func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, otherPKI)} }, ReasonUntrustedKey},
		{"notation/cose-wrong-key", coseOpts, nil, func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, otherPKI)} }, ReasonUntrustedKey},
		{"notation/tampered-payload", jwsOpts, tamperJWS, func(t *testing.T) *Policy { return &Policy{Notation: notationPolicy(t, p)} }, ReasonBadSignature},
		{"notation/untrusted-identity", jwsOpts, nil, func(t *testing.T) *Policy {
			return &Policy{Notation: notationPolicy(t, p, "x509.subject: C=US, ST=WA, L=Seattle, O=lading tests, CN=someone else")}
		}, ReasonUntrustedIdentity},
		{"notation/annotations", jwsOpts, nil, func(t *testing.T) *Policy {
			return &Policy{Notation: notationPolicy(t, p), Annotations: map[string]string{"env": "prod"}}
		}, ReasonAnnotations},
		{"notation/cosign-only-policy", jwsOpts, nil, func(*testing.T) *Policy { return keys(trustedKey(t, cosignKey)) }, ReasonNoPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, st := newLayout(t)
			subj := putImage(t, st, "app")
			other := putImage(t, st, "other")
			o := tc.opts
			o.Annotations = map[string]string{"env": "dev"}
			target := subj
			if tc.tamper != nil && (tc.want == ReasonDigestMismatch) {
				target = other // signed: the other image; then moved onto subj
			}
			sig, err := Sign(ctx, l, l, target, o)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(t, l, st, subj, other, sig)
			}
			res, err := Verify(ctx, l, subj, tc.policy(t))
			if err != nil {
				t.Fatal(err)
			}
			err = res.Err()
			if err == nil {
				t.Fatalf("trusted: %+v", res.Verified)
			}
			if !HasReason(err, tc.want) {
				t.Fatalf("reasons %v, want %s: %v", err.(*Error).Reasons(), tc.want, err)
			}
			t.Log(err)
		})
	}
}

// TestExpiredNotationCertificate signs with a certificate that expires a
// moment later.
func TestExpiredNotationCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a certificate to expire")
	}
	ctx := context.Background()
	p := newPKI(t, certSpec{notAfter: time.Now().Add(1500 * time.Millisecond)})
	l, st := newLayout(t)
	subj := putImage(t, st, "app")
	if _, err := Sign(ctx, l, l, subj, SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(p.leaf.NotAfter.Add(time.Second)))
	res, err := Verify(ctx, l, subj, &Policy{Notation: notationPolicy(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); !HasReason(err, ReasonExpired) {
		t.Fatalf("%v, want %s", err, ReasonExpired)
	}
}

// moveLegacy points the subject's .sig tag at the other image's signatures.
func moveLegacy(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor) {
	if err := st.SetRef(context.Background(), legacyTag(subj.Descriptor.Digest), sig); err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces the manifest sig with what edit makes of it, stored
// under the same tag (or as a referrer), and returns the new descriptor.
func rewrite(t *testing.T, l *Layout, st *store.Store, sig v1.Descriptor, tag string, edit func(m *manifest)) v1.Descriptor {
	t.Helper()
	ctx := context.Background()
	m, _, err := fetchManifest(ctx, l, sig)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	d, err := putManifest(ctx, l, m, tag)
	if err != nil {
		t.Fatal(err)
	}
	err = st.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
		out := idx.Manifests[:0]
		for _, e := range idx.Manifests {
			if e.Digest != sig.Digest {
				out = append(out, e)
			}
		}
		idx.Manifests = out
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// moveReferrer makes the other image's signature a referrer of subj.
func moveReferrer(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor) {
	rewrite(t, l, st, sig, "", func(m *manifest) {
		sd := subj.Descriptor
		m.Subject = &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size}
	})
}

// replaceLayer stores b as the manifest's first layer.
func replaceLayer(t *testing.T, l *Layout, m *manifest, b []byte) {
	t.Helper()
	d := blobDescriptor(string(m.Layers[0].MediaType), b)
	d.Annotations = m.Layers[0].Annotations
	if err := l.PutBlob(context.Background(), d, b); err != nil {
		t.Fatal(err)
	}
	m.Layers[0] = d
}

func layerBytes(t *testing.T, l *Layout, d v1.Descriptor) []byte {
	t.Helper()
	b, err := readAll(context.Background(), l, d, MaxBlobSize, "layer")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperLegacy changes the signed payload, keeping the signature.
func tamperLegacy(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor) {
	rewrite(t, l, st, sig, legacyTag(subj.Descriptor.Digest), func(m *manifest) {
		var p map[string]any
		json.Unmarshal(layerBytes(t, l, m.Layers[0]), &p)
		p["optional"] = map[string]any{"env": "prod"}
		b, _ := json.Marshal(p)
		replaceLayer(t, l, m, b)
	})
}

// tamperBundle changes the DSSE payload inside the bundle.
func tamperBundle(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor) {
	rewrite(t, l, st, sig, "", func(m *manifest) {
		var b map[string]any
		json.Unmarshal(layerBytes(t, l, m.Layers[0]), &b)
		env := b["dsseEnvelope"].(map[string]any)
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		var st map[string]any
		json.Unmarshal(payload, &st)
		st["predicateType"] = "https://example.com/forged"
		payload, _ = json.Marshal(st)
		env["payload"] = base64.StdEncoding.EncodeToString(payload)
		out, _ := json.Marshal(b)
		replaceLayer(t, l, m, out)
	})
}

// tamperJWS swaps the JWS payload for one with other annotations.
func tamperJWS(t *testing.T, l *Layout, st *store.Store, subj, other Subject, sig v1.Descriptor) {
	rewrite(t, l, st, sig, "", func(m *manifest) {
		var env map[string]any
		json.Unmarshal(layerBytes(t, l, m.Layers[0]), &env)
		payload, _ := base64.RawURLEncoding.DecodeString(env["payload"].(string))
		var p map[string]any
		json.Unmarshal(payload, &p)
		p["targetArtifact"].(map[string]any)["annotations"] = map[string]any{"env": "prod"}
		payload, _ = json.Marshal(p)
		env["payload"] = base64.RawURLEncoding.EncodeToString(payload)
		out, _ := json.Marshal(env)
		replaceLayer(t, l, m, out)
	})
}

// TestNotationCertificates verifies against a trust store held in memory,
// as a registry keeps its projects' stores.
func TestNotationCertificates(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t, certSpec{})
	l, st := newLayout(t)
	subj := putImage(t, st, "app")
	if _, err := Sign(ctx, l, l, subj, SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain(), Envelope: NotationCOSE}); err != nil {
		t.Fatal(err)
	}
	doc := `{"version":"1.0","trustPolicies":[{"name":"team","registryScopes":["` + testRepo + `"],` +
		`"signatureVerification":{"level":"strict"},"trustStores":["ca:team"],"trustedIdentities":["*"]}]}`
	for _, tc := range []struct {
		name  string
		store NotationCertificates
		want  Reason // "" for trusted
	}{
		{"trusted", NotationCertificates{"ca:team": {p.root}}, ""},
		{"other CA", NotationCertificates{"ca:team": {newPKI(t, certSpec{}).root}}, ReasonUntrustedKey},
		{"no such store", NotationCertificates{"ca:other": {p.root}}, ReasonUntrustedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np, err := NewNotation([]byte(doc), tc.store, NotationOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(ctx, l, subj, &Policy{Notation: np})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if err := res.Err(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := res.Err(); !HasReason(err, tc.want) {
				t.Fatalf("%v, want %s", err, tc.want)
			}
		})
	}
}
