package server_test

// The registry's signature policy, tested with the real cosign and
// notation CLIs: they sign images pushed to a running lading serve, and
// the projects' policies decide what anonymous (pull-only) clients get.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	gcartifact "github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/testenv"
)

const (
	cosignTool   = "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 (.ci/setup.d/70-trust.sh)"
	notationTool = "github.com/notaryproject/notation@v1.3.2 (.ci/setup.d/70-trust.sh)"
)

// run runs an external program with env added; it fails the test when
// the program fails.
func run(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cosignSetup makes a cosign home with the administrator's credentials for
// srv and a key pair; it returns cosign's environment and the key files.
func cosignSetup(t *testing.T, srv *harbortest.Server, cosign string) (env []string, key, pub string) {
	t.Helper()
	home := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(admin + ":" + adminPW))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, srv.Host, auth)
	if err := os.WriteFile(filepath.Join(home, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env = []string{"HOME=" + home, "DOCKER_CONFIG=" + home, "COSIGN_PASSWORD=lading-test", "COSIGN_YES=true", "TUF_ROOT=" + filepath.Join(home, "tuf")}
	run(t, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(home, "cosign"))
	return env, filepath.Join(home, "cosign.key"), filepath.Join(home, "cosign.pub")
}

// cosignSign signs ref (host/repo@digest) with key, in the legacy tag
// layout or as a Sigstore bundle referrer.
func cosignSign(t *testing.T, env []string, cosign, key, ref string, bundle bool) {
	t.Helper()
	run(t, env, cosign, "sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false",
		"--allow-http-registry", fmt.Sprintf("--new-bundle-format=%t", bundle), ref)
}

// cosignVerify runs cosign verify on ref with pub.
func cosignVerify(t *testing.T, env []string, cosign, pub, ref string, bundle bool) {
	t.Helper()
	out := run(t, env, cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry",
		fmt.Sprintf("--new-bundle-format=%t", bundle), ref)
	if !strings.Contains(out, "The signatures were verified against the specified public key") {
		t.Fatalf("cosign verify %s:\n%s", ref, out)
	}
}

// pushRandom pushes a random image to repo:tag as the administrator and
// returns "repo@digest".
func pushRandom(t *testing.T, srv *harbortest.Server, repo, tag string) string {
	t.Helper()
	img := harbortest.Image(t)
	if err := srv.Push(context.Background(), img, repo, tag, admin, adminPW); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	return repo + "@" + h.String()
}

// pullStatus pulls ref as user ("": anonymous) and returns the HTTP status
// of the refusal (0 when the pull succeeded) and its message.
func pullStatus(t *testing.T, srv *harbortest.Server, ref, user, pass string) (int, string) {
	t.Helper()
	_, err := srv.Pull(context.Background(), ref, user, pass)
	if err == nil {
		return 0, ""
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return te.StatusCode, err.Error()
}

// wantPull fails unless pulling ref as user answers status (0: served)
// with a message holding every part.
func wantPull(t *testing.T, srv *harbortest.Server, ref, user, pass string, status int, parts ...string) {
	t.Helper()
	got, msg := pullStatus(t, srv, ref, user, pass)
	if got != status {
		t.Fatalf("pull %s as %q: status %d, want %d: %s", ref, user, got, status, msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("pull %s as %q: message %q lacks %q", ref, user, msg, p)
		}
	}
}

// newSignedProject creates a public project demanding signatures of the
// formats given (cosign: enable_content_trust_cosign; notation:
// enable_content_trust).
func newSignedProject(t *testing.T, api *v2.HarborAPI, name string, cosign, notation bool) {
	t.Helper()
	md := &models.ProjectMetadata{Public: "true", EnableContentTrustCosign: ptr(fmt.Sprint(cosign)), EnableContentTrust: ptr(fmt.Sprint(notation))}
	if _, err := api.Project.CreateProject(context.Background(), project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: name, Metadata: md})); err != nil {
		t.Fatal(err)
	}
}

