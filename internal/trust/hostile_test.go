package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lading-dev/lading/internal/errdefs"
)

// memSource is a Source over maps, for content a real store would refuse
// to hold (a 50 MB manifest, blobs that do not match their digests).
type memSource struct {
	referrers []v1.Descriptor
	tags      map[string]v1.Descriptor
	blobs     map[v1.Hash]func() io.Reader
	read      atomic.Int64
}

func newMemSource() *memSource {
	return &memSource{tags: map[string]v1.Descriptor{}, blobs: map[v1.Hash]func() io.Reader{}}
}

func (m *memSource) Referrers(context.Context, v1.Hash) ([]v1.Descriptor, error) {
	return m.referrers, nil
}

func (m *memSource) Resolve(_ context.Context, tag string) (v1.Descriptor, error) {
	d, ok := m.tags[tag]
	if !ok {
		return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("%s", tag))
	}
	return d, nil
}

func (m *memSource) Fetch(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	f, ok := m.blobs[d.Digest]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("%s", d.Digest))
	}
	return io.NopCloser(&countingReader{r: f(), n: &m.read}), nil
}

func (m *memSource) PutBlob(_ context.Context, d v1.Descriptor, b []byte) error {
	m.blobs[d.Digest] = func() io.Reader { return bytes.NewReader(b) }
	return nil
}

func (m *memSource) PutManifest(ctx context.Context, d v1.Descriptor, raw []byte, tag string) error {
	m.PutBlob(ctx, d, raw)
	if tag != "" {
		m.tags[tag] = d
	} else {
		m.referrers = append(m.referrers, d)
	}
	return nil
}

// add stores b and returns its descriptor.
func (m *memSource) add(mt string, b []byte) v1.Descriptor {
	d := blobDescriptor(mt, b)
	m.PutBlob(context.Background(), d, b)
	return d
}

