package trust

import (
	"context"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FuzzParseManifest: any bytes parse or fail, never panic.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`,
		`{"schemaVersion":2,"config":{"digest":"sha256:zz"}}`,
		`{"schemaVersion":2,"subject":{"digest":"md5:00"}}`,
		`[]`, ``, `{"schemaVersion":2}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err == nil && m.SchemaVersion != 2 {
			t.Fatalf("accepted schemaVersion %d", m.SchemaVersion)
		}
	})
}

// FuzzVerifySignature stores fuzzed bytes as the signature of each format
// (legacy payload, bundle, JWS and COSE envelopes) and verifies: never a
// panic, and nothing the fuzzer makes is trusted (it holds no key).
func FuzzVerifySignature(f *testing.F) {
	for _, s := range []string{
		`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"payload":"e30","protected":"e30","header":{"x5c":["AA"]},"signature":"AA"}`,
		"\xd2\x84\x40\xa0\xf6\x40",
	} {
		for kind := byte(0); kind < 4; kind++ {
			f.Add(kind, []byte(s))
		}
	}
	p := fullPolicy(f)
	p.Keys = append(p.Keys, trustedKey(f, newECKey(f)))
	subj := subjectDescriptor()
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		m := newMemSource()
		switch kind % 4 {
		case 0:
			l := m.add(SimpleSigningMediaType, b)
			l.Annotations = map[string]string{CosignSignatureAnnotation: "MEUCIQ=="}
			mf := manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: m.add(string(types.OCIConfigJSON), emptyJSON), Layers: []v1.Descriptor{l}}
			raw, _ := jsonMarshal(mf)
			m.tags[legacyTag(subj.Digest)] = m.add(string(types.OCIManifestSchema1), raw)
		case 1:
			m.referrer(subj, BundleArtifactType, m.add(BundleArtifactType, b))
		case 2:
			m.referrer(subj, NotationArtifactType, m.add(NotationJWS, b))
		case 3:
			m.referrer(subj, NotationArtifactType, m.add(NotationCOSE, b))
		}
		res, err := Verify(context.Background(), m, Subject{Descriptor: subj, Name: testRepo}, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Err() == nil {
			t.Fatalf("fuzzed signature trusted: %+v", res.Verified)
		}
	})
}

// FuzzParseKeys: key files parse or fail, never panic.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePublicKey(b)
		ParsePrivateKey(b, func() ([]byte, error) { return []byte("pw"), nil })
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
