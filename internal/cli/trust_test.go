package cli

import (
	"context"
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
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/trust"
)

// interopRegistry is a registry the interop tests run against.
type interopRegistry struct {
	name string
	host string
}

// interopRegistries starts the registries signatures are exchanged
// through: CNCF Distribution (Debian's docker-registry, which has no
// referrers API: referrers go through the tag fallback) and lading's own
// (the referrers API), both plain HTTP on loopback.
func interopRegistries(t *testing.T) []interopRegistry {
	t.Helper()
	testenv.Tool(t, "docker-registry", "docker-registry")
	return []interopRegistry{
		{"distribution", registrytest.Start(t, registrytest.None).Host},
		{"lading", startLadingRegistry(t)},
	}
}

// startLadingRegistry runs `lading serve` in-process, open to anyone, on
// a free loopback port, and returns its host:port. It asks for --no-auth
// and, on a lading whose serve has no such flag (open by default), runs
// without it.
func startLadingRegistry(t testing.TB) string {
	t.Helper()
	if host, ok := tryServe(t, "--no-auth"); ok {
		return host
	}
	host, _ := tryServe(t)
	return host
}

// tryServe starts lading serve with extra flags; false when they are not
// flags lading serve knows.
func tryServe(t testing.TB, extra ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	args := append([]string{"--root", t.TempDir(), "serve", "--address", "127.0.0.1:0", "--no-auth"}, extra...)
	go func() { done <- Run(ctx, args, nil, io.Discard, stderr) }()
	stop := func() { cancel(); <-done }
	for deadline := time.Now().Add(20 * time.Second); ; {
		if m := servingOn.FindStringSubmatch(stderr.String()); m != nil {
			t.Cleanup(stop)
			return strings.TrimPrefix(m[1], "http://"), true
		}
		select {
		case code := <-done:
			cancel()
			if code == exitUsage && len(extra) > 0 {
				return "", false
			}
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("serve did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pushRandom pushes a small random image to host/repo:tag and returns the
// tag and digest references.
func pushRandom(t testing.TB, host, repo string) (tagged, pinned string) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tagged = host + "/" + repo + ":1"
	ref, err := name.ParseReference(tagged, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	return tagged, host + "/" + repo + "@" + h.String()
}

// tool runs an external program with env added and returns its combined
// output.
func tool(t testing.TB, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustTool(t testing.TB, env []string, bin string, args ...string) string {
	t.Helper()
	out, err := tool(t, env, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

// verifyJSON runs lading verify --output json and returns the result and
// the exit code.
func (l *lading) verifyJSON(args ...string) (*trust.Result, string, int) {
	l.t.Helper()
	out, errs, code := l.run(append([]string{"verify", "--insecure", "--output", "json"}, args...)...)
	var res trust.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		l.t.Fatalf("lading verify %s: exit %d, output not JSON: %v\n%s\n%s", strings.Join(args, " "), code, err, out, errs)
	}
	return &res, errs, code
}

// wantVerified fails unless res holds a signature of format f carrying
// the annotations ann.
func wantVerified(t *testing.T, res *trust.Result, errs string, code int, f trust.Format, ann map[string]string) {
	t.Helper()
	if code != 0 {
		t.Fatalf("lading verify: exit %d\n%s", code, errs)
	}
	for _, s := range res.Verified {
		if s.Format != f {
			continue
		}
		ok := true
		for k, v := range ann {
			ok = ok && s.Annotations[k] == v
		}
		if ok {
			return
		}
	}
	t.Fatalf("no verified %s signature with %v: %+v", f, ann, res.Verified)
}

// cosignEnv is the environment cosign runs in: a home of its own (its
// TUF cache), the key password, no Docker credentials.
func cosignEnv(t testing.TB) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "DOCKER_CONFIG=" + home, "COSIGN_PASSWORD=lading-test", "COSIGN_YES=true", "TUF_ROOT=" + filepath.Join(home, "tuf")}
}

func TestCosignInterop(t *testing.T) {
	cosign := testenv.Tool(t, "cosign", "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 (.ci/setup.d/70-trust.sh)")
	regs := interopRegistries(t)
	env := cosignEnv(t)
	keys := t.TempDir()
	mustTool(t, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "cosign"))
	key, pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	t.Setenv("COSIGN_PASSWORD", "lading-test")
	other := filepath.Join(keys, "other.pub")
	writeOtherPublicKey(t, other)

	for _, reg := range regs {
		for _, bundle := range []bool{false, true} {
			format, flag := trust.Cosign, "--new-bundle-format=false"
			if bundle {
				format, flag = trust.CosignBundle, "--new-bundle-format=true"
			}
			t.Run(reg.name+"/"+string(format), func(t *testing.T) {
				l := newLading(t)
				// cosign signs, lading verifies.
				tagged, pinned := pushRandom(t, reg.host, "cosign-signs")
				mustTool(t, env, cosign, "sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false",
					"--allow-http-registry", flag, "-a", "env=prod", pinned)
				res, errs, code := l.verifyJSON("--key", pub, "-a", "env=prod", tagged)
				wantVerified(t, res, errs, code, format, map[string]string{"env": "prod"})
				if _, errs, code := l.verifyJSON("--key", other, tagged); code == 0 || !strings.Contains(errs, "no trusted signature") {
					t.Errorf("verify with another key: exit %d\n%s", code, errs)
				}
				if _, errs, code := l.verifyJSON("--key", pub, "-a", "env=dev", tagged); code == 0 || !strings.Contains(errs, string(trust.ReasonAnnotations)) {
					t.Errorf("verify with other annotations: exit %d\n%s", code, errs)
				}

				// lading signs, cosign verifies.
				tagged, pinned = pushRandom(t, reg.host, "lading-signs")
				l.ok("sign", "--insecure", "--format", string(format), "--key", key, "-a", "env=prod", tagged)
				out := mustTool(t, env, cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", flag, "-a", "env=prod", pinned)
				if !strings.Contains(out, "The signatures were verified against the specified public key") {
					t.Errorf("cosign verify:\n%s", out)
				}
				if out, err := tool(t, env, cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", flag, "-a", "env=dev", pinned); err == nil {
					t.Errorf("cosign verify accepted another annotation:\n%s", out)
				}
			})
		}
	}
}

// writeOtherPublicKey writes a public key nobody signed with.
func writeOtherPublicKey(t *testing.T, path string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// notationSetup makes a Notation configuration directory with a test key
// and certificate (notation cert generate-test) trusted by a trust policy
// for every scope, and returns the environment notation runs in, the
// policy file and the trust store.
func notationSetup(t *testing.T, notation string) (env []string, cfg string) {
	home := t.TempDir()
	env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "DOCKER_CONFIG=" + home}
	mustTool(t, env, notation, "cert", "generate-test", "--default", "lading.test")
	cfg = filepath.Join(home, "config", "notation")
	policy := `{"version":"1.0","trustPolicies":[{"name":"lading-interop","registryScopes":["*"],` +
		`"signatureVerification":{"level":"strict"},"trustStores":["ca:lading.test"],"trustedIdentities":["*"]}]}`
	for _, f := range []string{"trustpolicy.json", "trustpolicy.oci.json"} {
		if err := os.WriteFile(filepath.Join(cfg, f), []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return env, cfg
}

func TestNotationInterop(t *testing.T) {
	notation := testenv.Tool(t, "notation", "github.com/notaryproject/notation@v1.3.2 (.ci/setup.d/70-trust.sh)")
	regs := interopRegistries(t)
	env, cfg := notationSetup(t, notation)
	trustFlags := []string{"--trust-policy", filepath.Join(cfg, "trustpolicy.json"), "--trust-store", filepath.Join(cfg, "truststore")}
	key, cert := filepath.Join(cfg, "localkeys", "lading.test.key"), filepath.Join(cfg, "localkeys", "lading.test.crt")

	for _, reg := range regs {
		for _, envelope := range []string{"jws", "cose"} {
			t.Run(reg.name+"/"+envelope, func(t *testing.T) {
				l := newLading(t)
				// notation signs, lading verifies.
				tagged, pinned := pushRandom(t, reg.host, "notation-signs")
				mustTool(t, env, notation, "sign", "--insecure-registry", "--signature-format", envelope, "-m", "env=prod", pinned)
				res, errs, code := l.verifyJSON(append(trustFlags, "-a", "env=prod", tagged)...)
				wantVerified(t, res, errs, code, trust.Notation, map[string]string{"env": "prod"})
				if s := res.Verified[0].Signer; !strings.Contains(s.Subject, "CN=lading.test") || s.TrustPolicy != "lading-interop" {
					t.Errorf("signer %+v", s)
				}
				if _, errs, code := l.verifyJSON(append(trustFlags, "-a", "env=dev", tagged)...); code == 0 || !strings.Contains(errs, string(trust.ReasonAnnotations)) {
					t.Errorf("verify with other annotations: exit %d\n%s", code, errs)
				}

				// lading signs, notation verifies.
				tagged, pinned = pushRandom(t, reg.host, "lading-signs")
				l.ok("sign", "--insecure", "--format", "notation", "--envelope", envelope, "--key", key, "--cert", cert, "-a", "env=prod", tagged)
				out := mustTool(t, env, notation, "verify", "--insecure-registry", "-m", "env=prod", pinned)
				if !strings.Contains(out, "Successfully verified") {
					t.Errorf("notation verify:\n%s", out)
				}
				if out, err := tool(t, env, notation, "verify", "--insecure-registry", "-m", "env=dev", pinned); err == nil {
					t.Errorf("notation verify accepted other metadata:\n%s", out)
				}
			})
		}
	}
}

// TestNotationLayoutInterop exchanges signatures through an OCI layout:
// notation sign --oci-layout, lading verify oci:, and back.
func TestNotationLayoutInterop(t *testing.T) {
	notation := testenv.Tool(t, "notation", "github.com/notaryproject/notation@v1.3.2 (.ci/setup.d/70-trust.sh)")
	env, cfg := notationSetup(t, notation)
	env = append(env, "NOTATION_EXPERIMENTAL=1") // --oci-layout
	trustFlags := []string{"--trust-policy", filepath.Join(cfg, "trustpolicy.json"), "--trust-store", filepath.Join(cfg, "truststore")}
	key, cert := filepath.Join(cfg, "localkeys", "lading.test.key"), filepath.Join(cfg, "localkeys", "lading.test.crt")
	l := newLading(t)
	reg := startLadingRegistry(t)
	tagged, _ := pushRandom(t, reg, "layout")
	dir := filepath.Join(t.TempDir(), "layout")
	l.ok("copy", "--insecure", "docker://"+tagged, "oci:"+dir+":app")

	mustTool(t, env, notation, "sign", "--oci-layout", "-m", "who=notation", dir+":app")
	res, errs, code := l.verifyJSON(append(trustFlags, "-a", "who=notation", "oci:"+dir+":app")...)
	wantVerified(t, res, errs, code, trust.Notation, map[string]string{"who": "notation"})

	l.ok("sign", "--format", "notation", "--key", key, "--cert", cert, "-a", "who=lading", "oci:"+dir+":app")
	out := mustTool(t, env, notation, "verify", "--oci-layout", "--scope", "local/layout", "-m", "who=lading", dir+":app")
	if !strings.Contains(out, "Successfully verified") {
		t.Errorf("notation verify:\n%s", out)
	}
}

// TestSignLocal signs images in an OCI layout and in the local store in
// every format and verifies them.
func TestSignLocal(t *testing.T) {
	l := newLading(t)
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pder, _ := x509.MarshalPKIXPublicKey(k.Public())
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)

	layout := filepath.Join(dir, "layout")
	writeLayoutImage(t, layout, "app")
	l.ok("copy", "oci:"+layout+":app", "local:example.test/app:1")

	for _, target := range []string{"oci:" + layout + ":app", "local:example.test/app:1"} {
		for _, f := range []trust.Format{trust.Cosign, trust.CosignBundle} {
			t.Run(target+"/"+string(f), func(t *testing.T) {
				l.ok("sign", "--format", string(f), "--key", keyFile, "-a", "f="+string(f), target)
				res, errs, code := l.verifyJSON("--key", pubFile, "-a", "f="+string(f), target)
				wantVerified(t, res, errs, code, f, map[string]string{"f": string(f)})
			})
		}
	}
	// An unsigned image: exit 1, the reason printed.
	writeLayoutImage(t, layout, "unsigned")
	out, errs, code := l.run("verify", "--key", pubFile, "oci:"+layout+":unsigned")
	if code != exitError || out != "" || !strings.Contains(errs, "no signatures found") {
		t.Errorf("unsigned: exit %d\n%s%s", code, out, errs)
	}
}

// writeLayoutImage adds a random image named ref to the OCI layout dir.
func writeLayoutImage(t *testing.T, dir, ref string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
}

// TestCosignKeylessInterop: certificate-based (keyless) bundles, verified
// offline against a trusted root. A test CA issues a Fulcio-style
// certificate (email SAN, OIDC issuer extension) for cosign's key; cosign
// signs with it and lading verifies with --trusted-root, and back.
func TestCosignKeylessInterop(t *testing.T) {
	cosign := testenv.Tool(t, "cosign", "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 (.ci/setup.d/70-trust.sh)")
	reg := startLadingRegistry(t)
	env := cosignEnv(t)
	dir := t.TempDir()
	mustTool(t, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	t.Setenv("COSIGN_PASSWORD", "lading-test")
	pubPEM, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	const identity, issuer = "dev@example.com", "https://issuer.example"
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := issueCert(t, caKey.Public(), caKey, nil, "lading test CA", "", "")
	leaf := issueCert(t, pub, caKey, ca, "", identity, issuer)
	leafFile, caFile, rootFile := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "trusted_root.json")
	os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644)
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: ca, ValidityPeriodStart: ca.NotBefore, URI: "https://fulcio.test"}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	trJSON, _ := tr.MarshalJSON()
	os.WriteFile(rootFile, trJSON, 0o644)
	keyless := []string{"--trusted-root", rootFile, "--certificate-identity", identity, "--certificate-oidc-issuer", issuer}
	l := newLading(t)

	// cosign signs with the certificate, lading verifies.
	tagged, pinned := pushRandom(t, reg, "cosign-keyless")
	mustTool(t, env, cosign, "sign", "--key", filepath.Join(dir, "cosign.key"), "--certificate", leafFile, "--certificate-chain", caFile,
		"--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry", "--new-bundle-format=true", pinned)
	res, errs, code := l.verifyJSON(append(keyless, tagged)...)
	wantVerified(t, res, errs, code, trust.CosignBundle, nil)
	if s := res.Verified[0].Signer; s.Subject != identity || s.Issuer != issuer {
		t.Errorf("signer %+v", s)
	}
	other := []string{"--trusted-root", rootFile, "--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", issuer, tagged}
	if _, errs, code := l.verifyJSON(other...); code == 0 || !strings.Contains(errs, string(trust.ReasonUntrustedIdentity)) {
		t.Errorf("another identity: exit %d\n%s", code, errs)
	}

	// lading signs with the certificate, cosign verifies.
	tagged, pinned = pushRandom(t, reg, "lading-keyless")
	l.ok("sign", "--insecure", "--key", filepath.Join(dir, "cosign.key"), "--cert", leafFile, tagged)
	out := mustTool(t, env, cosign, "verify", "--trusted-root", rootFile, "--certificate-identity", identity, "--certificate-oidc-issuer", issuer,
		"--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-http-registry", "--new-bundle-format=true", pinned)
	if !strings.Contains(out, "certificate") {
		t.Errorf("cosign verify:\n%s", out)
	}
}

// issueCert issues a certificate for pub signed by key (self-signed
// without parent): a CA when cn is set, else a code-signing leaf with an
// email SAN and Fulcio's OIDC issuer extensions.
func issueCert(t *testing.T, pub any, key *ecdsa.PrivateKey, parent *x509.Certificate, cn, email, issuer string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"lading tests"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), BasicConstraintsValid: true,
	}
	if parent == nil {
		tmpl.IsCA, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
		parent = tmpl
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
		tmpl.EmailAddresses = []string{email}
		v, _ := asn1.Marshal(issuer)
		tmpl.ExtraExtensions = []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: v},
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestVerifyUsage: flags that cannot work are usage errors (exit 2).
func TestVerifyUsage(t *testing.T) {
	l := newLading(t)
	for _, args := range [][]string{
		{"verify", "oci:/nonexistent"},
		{"verify", "--certificate-identity", "a@b", "--certificate-oidc-issuer", "x", "oci:/nonexistent"},
		{"verify", "--trust-policy", "p.json", "oci:/nonexistent"},
		{"verify", "--key", "k.pub", "--output", "yaml", "oci:/nonexistent"},
		{"sign", "oci:/nonexistent"},
		{"sign", "--key", "k", "--format", "gpg", "oci:/nonexistent"},
	} {
		if _, errs, code := l.run(args...); code != exitUsage {
			t.Errorf("lading %s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, errs)
		}
	}
}