// setPolicy PUTs a trust policy (403/404/400 fail the test).
func setPolicy(t *testing.T, srv *harbortest.Server, proj string, p contenttrust.Policy) {
	t.Helper()
	b, _ := json.Marshal(p)
	if r := do(t, srv, "PUT", "/api/v2.0/projects/"+proj+"/trust-policy", string(b), admin, adminPW); r.status != 200 {
		t.Fatalf("PUT trust-policy: %d %s", r.status, r.body)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSignaturePolicyCosign: a project demanding cosign signatures refuses
// (412) unsigned images to those who may only pull, serves them to those
// who may push (whatever their User-Agent), accepts cosign's signatures in
// both layouts, and, once it names keys, only those that verify against
// them; every change applies to the next pull.
func TestSignaturePolicyCosign(t *testing.T) {
	cosign := testenv.Tool(t, "cosign", cosignTool)
	srv := harbortest.Start(t)
	api := srv.Admin()
	newSignedProject(t, api, "signed", true, false)
	env, key, pub := cosignSetup(t, srv, cosign)

	legacy := pushRandom(t, srv, "signed/app", "legacy")
	bundle := pushRandom(t, srv, "signed/app", "bundle")

	// Unsigned: refused to the anonymous, in Harbor's words, with 412;
	// served to the administrator (who may push, and so sign).
	wantPull(t, srv, legacy, "", "", 412, "The image is not signed by cosign", "PROJECTPOLICYVIOLATION")
	wantPull(t, srv, "signed/app:legacy", "", "", 412, "not signed by cosign")
	wantPull(t, srv, legacy, admin, adminPW, 0)
	// A forged cosign User-Agent does not open the door.
	r := registryGet(t, srv, "/v2/signed/app/manifests/legacy", "sigstore-go cosign/v3.1.3 (linux; amd64)")
	if r.status != 412 || !strings.Contains(r.body, "PROJECTPOLICYVIOLATION") {
		t.Errorf("forged User-Agent: %d %s", r.status, r.body)
	}

	// cosign signs: with no keys configured, a signature need only exist.
	cosignSign(t, env, cosign, key, srv.Host+"/"+legacy, false)
	cosignSign(t, env, cosign, key, srv.Host+"/"+bundle, true)
	wantPull(t, srv, legacy, "", "", 0)
	wantPull(t, srv, bundle, "", "", 0)
	// Signatures stay readable (verifiers read them) and verify.
	cosignVerify(t, env, cosign, pub, srv.Host+"/"+legacy, false)
	cosignVerify(t, env, cosign, pub, srv.Host+"/"+bundle, true)

	// A policy naming another key: the signatures no longer count, at
	// once, and the message says why.
	other := contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "other", PublicKey: testPolicyKey()}}}
	setPolicy(t, srv, "signed", other)
	wantPull(t, srv, legacy, "", "", 412, "verifies against the project's trusted signers")
	wantPull(t, srv, bundle, "", "", 412, "verifies against the project's trusted signers")

	// The right key: served again.
	setPolicy(t, srv, "signed", contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "release", PublicKey: readFile(t, pub)}}})
	wantPull(t, srv, legacy, "", "", 0)
	wantPull(t, srv, bundle, "", "", 0)

	// GET .../signatures shows what counted.
	r = do(t, srv, "GET", "/api/v2.0/projects/signed/repositories/app/artifacts/legacy/signatures", "", admin, adminPW)
	var st contenttrust.Status
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || r.status != 200 || !st.PullAllowed || len(st.Signatures) == 0 || !st.Signatures[0].Verified {
		t.Errorf("signatures: %d %s", r.status, r.body)
	}

	// Turning the project's demand off serves unsigned images again.
	unsigned := pushRandom(t, srv, "signed/app", "unsigned")
	wantPull(t, srv, unsigned, "", "", 412)
	if _, err := api.Project.UpdateProject(context.Background(), project.NewUpdateProjectParams().WithProjectNameOrID("signed").
		WithProject(&models.ProjectReq{Metadata: &models.ProjectMetadata{Public: "true", EnableContentTrustCosign: ptr("false")}})); err != nil {
		t.Fatal(err)
	}
	wantPull(t, srv, unsigned, "", "", 0)

	// The audit log: the signatures' pushes, the refused pulls.
	waitAudit(t, api, "create", "signature", "")
	waitAudit(t, api, "pull", "artifact", "anonymous")
}