// referrer stores a manifest of the given config type and layers, with
// subject subj, and lists it.
func (m *memSource) referrer(subj v1.Descriptor, configType string, layers ...v1.Descriptor) v1.Descriptor {
	mf := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: m.add(configType, emptyJSON), Layers: layers, Subject: &subj}
	if layers == nil {
		mf.Layers = []v1.Descriptor{}
	}
	raw, _ := json.Marshal(mf)
	d := m.add(string(types.OCIManifestSchema1), raw)
	m.referrers = append(m.referrers, d)
	return d
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// repeat is an endless stream of b.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// subjectDescriptor is an image manifest descriptor (never fetched).
func subjectDescriptor() v1.Descriptor {
	return blobDescriptor(string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
}

// fullPolicy trusts every format.
func fullPolicy(t testing.TB) *Policy {
	p := newPKI(t, certSpec{email: "dev@example.com", issuer: "https://issuer.example"})
	return &Policy{
		Keys:     []*Key{trustedKey(t, newECKey(t))},
		Keyless:  keyless(t, p.root, Identity{Subject: "dev@example.com", Issuer: "https://issuer.example"}),
		Notation: notationPolicy(t, p),
	}
}

// loopCerts returns two CA certificates that issue each other, neither
// self-signed, and a leaf issued by the first.
func loopCerts(t testing.TB) (leafKey *ecdsa.PrivateKey, chain []*x509.Certificate) {
	kl := newECKey(t)
	return kl, loopChain(t, kl)
}

// loopChain is loopCerts's chain for the leaf key kl.
func loopChain(t testing.TB, kl *ecdsa.PrivateKey) []*x509.Certificate {
	ka, kb := newECKey(t), newECKey(t)
	mk := func(cn, issuer string, pub crypto.PublicKey, signer crypto.Signer, ca bool) *x509.Certificate {
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"loop"}, Country: []string{"US"}, Province: []string{"WA"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: ca,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
		if !ca {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			tmpl.EmailAddresses = []string{"dev@example.com"}
		}
		parent := &x509.Certificate{Subject: pkix.Name{CommonName: issuer, Organization: []string{"loop"}, Country: []string{"US"}, Province: []string{"WA"}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	a := mk("loop A", "loop B", ka.Public(), kb, true)
	b := mk("loop B", "loop A", kb.Public(), ka, true)
	leaf := mk("loop leaf", "loop A", kl.Public(), ka, false)
	return []*x509.Certificate{leaf, a, b}
}

// loopedJWS is a valid JWS envelope over subj whose unprotected x5c
// header is replaced by a chain that loops (its leaf holds the signing
// key, so integrity holds and only the chain is wrong).
func loopedJWS(t testing.TB, subj v1.Descriptor) []byte {
	p := newPKI(t, certSpec{})
	m := newMemSource()
	if _, err := Sign(context.Background(), m, m, Subject{Descriptor: subj, Name: testRepo}, SignOptions{Format: Notation, Key: p.leafKey, Chain: p.chain()}); err != nil {
		t.Fatal(err)
	}
	var mf manifest
	raw, _ := io.ReadAll(m.blobs[m.referrers[0].Digest]())
	json.Unmarshal(raw, &mf)
	env, _ := io.ReadAll(m.blobs[mf.Layers[0].Digest]())
	var j map[string]any
	json.Unmarshal(env, &j)
	var x5c []string
	for _, c := range loopChain(t, p.leafKey) {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	j["header"].(map[string]any)["x5c"] = x5c
	out, _ := json.Marshal(j)
	return out
}

// TestHostile feeds Verify what a hostile registry or layout could hold:
// never a panic, never trusted, the reason in the error.
func TestHostile(t *testing.T) {
	ctx := context.Background()
	policy := fullPolicy(t)
	subj := subjectDescriptor()
	for _, tc := range []struct {
		name    string
		build   func(t *testing.T, m *memSource)
		want    Reason
		maxRead int64 // bytes Verify may read (0: no bound checked)
	}{
		{"bundle not JSON", func(t *testing.T, m *memSource) {
			m.referrer(subj, BundleArtifactType, m.add(BundleArtifactType, []byte("{not json")))
		}, ReasonMalformed, 0},
		{"bundle without content", func(t *testing.T, m *memSource) {
			m.referrer(subj, BundleArtifactType, m.add(BundleArtifactType, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)))
		}, ReasonMalformed, 0},
		{"bundle of unknown version", func(t *testing.T, m *memSource) {
			m.referrer(subj, BundleArtifactType, m.add(BundleArtifactType, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v9+json","dsseEnvelope":{}}`)))
		}, ReasonMalformed, 0},
		{"JWS envelope garbage", func(t *testing.T, m *memSource) {
			m.referrer(subj, NotationArtifactType, m.add(NotationJWS, []byte(`{"payload":"!!","protected":"x","signature":"y"}`)))
		}, ReasonMalformed, 0},
		{"COSE envelope garbage", func(t *testing.T, m *memSource) {
			m.referrer(subj, NotationArtifactType, m.add(NotationCOSE, []byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}))
		}, ReasonMalformed, 0},
		{"notation with two layers", func(t *testing.T, m *memSource) {
			l := m.add(NotationJWS, []byte("{}"))
			m.referrer(subj, NotationArtifactType, l, l)
		}, ReasonMalformed, 0},
		{"unknown artifact type", func(t *testing.T, m *memSource) {
			m.referrer(subj, "application/vnd.example.sbom+json", m.add("application/json", []byte("{}")))
		}, ReasonUnsupported, 0},
		{"unknown envelope media type", func(t *testing.T, m *memSource) {
			m.referrer(subj, NotationArtifactType, m.add("application/x-unknown", []byte("{}")))
		}, ReasonUnsupported, 0},
		{"unknown legacy layer media type", func(t *testing.T, m *memSource) {
			mf := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: m.add(string(types.OCIConfigJSON), emptyJSON), Layers: []v1.Descriptor{m.add("application/x-unknown", []byte("x"))}}
			raw, _ := json.Marshal(mf)
			m.tags[legacyTag(subj.Digest)] = m.add(string(types.OCIManifestSchema1), raw)
		}, ReasonUnsupported, 0},
		{"referrer listing the image itself", func(t *testing.T, m *memSource) {
			m.referrers = append(m.referrers, subj)
		}, ReasonSelfReference, 0},
		{"legacy tag naming the image itself", func(t *testing.T, m *memSource) {
			m.tags[legacyTag(subj.Digest)] = subj
		}, ReasonSelfReference, 0},
		{"referrer of another subject", func(t *testing.T, m *memSource) {
			m.referrer(subjectDescriptorOf("other"), NotationArtifactType, m.add(NotationJWS, []byte("{}")))
		}, ReasonDigestMismatch, 0},
		{"50 MB manifest, size told", func(t *testing.T, m *memSource) {
			d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subjectDescriptorOf("big").Digest, Size: 50 << 20}
			m.blobs[d.Digest] = func() io.Reader { return io.LimitReader(repeat(' '), 50<<20) }
			m.referrers = append(m.referrers, d)
		}, ReasonTooLarge, 0},
		{"50 MB manifest, size hidden", func(t *testing.T, m *memSource) {
			d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subjectDescriptorOf("big").Digest, Size: 1000}
			m.blobs[d.Digest] = func() io.Reader { return io.LimitReader(repeat(' '), 50<<20) }
			m.referrers = append(m.referrers, d)
		}, ReasonTooLarge, MaxManifestSize + 1<<20},
		{"50 MB legacy manifest", func(t *testing.T, m *memSource) {
			d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subjectDescriptorOf("big").Digest}
			m.blobs[d.Digest] = func() io.Reader { return io.LimitReader(repeat(' '), 50<<20) }
			m.tags[legacyTag(subj.Digest)] = d
		}, ReasonTooLarge, MaxManifestSize + 1<<20},
		{"50 MB bundle", func(t *testing.T, m *memSource) {
			d := v1.Descriptor{MediaType: BundleArtifactType, Digest: subjectDescriptorOf("big").Digest}
			m.blobs[d.Digest] = func() io.Reader { return io.LimitReader(repeat(' '), 50<<20) }
			m.referrer(subj, BundleArtifactType, d)
		}, ReasonTooLarge, MaxBlobSize + 1<<20},
		{"content that is not its digest", func(t *testing.T, m *memSource) {
			d := m.referrer(subj, NotationArtifactType, m.add(NotationJWS, []byte("{}")))
			m.blobs[d.Digest] = func() io.Reader { return strings.NewReader(`{"schemaVersion":2}`) }
		}, ReasonMalformed, 0},
		{"manifest not JSON", func(t *testing.T, m *memSource) {
			m.referrers = append(m.referrers, m.add(string(types.OCIManifestSchema1), []byte("\x00\x01garbage")))
		}, ReasonMalformed, 0},
		{"missing blob", func(t *testing.T, m *memSource) {
			m.referrer(subj, BundleArtifactType, blobDescriptor(BundleArtifactType, []byte("absent")))
		}, ReasonUnavailable, 0},
		{"too many referrers", func(t *testing.T, m *memSource) {
			for i := 0; i < 3*MaxSignatures; i++ {
				m.referrer(subj, "application/vnd.example.other", m.add("application/json", []byte(fmt.Sprint(i))))
			}
		}, ReasonTooLarge, 0},
		{"bundle certificate chain that loops", func(t *testing.T, m *memSource) {
			key, chain := loopCerts(t)
			kp, _ := newKeypair(key)
			pb, err := sign.Bundle(&sign.DSSEData{Data: []byte(`{}`), PayloadType: intotoPayloadType}, kp, sign.BundleOptions{CertificateChainProvider: chainProvider(chain)})
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := protojson.Marshal(pb)
			m.referrer(subj, BundleArtifactType, m.add(BundleArtifactType, raw))
		}, ReasonUntrustedKey, 0},
		{"notation certificate chain that loops", func(t *testing.T, m *memSource) {
			m.referrer(subj, NotationArtifactType, m.add(NotationJWS, loopedJWS(t, subj)))
		}, ReasonMalformed, 0}, // notation-core-go: the chain must end in a self-signed root
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemSource()
			tc.build(t, m)
			res, err := Verify(ctx, m, Subject{Descriptor: subj, Name: testRepo}, policy)
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
			if tc.maxRead > 0 && m.read.Load() > tc.maxRead {
				t.Errorf("read %d bytes, want at most %d", m.read.Load(), tc.maxRead)
			}
			t.Log(err)
		})
	}
}

// chainProvider hands sigstore-go a whole certificate chain, as a private
// CA's signer might.
type chainProvider []*x509.Certificate

func (c chainProvider) GetCertificateChain(context.Context, sign.Keypair, *sign.CertificateProviderOptions) ([][]byte, error) {
	var out [][]byte
	for _, cert := range c {
		out = append(out, cert.Raw)
	}
	return out, nil
}

func subjectDescriptorOf(s string) v1.Descriptor {
	return blobDescriptor(string(types.OCIManifestSchema1), []byte(s))
}
