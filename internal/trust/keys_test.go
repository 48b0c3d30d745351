package trust

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func TestParsePrivateKey(t *testing.T) {
	k := newECKey(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	// cosign's format, written by sigstore's own encoder.
	enc, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(k, cryptoutils.StaticPasswordFunc([]byte("s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	encPEM := pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), Bytes: enc})
	pw := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }
	for _, tc := range []struct {
		name    string
		pem     []byte
		pw      func() ([]byte, error)
		wantErr string
	}{
		{"pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil, ""},
		{"sec1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), nil, ""},
		{"cosign encrypted", encPEM, pw("s3cret"), ""},
		{"cosign wrong password", encPEM, pw("nope"), "wrong password"},
		{"cosign without password", encPEM, nil, "password is needed"},
		{"not PEM", []byte("hello"), nil, "no PEM block"},
		{"unknown block", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), nil, "CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParsePrivateKey(tc.pem, tc.pw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.(*ecdsa.PrivateKey).Equal(k) {
				t.Error("a different key came back")
			}
		})
	}
}
