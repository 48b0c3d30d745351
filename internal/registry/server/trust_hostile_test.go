package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gcartifact "github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/trust"
)

// rawManifest is a manifest pushed as given.
type rawManifest struct {
	mt  types.MediaType
	raw []byte
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// pushBlob uploads b to repo as the administrator and returns its
// descriptor with media type mt.
func pushBlob(t *testing.T, srv *harbortest.Server, repo, mt string, b []byte) v1.Descriptor {
	t.Helper()
	r, _ := name.NewRepository(srv.Host+"/"+repo, name.Insecure)
	l := static.NewLayer(b, types.MediaType(mt))
	if err := remote.WriteLayer(r, l, remote.WithAuth(adminAuth())); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

// pushManifest puts an OCI manifest into repo under ref (a tag or "" for
// its digest) and returns its digest.
func pushManifest(t *testing.T, srv *harbortest.Server, repo, ref string, m map[string]any) string {
	t.Helper()
	m["schemaVersion"] = 2
	m["mediaType"] = string(types.OCIManifestSchema1)
	raw, _ := json.Marshal(m)
	sum := sha256.Sum256(raw)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	if ref == "" {
		ref = "@" + dgst
	} else {
		ref = ":" + ref
	}
	r, err := name.ParseReference(srv.Host+"/"+repo+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{mt: types.OCIManifestSchema1, raw: raw}, remote.WithAuth(adminAuth())); err != nil {
		t.Fatal(err)
	}
	return dgst
}

func adminAuth() authn.Authenticator { return &authn.Basic{Username: admin, Password: adminPW} }

// referrer pushes a referrer of subject with one layer (mt, content).
func referrer(t *testing.T, srv *harbortest.Server, repo string, subject v1.Descriptor, artifactType, mt string, content []byte) string {
	t.Helper()
	empty := pushBlob(t, srv, repo, "application/vnd.oci.empty.v1+json", []byte("{}"))
	layer := pushBlob(t, srv, repo, mt, content)
	return pushManifest(t, srv, repo, "", map[string]any{"artifactType": artifactType, "config": empty, "layers": []v1.Descriptor{layer}, "subject": subject})
}

// subjectOf pushes a random image to repo:tag and returns its descriptor.
func subjectOf(t *testing.T, srv *harbortest.Server, repo, tag string) v1.Descriptor {
	t.Helper()
	img := harbortest.Image(t)
	if err := srv.Push(context.Background(), img, repo, tag, admin, adminPW); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}
}

// testCA is a self-signed CA certificate (PEM).
func testCA(t *testing.T) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lading hostile test CA", Organization: []string{"lading"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestSignaturePolicyHostile: what is stored as a signature and is not a
// good one never makes a pull a 500 and never counts; the refusal names
// the reason.
func TestSignaturePolicyHostile(t *testing.T) {
	srv := harbortest.Start(t)
	api := srv.Admin()
	newSignedProject(t, api, "hc", true, false)
	newSignedProject(t, api, "hn", false, true)
	setPolicy(t, srv, "hc", contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "k", PublicKey: testPolicyKey()}}})
	tp := json.RawMessage(`{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:t"],"trustedIdentities":["*"]}]}`)
	setPolicy(t, srv, "hn", contenttrust.Policy{Notation: &contenttrust.NotationTrust{TrustPolicy: tp, TrustStore: map[string]string{"ca:t": testCA(t)}}})

	for _, tc := range []struct {
		name, project string
		stores        func(t *testing.T, repo string, subj v1.Descriptor)
		reason        trust.Reason
		short         bool // runs under -short
	}{
		{"bundle-not-json", "hc", func(t *testing.T, repo string, subj v1.Descriptor) {
			referrer(t, srv, repo, subj, trust.BundleArtifactType, trust.BundleArtifactType, []byte("{not a bundle"))
		}, trust.ReasonMalformed, true},
		{"bundle-empty-object", "hc", func(t *testing.T, repo string, subj v1.Descriptor) {
			referrer(t, srv, repo, subj, trust.BundleArtifactType, trust.BundleArtifactType, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
		}, trust.ReasonMalformed, true},
		{"bundle-50mb", "hc", func(t *testing.T, repo string, subj v1.Descriptor) {
			referrer(t, srv, repo, subj, trust.BundleArtifactType, trust.BundleArtifactType, bytes.Repeat([]byte{' '}, 50<<20))
		}, trust.ReasonTooLarge, false},
		{"legacy-tag-on-itself", "hc", func(t *testing.T, repo string, subj v1.Descriptor) {
			r, _ := name.ParseReference(srv.Host+"/"+repo+"@"+subj.Digest.String(), name.Insecure)
			tag, _ := name.NewTag(srv.Host+"/"+repo+":sha256-"+subj.Digest.Hex+".sig", name.Insecure)
			d, err := remote.Get(r, remote.WithAuth(adminAuth()))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Tag(tag, d, remote.WithAuth(adminAuth())); err != nil {
				t.Fatal(err)
			}
		}, trust.ReasonSelfReference, true},
		{"legacy-no-signature-layer", "hc", func(t *testing.T, repo string, subj v1.Descriptor) {
			empty := pushBlob(t, srv, repo, "application/vnd.oci.empty.v1+json", []byte("{}"))
			l := pushBlob(t, srv, repo, trust.SimpleSigningMediaType, []byte(`{"critical":{}}`))
			pushManifest(t, srv, repo, "sha256-"+subj.Digest.Hex+".sig", map[string]any{"config": empty, "layers": []v1.Descriptor{l}})
		}, trust.ReasonMalformed, true},
		{"envelope-garbage", "hn", func(t *testing.T, repo string, subj v1.Descriptor) {
			referrer(t, srv, repo, subj, trust.NotationArtifactType, trust.NotationJWS, []byte("\x00\x01garbage"))
		}, trust.ReasonMalformed, true},
		{"envelope-unknown-media-type", "hn", func(t *testing.T, repo string, subj v1.Descriptor) {
			referrer(t, srv, repo, subj, trust.NotationArtifactType, "application/x-unknown", []byte("{}"))
		}, trust.ReasonUnsupported, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && !tc.short {
				t.Skip("a 50 MB push: not under -short")
			}
			repo := tc.project + "/" + tc.name
			subj := subjectOf(t, srv, repo, "v1")
			tc.stores(t, repo, subj)
			r := registryGet(t, srv, "/v2/"+repo+"/manifests/v1", "test")
			if r.status != 412 || !strings.Contains(r.body, "PROJECTPOLICYVIOLATION") || !strings.Contains(r.body, "("+string(tc.reason)+")") {
				t.Errorf("pull: %d %s; want 412 naming %s", r.status, r.body, tc.reason)
			}
		})
	}
}

