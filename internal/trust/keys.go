package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/lading-dev/lading/internal/errdefs"
)

// ParsePrivateKey reads a private key in PEM: cosign's encrypted format
// ("ENCRYPTED SIGSTORE PRIVATE KEY", scrypt and secretbox, as cosign
// generate-key-pair writes it), encrypted PKCS#8, or plain PKCS#8, SEC 1
// (EC PRIVATE KEY) or PKCS#1. password is asked for encrypted keys only.
func ParsePrivateKey(pemBytes []byte, password func() ([]byte, error)) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errdefs.InvalidArgument(errors.New("private key: no PEM block"))
	}
	asked := false
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, func(bool) ([]byte, error) {
		asked = true
		if password == nil {
			return nil, errors.New("the key is encrypted: a password is needed (COSIGN_PASSWORD)")
		}
		return password()
	})
	if err != nil {
		if asked {
			return nil, errdefs.InvalidArgument(fmt.Errorf("private key (%s): %w (wrong password?)", block.Type, err))
		}
		return nil, errdefs.InvalidArgument(fmt.Errorf("private key (%s): %w", block.Type, err))
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, errdefs.Unsupported(fmt.Errorf("private key of type %T cannot sign", key))
	}
	return s, nil
}

// A Key is a public key trusted for cosign signatures. Safe for concurrent
// use.
type Key struct {
	// ID is the base64 SHA-256 of the key's PKIX encoding: the hint cosign
	// puts in a bundle's verification material.
	ID       string
	Public   crypto.PublicKey
	verifier signature.Verifier
	expiring *root.ExpiringKey
}

// NewKey returns a trusted key for pub, verified with the algorithm cosign
// uses for its type (ECDSA P-256 with SHA-256, ...).
func NewKey(pub crypto.PublicKey) (*Key, error) {
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, errdefs.Unsupported(fmt.Errorf("public key: %w", err))
	}
	return &Key{ID: id, Public: pub, verifier: v, expiring: root.NewExpiringKey(v, time.Time{}, time.Time{})}, nil
}

// ParsePublicKey reads a PEM public key (PKIX "PUBLIC KEY", as cosign.pub).
func ParsePublicKey(pemBytes []byte) (*Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("public key: %w", err))
	}
	return NewKey(pub)
}

// KeyID is the base64 SHA-256 of pub's PKIX encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", errdefs.Unsupported(fmt.Errorf("public key: %w", err))
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// keypair adapts a crypto.Signer to sigstore-go's sign.Keypair, with the
// key hint cosign writes.
type keypair struct {
	signer crypto.Signer
	hint   string
	alg    signature.AlgorithmDetails
}

func newKeypair(s crypto.Signer) (*keypair, error) {
	alg, err := signature.GetDefaultAlgorithmDetails(s.Public())
	if err != nil {
		return nil, errdefs.Unsupported(fmt.Errorf("signing key: %w", err))
	}
	id, err := KeyID(s.Public())
	if err != nil {
		return nil, err
	}
	return &keypair{signer: s, hint: id, alg: alg}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return []byte(k.hint) }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.signer.Public() }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
	return string(b), err
}

// SignData signs data's digest (or data, for pure Ed25519) and returns the
// signature and what was signed.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sv, err := signature.LoadSignerVerifierFromAlgorithmDetails(k.signer, k.alg)
	if err != nil {
		return nil, nil, err
	}
	sig, err := sv.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	digest := data
	if hf := k.alg.GetHashType(); hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		digest = h.Sum(nil)
	}
	return sig, digest, nil
}
