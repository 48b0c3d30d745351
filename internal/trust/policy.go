package trust

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/dir"
	nverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/lading-dev/lading/internal/errdefs"
)

// A Policy says which signers are trusted. A signature counts when one of
// them verifies it over the subject's digest and it carries every required
// annotation. A Policy is immutable once built and safe for concurrent
// use.
type Policy struct {
	// Keys are the cosign public keys trusted (legacy and bundle formats).
	Keys []*Key
	// Keyless, if set, trusts Sigstore bundles whose certificate chains to
	// its trusted root and names one of its identities.
	Keyless *Keyless
	// Notation, if set, trusts Notation signatures its trust policy and
	// store accept.
	Notation *NotationPolicy
	// Annotations must all be present, with these values, in what was
	// signed (cosign's -a, Notation's user metadata).
	Annotations map[string]string
}

// Empty reports whether the policy trusts nobody.
func (p *Policy) Empty() bool {
	return p == nil || (len(p.Keys) == 0 && p.Keyless == nil && p.Notation == nil)
}

// An Identity is a keyless signer: the certificate's subject alternative
// name (an email or URI) and the OIDC issuer that vouched for it, each
// given exactly or as a regular expression.
type Identity struct {
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegexp  string `json:"issuerRegexp,omitempty"`
}

// Keyless trusts Sigstore certificates from a trusted root, offline.
type Keyless struct {
	root       *root.TrustedRoot
	identities sgverify.CertificateIdentities
}

// NewKeyless reads a Sigstore trusted_root.json (the certificate
// authorities, transparency logs, timestamp authorities and CT logs that
// are trusted) and the identities that may sign.
func NewKeyless(trustedRootJSON []byte, ids ...Identity) (*Keyless, error) {
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trusted root: %w", err))
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, errdefs.InvalidArgument(errors.New("trusted root: no certificate authorities"))
	}
	if len(ids) == 0 {
		return nil, errdefs.InvalidArgument(errors.New("keyless verification needs a certificate identity and issuer"))
	}
	k := &Keyless{root: tr}
	for _, id := range ids {
		if (id.Subject == "" && id.SubjectRegexp == "") || (id.Issuer == "" && id.IssuerRegexp == "") {
			return nil, errdefs.InvalidArgument(fmt.Errorf("identity %+v: both a subject and an issuer are needed", id))
		}
		ci, err := sgverify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.Subject, id.SubjectRegexp)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("identity %+v: %w", id, err))
		}
		k.identities = append(k.identities, ci)
	}
	return k, nil
}

// NotationPolicy trusts what a Notation trust policy and trust store
// accept.
type NotationPolicy struct {
	verifier notation.Verifier
	doc      *trustpolicy.Document
}

// NotationOptions tune Notation verification.
type NotationOptions struct {
	// Revocation checks the signing chain (OCSP and CRL). Nil: notation-go's
	// default, online as the notation CLI (only for certificates that name
	// responders).
	Revocation revocation.Validator
}

// NewNotation builds a Notation policy from a trust policy document in
// Notation's format (trustpolicy.json or trustpolicy.oci.json) and a trust
// store.
func NewNotation(trustPolicyJSON []byte, store truststore.X509TrustStore, opts NotationOptions) (*NotationPolicy, error) {
	var doc trustpolicy.Document // read as notation-go reads it
	if err := json.Unmarshal(trustPolicyJSON, &doc); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trust policy: %w", err))
	}
	if err := doc.Validate(); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trust policy: %w", err))
	}
	v, err := nverifier.NewWithOptions(&doc, cachedStore(store), nil, nverifier.VerifierOptions{
		RevocationCodeSigningValidator: opts.Revocation,
	})
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trust policy: %w", err))
	}
	return &NotationPolicy{verifier: v, doc: &doc}, nil
}

// NotationTrustStoreDir is a trust store in Notation's layout:
// DIR/x509/{ca,signingAuthority,tsa}/NAME/*.pem. DIR may also be
// Notation's configuration directory, which holds truststore/.
func NotationTrustStoreDir(d string) (truststore.X509TrustStore, error) {
	st, err := os.Stat(d)
	if err != nil {
		return nil, errdefs.NotFound(fmt.Errorf("trust store: %w", err))
	}
	if !st.IsDir() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trust store %s is not a directory", d))
	}
	if _, err := os.Stat(filepath.Join(d, "truststore", "x509")); err == nil {
		return truststore.NewX509TrustStore(dir.NewSysFS(d)), nil
	}
	if _, err := os.Stat(filepath.Join(d, "x509")); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("trust store %s has no x509/ (want DIR/x509/{ca,signingAuthority,tsa}/NAME/*.pem)", d))
	}
	// notation-go asks for truststore/x509/...: root that at DIR.
	if filepath.Base(filepath.Clean(d)) == "truststore" {
		return truststore.NewX509TrustStore(dir.NewSysFS(filepath.Dir(filepath.Clean(d)))), nil
	}
	return truststore.NewX509TrustStore(storeFS{FS: os.DirFS(d), root: d}), nil
}

// storeFS is a dir.SysFS whose truststore/ is root (notation-go's trust
// store uses SysPath only).
type storeFS struct {
	fs.FS
	root string
}

func (s storeFS) SysPath(items ...string) (string, error) {
	p := filepath.Join(items...)
	rest, err := filepath.Rel("truststore", p)
	if err != nil || rest == ".." || filepath.IsAbs(rest) || (len(rest) > 2 && rest[:3] == "../") {
		return "", fmt.Errorf("trust store path %q outside the store", p)
	}
	return filepath.Join(s.root, rest), nil
}

// cachedStore remembers each named store's certificates, so that a policy
// reads its trust store once, not on every verification.
func cachedStore(s truststore.X509TrustStore) truststore.X509TrustStore {
	return &certCache{next: s}
}

type certCache struct {
	next truststore.X509TrustStore
	mu   sync.Mutex
	m    map[string][]*x509.Certificate
}

func (c *certCache) GetCertificates(ctx context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	key := string(t) + "/" + name
	c.mu.Lock()
	certs, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return certs, nil
	}
	certs, err := c.next.GetCertificates(ctx, t, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string][]*x509.Certificate{}
	}
	c.m[key] = certs
	c.mu.Unlock()
	return certs, nil
}

// NotationCertificates is a Notation trust store held in memory: the
// certificates of each named store, keyed as trust policies name them
// ("ca:acme", "signingAuthority:release", "tsa:stamps"). A registry keeps
// its projects' trust stores this way rather than in files.
type NotationCertificates map[string][]*x509.Certificate

// GetCertificates returns the certificates of one named store.
func (c NotationCertificates) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	certs := c[string(t)+":"+name]
	if len(certs) == 0 {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("the trust store %q of type %q does not exist", name, t)}
	}
	if err := truststore.ValidateCertificates(certs); err != nil {
		return nil, truststore.CertificateError{InnerError: err, Msg: fmt.Sprintf("trust store %s:%s: %v", t, name, err)}
	}
	return certs, nil
}