// TestSignaturePolicyConfig: the configuration file's trust: section
// fixes a project's trusted keys; the API shows them and cannot change
// them.
func TestSignaturePolicyConfig(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "release.pub")
	if err := os.WriteFile(pub, []byte(testPolicyKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) {
		c.Trust.Projects = map[string]server.TrustProject{"fixed": {CosignKeys: []string{pub}}}
	}))
	newSignedProject(t, srv.Admin(), "fixed", true, false)
	r := do(t, srv, "GET", "/api/v2.0/projects/fixed/trust-policy", "", admin, adminPW)
	var p contenttrust.Policy
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || r.status != 200 || !p.Fixed || len(p.CosignKeys) != 1 || p.CosignKeys[0].Name != "release" || p.CosignKeys[0].KeyID == "" {
		t.Errorf("GET trust-policy: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", "/api/v2.0/projects/fixed/trust-policy", testPolicy(), admin, adminPW); r.status != 412 || !strings.Contains(r.body, "configuration file") {
		t.Errorf("PUT over the configuration: %d %s", r.status, r.body)
	}
	// An unsigned image is refused; the message names the key check.
	subjectOf(t, srv, "fixed/app", "v1")
	wantPull(t, srv, "fixed/app:v1", "", "", 412, "verifies against the project's trusted signers")

	// A bad key file stops the server from opening, naming the file.
	if err := os.WriteFile(pub, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg server.Config
	cfg.Auth.AdminPassword = harbortest.AdminPassword
	cfg.Trust.Projects = map[string]server.TrustProject{"fixed": {CosignKeys: []string{pub}}}
	cfg.Defaults(t.TempDir())
	if s, err := server.Open(context.Background(), cfg, server.Options{}); err == nil {
		s.Close()
		t.Error("a bad key file was accepted")
	} else if !strings.Contains(err.Error(), "trust.projects.fixed") {
		t.Errorf("bad key file: %v", err)
	}
}

// TestAccessoryTypes: referrers are typed as Harbor types accessories
// (by artifact type, or config media type), listed with their subject and
// left out of the artifact list.
func TestAccessoryTypes(t *testing.T) {
	srv := harbortest.Start(t)
	api := srv.Admin()
	newSignedProject(t, api, "acc", false, false)
	subj := subjectOf(t, srv, "acc/app", "v1")
	want := map[string]int{}
	for _, tc := range []struct{ artifactType, typ string }{
		{trust.NotationArtifactType, "signature.notation"},
		{trust.BundleArtifactType, "signature.cosign"},
		{"application/vnd.goharbor.harbor.sbom.v1", "harbor.sbom"},
		{"application/vnd.cyclonedx+json", "sbom.cyclonedx"},
		{"application/spdx+json", "sbom.spdx"},
		{"application/vnd.example.other", "subject.accessory"},
	} {
		referrer(t, srv, "acc/app", subj, tc.artifactType, "application/octet-stream", []byte(tc.artifactType))
		want[tc.typ]++
	}
	got := map[string]int{}
	acc, err := api.Artifact.ListAccessories(context.Background(), gcartifact.NewListAccessoriesParams().WithProjectName("acc").WithRepositoryName("app").WithReference("v1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc.Payload {
		got[a.Type]++
		if a.SubjectArtifactDigest != subj.Digest.String() {
			t.Errorf("accessory %s: subject %s", a.Digest, a.SubjectArtifactDigest)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accessory types (-want +got):\n%s", diff)
	}
	arts, err := api.Artifact.ListArtifacts(context.Background(), gcartifact.NewListArtifactsParams().WithProjectName("acc").WithRepositoryName("app"))
	if err != nil || len(arts.Payload) != 1 {
		t.Errorf("artifacts: %d %v, want the image alone", len(arts.Payload), err)
	}
}

// TestTrustPolicyErrors: a trust policy that cannot be used is refused
// with 400 naming the field.
func TestTrustPolicyErrors(t *testing.T) {
	srv := harbortest.Start(t)
	newSignedProject(t, srv.Admin(), "pol", true, true)
	key := testPolicyKey()
	tp := func(store string) string {
		return `{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["` + store + `"],"trustedIdentities":["*"]}]}`
	}
	ca := testCA(t)
	for _, tc := range []struct{ name, body, want string }{
		{"not-json", `{`, "BAD_REQUEST"},
		{"key-not-pem", `{"cosign_keys":[{"name":"a","public_key":"nope"}]}`, "cosign_keys[0]"},
		{"key-name", `{"cosign_keys":[{"name":"../a","public_key":` + jsonString(key) + `}]}`, "cosign_keys[0].name"},
		{"key-twice", `{"cosign_keys":[{"name":"a","public_key":` + jsonString(key) + `},{"name":"a","public_key":` + jsonString(key) + `}]}`, "named twice"},
		{"key-is-certificate", `{"cosign_keys":[{"name":"a","public_key":` + jsonString(ca) + `}]}`, "cosign_keys[0]"},
		{"notation-no-policy", `{"notation":{"trust_store":{"ca:t":` + jsonString(ca) + `}}}`, "notation.trust_policy"},
		{"notation-store-missing", `{"notation":{"trust_policy":` + tp("ca:x") + `,"trust_store":{"ca:t":` + jsonString(ca) + `}}}`, `trust store \"ca:x\"`},
		{"notation-store-name", `{"notation":{"trust_policy":` + tp("ca:t") + `,"trust_store":{"t":` + jsonString(ca) + `}}}`, "TYPE:NAME"},
		{"notation-store-not-pem", `{"notation":{"trust_policy":` + tp("ca:t") + `,"trust_store":{"ca:t":"junk"}}}`, "no PEM certificate"},
		{"notation-store-key", `{"notation":{"trust_policy":` + tp("ca:t") + `,"trust_store":{"ca:t":` + jsonString(key) + `}}}`, "want CERTIFICATE"},
		{"notation-policy-bad", `{"notation":{"trust_policy":{"version":"9"},"trust_store":{"ca:t":` + jsonString(ca) + `}}}`, "notation.trust_policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, "PUT", "/api/v2.0/projects/pol/trust-policy", tc.body, admin, adminPW)
			if r.status != 400 || !strings.Contains(r.body, tc.want) {
				t.Errorf("%d %s; want 400 naming %s", r.status, r.body, tc.want)
			}
		})
	}
	// Nothing was stored.
	if r := do(t, srv, "GET", "/api/v2.0/projects/pol/trust-policy", "", admin, adminPW); r.status != 200 || r.body != `{"cosign_keys":[],"fixed":false}` {
		t.Errorf("GET: %d %s", r.status, r.body)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