// registryGet GETs a registry path anonymously through the token flow,
// with the User-Agent given.
func registryGet(t *testing.T, srv *harbortest.Server, path, userAgent string) httpResult {
	t.Helper()
	repo := strings.SplitN(strings.TrimPrefix(path, "/v2/"), "/manifests/", 2)[0]
	tr := do(t, srv, "GET", "/service/token?service=harbor-registry&scope=repository:"+repo+":pull", "", "", "")
	var tok struct{ Token string }
	json.Unmarshal([]byte(tr.body), &tok)
	return do(t, srv, "GET", path, "", "", "", "Authorization: Bearer "+tok.Token, "User-Agent: "+userAgent,
		"Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
}

// waitAudit waits (the refusals are written within a second) for an
// audit log entry of the operation on the resource type, by user ("":
// anyone).
func waitAudit(t *testing.T, api *v2.HarborAPI, op, typ, user string) {
	t.Helper()
	q := "operation=" + op + ",resource_type=" + typ
	for range 50 {
		got, err := api.Auditlog.ListAuditLogExts(context.Background(), auditlog.NewListAuditLogExtsParams().WithQ(&q).WithPageSize(ptr(int64(100))))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got.Payload {
			if user == "" || l.Username == user {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("no audit log entry %s %s by %q", op, typ, user)
}

// testPolicyKey is a PEM public key nobody signs with.
func testPolicyKey() string {
	var p contenttrust.Policy
	json.Unmarshal([]byte(testPolicy()), &p)
	return p.CosignKeys[0].PublicKey
}

// TestSignaturePolicyNotation: a project demanding Notation signatures
// (enable_content_trust) serves an image the notation CLI signed, and,
// once it holds a trust policy and store, only when they trust the
// signer.
func TestSignaturePolicyNotation(t *testing.T) {
	notation := testenv.Tool(t, "notation", notationTool)
	srv := harbortest.Start(t)
	newSignedProject(t, srv.Admin(), "notary", false, true)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "DOCKER_CONFIG=" + home}
	run(t, env, notation, "cert", "generate-test", "--default", "lading.test")
	cfg := filepath.Join(home, "config", "notation")

	for _, envelope := range []string{"jws", "cose"} {
		t.Run(envelope, func(t *testing.T) {
			ref := pushRandom(t, srv, "notary/app", envelope)
			wantPull(t, srv, ref, "", "", 412, "The image is not signed by notation")
			run(t, env, notation, "sign", "--insecure-registry", "-u", admin, "-p", adminPW, "--signature-format", envelope, srv.Host+"/"+ref)
			wantPull(t, srv, ref, "", "", 0)
		})
	}
	ref := "notary/app:jws"

	policy := func(store string) json.RawMessage {
		return json.RawMessage(`{"version":"1.0","trustPolicies":[{"name":"notary","registryScopes":["*"],` +
			`"signatureVerification":{"level":"strict"},"trustStores":["ca:` + store + `"],"trustedIdentities":["*"]}]}`)
	}
	// A trust store of another CA: refused, with notation's reason.
	setPolicy(t, srv, "notary", contenttrust.Policy{Notation: &contenttrust.NotationTrust{
		TrustPolicy: policy("other"), TrustStore: map[string]string{"ca:other": otherCertificate(t)}}})
	wantPull(t, srv, ref, "", "", 412, "No Notation signature", "verifies against the project's trusted signers")
	// The signer's CA: served.
	setPolicy(t, srv, "notary", contenttrust.Policy{Notation: &contenttrust.NotationTrust{
		TrustPolicy: policy("lading.test"), TrustStore: map[string]string{"ca:lading.test": readFile(t, filepath.Join(cfg, "localkeys", "lading.test.crt"))}}})
	wantPull(t, srv, ref, "", "", 0)
	wantPull(t, srv, "notary/app:cose", "", "", 0)

	// Accessories: the signatures are listed with their subject, typed
	// as Harbor types them.
	acc, err := srv.Admin().Artifact.ListAccessories(context.Background(), gcartifact.NewListAccessoriesParams().
		WithProjectName("notary").WithRepositoryName("app").WithReference("jws"))
	if err != nil || len(acc.Payload) != 1 || acc.Payload[0].Type != "signature.notation" {
		t.Errorf("accessories: %+v %v", acc, err)
	}
}

// otherCertificate is a self-signed CA certificate nobody signs under.
func otherCertificate(t *testing.T) string {
	notation := testenv.Tool(t, "notation", notationTool)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config")}
	run(t, env, notation, "cert", "generate-test", "other.test")
	return readFile(t, filepath.Join(home, "config", "notation", "localkeys", "other.test.crt"))
}

// TestSignatureAccessories: cosign's signatures are accessories of their
// image (listed with it, not among the artifacts), survive garbage
// collection, travel with a copy (cosign verifies the copy) and go with
// their image when it is deleted.
func TestSignatureAccessories(t *testing.T) {
	cosign := testenv.Tool(t, "cosign", cosignTool)
	srv := harbortest.Start(t)
	api := srv.Admin()
	ctx := context.Background()
	newSignedProject(t, api, "src", false, false)
	newSignedProject(t, api, "dst", true, false)
	env, key, pub := cosignSetup(t, srv, cosign)
	legacy := pushRandom(t, srv, "src/app", "legacy")
	bundle := pushRandom(t, srv, "src/app", "bundle")
	cosignSign(t, env, cosign, key, srv.Host+"/"+legacy, false)
	cosignSign(t, env, cosign, key, srv.Host+"/"+bundle, true)

	// Listed with their subject, not as artifacts.
	arts, err := api.Artifact.ListArtifacts(ctx, gcartifact.NewListArtifactsParams().WithProjectName("src").WithRepositoryName("app").WithWithAccessory(ptr(true)))
	if err != nil {
		t.Fatal(err)
	}
	if len(arts.Payload) != 2 {
		t.Fatalf("artifacts: %d, want the 2 images only", len(arts.Payload))
	}
	for _, a := range arts.Payload {
		if len(a.Accessories) != 1 || a.Accessories[0].Type != "signature.cosign" || a.Accessories[0].SubjectArtifactDigest != a.Digest {
			t.Errorf("accessories of %s: %+v", a.Digest, a.Accessories)
		}
	}

	// Garbage collection keeps them: cosign verifies after it.
	if _, err := srv.Collector.Collect(ctx, registry.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	cosignVerify(t, env, cosign, pub, srv.Host+"/"+legacy, false)
	cosignVerify(t, env, cosign, pub, srv.Host+"/"+bundle, true)

	// A copy carries them: the copy verifies, and the destination
	// project's policy serves it.
	for _, ref := range []string{legacy, bundle} {
		if _, err := api.Artifact.CopyArtifact(ctx, gcartifact.NewCopyArtifactParams().WithProjectName("dst").WithRepositoryName("app").WithFrom(ref)); err != nil {
			t.Fatal(err)
		}
		copied := "dst/app@" + strings.SplitN(ref, "@", 2)[1]
		cosignVerify(t, env, cosign, pub, srv.Host+"/"+copied, ref == bundle)
		wantPull(t, srv, copied, "", "", 0)
	}

	// Deleting the image deletes its signatures.
	for _, ref := range []string{legacy, bundle} {
		dgst := strings.SplitN(ref, "@", 2)[1]
		acc, err := api.Artifact.ListAccessories(ctx, gcartifact.NewListAccessoriesParams().WithProjectName("src").WithRepositoryName("app").WithReference(dgst))
		if err != nil || len(acc.Payload) != 1 {
			t.Fatalf("accessories of %s: %+v %v", dgst, acc, err)
		}
		sig := acc.Payload[0].Digest
		if _, err := api.Artifact.DeleteArtifact(ctx, gcartifact.NewDeleteArtifactParams().WithProjectName("src").WithRepositoryName("app").WithReference(dgst)); err != nil {
			t.Fatal(err)
		}
		if status, msg := pullStatus(t, srv, "src/app@"+sig, admin, adminPW); status != 404 {
			t.Errorf("signature %s of the deleted %s: status %d %s", sig, dgst, status, msg)
		}
	}
	if r := do(t, srv, "GET", "/api/v2.0/projects/src/repositories/app/artifacts", "", admin, adminPW); r.status != 200 || r.body != "[]" {
		t.Errorf("artifacts left: %d %s", r.status, r.body)
	}
}

// TestSignaturePolicyReplicas: two servers on one PostgreSQL and one
// storage root. What changes through one (a signature, the trust policy)
// changes the other's next verdict, although it cached the previous one.
func TestSignaturePolicyReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	cosign := testenv.Tool(t, "cosign", cosignTool)
	dbURL := pgtest.Start(t).NewDatabase(t)
	root := t.TempDir()
	a := harbortest.Start(t, harbortest.WithDatabase(dbURL), harbortest.WithRoot(root))
	b := harbortest.Start(t, harbortest.WithDatabase(dbURL), harbortest.WithRoot(root))
	newSignedProject(t, a.Admin(), "rep", true, false)
	env, key, pub := cosignSetup(t, a, cosign)
	ref := pushRandom(t, a, "rep/app", "v1")

	wantPull(t, b, ref, "", "", 412, "not signed by cosign") // b caches the refusal
	cosignSign(t, env, cosign, key, a.Host+"/"+ref, true)
	wantPull(t, b, ref, "", "", 0)

	setPolicy(t, a, "rep", contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "other", PublicKey: testPolicyKey()}}})
	wantPull(t, b, ref, "", "", 412, "verifies against the project's trusted signers")
	setPolicy(t, a, "rep", contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "release", PublicKey: readFile(t, pub)}}})
	wantPull(t, b, ref, "", "", 0)
	setPolicy(t, a, "rep", contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "other", PublicKey: testPolicyKey()}}})
	wantPull(t, b, ref, "", "", 412)
	if r := do(t, a, "DELETE", "/api/v2.0/projects/rep/trust-policy", "", admin, adminPW); r.status != 200 {
		t.Fatalf("DELETE trust-policy: %d %s", r.status, r.body)
	}
	wantPull(t, b, ref, "", "", 0) // present is enough again

	// Deleting the signature through a: b refuses.
	dgst := strings.SplitN(ref, "@", 2)[1]
	acc, err := a.Admin().Artifact.ListAccessories(context.Background(), gcartifact.NewListAccessoriesParams().WithProjectName("rep").WithRepositoryName("app").WithReference(dgst))
	if err != nil || len(acc.Payload) != 1 {
		t.Fatalf("accessories: %+v %v", acc, err)
	}
	if _, err := a.Admin().Artifact.DeleteArtifact(context.Background(), gcartifact.NewDeleteArtifactParams().WithProjectName("rep").WithRepositoryName("app").WithReference(acc.Payload[0].Digest)); err != nil {
		t.Fatal(err)
	}
	wantPull(t, b, ref, "", "", 412, "not signed by cosign")
}
