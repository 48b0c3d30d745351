package trust

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/lading-dev/lading/internal/store"
)

// testRepo is the repository name the tests sign under.
const testRepo = "registry.example/team/app"

// newLayout returns an empty OCI layout in a temp dir, as a Source and
// Sink, and the store under it.
func newLayout(t testing.TB) (*Layout, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "layout"), store.AsLayout())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewLayout(st, ""), st
}

// putImage writes a small random image into st, named name, and returns
// it as a Subject.
func putImage(t testing.TB, st *store.Store, name string) Subject {
	t.Helper()
	ctx := context.Background()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if _, err := st.PutBlob(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.RawConfigFile()
	raw, _ := img.RawManifest()
	for _, b := range [][]byte{cfg, raw} {
		if _, err := st.PutBlob(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := img.Digest()
	mt, _ := img.MediaType()
	d := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}
	if err := st.SetRef(ctx, name, d); err != nil {
		t.Fatal(err)
	}
	return Subject{Descriptor: d, Name: testRepo}
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func trustedKey(t testing.TB, k *ecdsa.PrivateKey) *Key {
	t.Helper()
	key, err := NewKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// certSpec describes a test certificate.
type certSpec struct {
	cn        string
	ca        bool
	notBefore time.Time
	notAfter  time.Time
	email     string // SAN
	issuer    string // Fulcio OIDC issuer extension
	parent    *x509.Certificate
	parentKey crypto.Signer
}

// newCert issues a certificate for key (self-signed without a parent).
func newCert(t testing.TB, key crypto.Signer, s certSpec) *x509.Certificate {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"lading tests"}, Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"}},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  s.ca,
	}
	if s.ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	if s.email != "" {
		tmpl.EmailAddresses = []string{s.email}
	}
	if s.issuer != "" {
		v, _ := asn1.Marshal(s.issuer)
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions,
			pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(s.issuer)},
			pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: v})
	}
	parent, parentKey := tmpl, key
	if s.parent != nil {
		parent, parentKey = s.parent, s.parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pki is a root CA and a code-signing leaf under it.
type pki struct {
	rootKey *ecdsa.PrivateKey
	root    *x509.Certificate
	leafKey *ecdsa.PrivateKey
	leaf    *x509.Certificate
}

func newPKI(t testing.TB, leaf certSpec) *pki {
	t.Helper()
	p := &pki{rootKey: newECKey(t), leafKey: newECKey(t)}
	p.root = newCert(t, p.rootKey, certSpec{cn: "lading test root", ca: true, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	leaf.parent, leaf.parentKey = p.root, p.rootKey
	if leaf.cn == "" {
		leaf.cn = "lading test signer"
	}
	p.leaf = newCert(t, p.leafKey, leaf)
	return p
}

func (p *pki) chain() []*x509.Certificate { return []*x509.Certificate{p.leaf, p.root} }

// notationPolicy writes a trust store holding p's root and returns a
// Notation policy trusting it for every scope, with the identities given
// ("*" when none).
func notationPolicy(t testing.TB, p *pki, identities ...string) *NotationPolicy {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "truststore", "x509", "ca", "test")
	if err := os.MkdirAll(ca, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ca, "root.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(identities) == 0 {
		identities = []string{"*"}
	}
	doc := map[string]any{
		"version": "1.0",
		"trustPolicies": []any{map[string]any{
			"name":                  "test",
			"registryScopes":        []string{"*"},
			"signatureVerification": map[string]any{"level": "strict"},
			"trustStores":           []string{"ca:test"},
			"trustedIdentities":     identities,
		}},
	}
	b, _ := json.Marshal(doc)
	st, err := NotationTrustStoreDir(filepath.Join(dir, "truststore"))
	if err != nil {
		t.Fatal(err)
	}
	np, err := NewNotation(b, st, NotationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return np
}

// trustedRootJSON is a Sigstore trusted root whose only certificate
// authority is ca.
func trustedRootJSON(t testing.TB, ca *x509.Certificate) []byte {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca, ValidityPeriodStart: ca.NotBefore, URI: "https://fulcio.test"}},
		nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keyless(t testing.TB, ca *x509.Certificate, id Identity) *Keyless {
	t.Helper()
	k, err := NewKeyless(trustedRootJSON(t, ca), id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
