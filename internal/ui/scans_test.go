package ui_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/testenv"
)

// apiGet reads a Harbor API path as the administrator into v.
func apiGet(t *testing.T, s *testServer, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v2.0"+path, nil)
	req.SetBasicAuth("admin", "Harbor12345")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// pullStatus pulls ref's manifest with go-containerregistry's client as
// the administrator; it returns the refusal's status, 0 for a pull.
func pullStatus(t *testing.T, s *testServer, ref string) (int, string) {
	t.Helper()
	r, err := name.ParseReference(s.Host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Get(r, remote.WithAuth(&authn.Basic{Username: "admin", Password: "Harbor12345"}))
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode, te.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, ""
}

// shortDigest is "sha256:" and twelve hex digits, as the UI shows digests.
func shortDigest(d string) string { return d[:len("sha256:")+12] }

// waitScan reloads the artifact page until its scan status is final.
func waitScan(t *testing.T, b *browser, page string) string {
	t.Helper()
	re := regexp.MustCompile(`<dd id="scan-status">([A-Za-z]+)</dd>`)
	for deadline := time.Now().Add(3 * time.Minute); ; {
		_, body := b.get(page)
		if m := re.FindStringSubmatch(body); m != nil && m[1] != "Pending" && m[1] != "Running" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan did not finish: %.3000s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestScanAllowlistAccessories: the Scan button scans with registry-side
// scanning, whose result the artifact and repository pages show and
// Harbor's API reports; vulnerability prevention refuses a real client's
// pull until the CVE allowlist set in the policies tab lists every
// finding; a cosign signature made with cosign is listed among the
// artifact's accessories and marks it signed.
func TestScanAllowlistAccessories(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	cosign := testenv.Tool(t, "cosign", "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 (.ci/setup.d/70-trust.sh)")
	img := corpustest.Image(t, "alpine-3.20-app.oci.tar")
	s := start(t, nil, withScanning(alpineDBFile(t)))
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: "guest", Email: "g@example.com", Realname: "G", Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: "guest", Role: access.Guest}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "admin:Harbor12345",
		"oci-archive:"+img+":latest", "docker://"+s.Host+"/acme/app:1.0").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	var art struct {
		Digest string `json:"digest"`
	}
	apiGet(t, s, "/projects/acme/repositories/app/artifacts/1.0", &art)
	page := "/projects/acme/r/app/-/" + art.Digest

	b := newBrowser(t, s.URL)
	b.login("admin", "Harbor12345")
	st, body := b.get(page)
	if st != http.StatusOK || !strings.Contains(body, `<p class="empty" id="scan-status">Not scanned.</p>`) || !strings.Contains(body, `id="scan-btn"`) {
		t.Fatalf("artifact page before the scan: %d %.3000s", st, body)
	}
	// A guest may read scans but not start one.
	g := newBrowser(t, s.URL)
	g.login("guest", userPassword)
	if _, gb := g.get(page); strings.Contains(gb, `id="scan-btn"`) {
		t.Errorf("a guest is offered the Scan button")
	}
	if st, _ := g.post(page, url.Values{"action": {"scan"}}); st != http.StatusForbidden {
		t.Errorf("guest's scan: %d, want 403", st)
	}

	if _, rb := g.get("/projects/acme/r/app"); strings.Contains(rb, `aria-label="Scan sha256:`) {
		t.Errorf("a guest is offered the Scan button in the artifact list")
	}
	if _, rb := b.get("/projects/acme/r/app"); !strings.Contains(rb, `aria-label="Scan `+shortDigest(art.Digest)+`"`) {
		t.Errorf("the administrator is not offered the Scan button in the artifact list")
	}

	// With the scan queue paused, the scan waits: Stop is offered and
	// stops it.
	if err := s.Core.Jobs.SetPaused(ctx, scanning.KindScan, true); err != nil {
		t.Fatal(err)
	}
	if st, loc := b.post(page, url.Values{"action": {"scan"}}); st != http.StatusSeeOther {
		t.Fatalf("scan: %d %s", st, loc)
	}
	_, body = b.get(page)
	if !strings.Contains(body, `<dd id="scan-status">Pending</dd>`) || !strings.Contains(body, `id="stop-scan-btn"`) {
		t.Fatalf("artifact page with the scan queued: %.3000s", body)
	}
	if _, rb := b.get("/projects/acme/r/app"); !strings.Contains(rb, `<span class="badge scan-status">pending</span>`) {
		t.Errorf("the artifact list does not show the pending scan")
	}
	if st, loc := b.post(page, url.Values{"action": {"stop-scan"}}); st != http.StatusSeeOther {
		t.Fatalf("stop: %d %s", st, loc)
	}
	if body := waitScan(t, b, page); !strings.Contains(body, `<dd id="scan-status">Stopped</dd>`) {
		t.Errorf("after Stop: %.3000s", body)
	}
	if err := s.Core.Jobs.SetPaused(ctx, scanning.KindScan, false); err != nil {
		t.Fatal(err)
	}

	if st, loc := b.post(page, url.Values{"action": {"scan"}}); st != http.StatusSeeOther {
		t.Fatalf("scan: %d %s", st, loc)
	}
	body = waitScan(t, b, page)
	if !strings.Contains(body, `<dd id="scan-status">Success</dd>`) || !strings.Contains(body, `class="sevbar"`) {
		t.Fatalf("artifact page after the scan: %.4000s", body)
	}
	checkNoInline(t, "artifact with scan", body)
	var vulns map[string]struct {
		Vulnerabilities []struct {
			ID string `json:"id"`
		} `json:"vulnerabilities"`
	}
	apiGet(t, s, "/projects/acme/repositories/app/artifacts/"+art.Digest+"/additions/vulnerabilities", &vulns)
	var ids []string
	for _, r := range vulns {
		for _, v := range r.Vulnerabilities {
			ids = append(ids, v.ID)
		}
	}
	if len(ids) == 0 {
		t.Fatal("Harbor's API reports no vulnerabilities for alpine-3.20-app")
	}
	if _, rb := b.get("/projects/acme/r/app"); !strings.Contains(rb, `class="sevbar"`) {
		t.Errorf("repository page shows no severity bar after the scan")
	}

	// Prevention on through the policies tab: a real client's pull is
	// refused with 412.
	b.get("/projects/acme/policies")
	policies := url.Values{"prevent_vul": {"on"}, "severity": {"low"}, "allowlist": {""}, "allowlist_expires": {""}}
	if st, _ := b.post("/projects/acme/policies", policies); st != http.StatusSeeOther {
		t.Fatalf("policies: %d", st)
	}
	if st, msg := pullStatus(t, s, "acme/app:1.0"); st != http.StatusPreconditionFailed {
		t.Fatalf("pull with prevention on: %d %s, want 412", st, msg)
	}
	// Every finding allowlisted: the pull passes.
	policies.Set("allowlist", strings.Join(ids, "\n"))
	policies.Set("allowlist_expires", "2099-12-31")
	if st, _ := b.post("/projects/acme/policies", policies); st != http.StatusSeeOther {
		t.Fatalf("policies with the allowlist: %d", st)
	}
	var proj struct {
		CVEAllowlist struct {
			ExpiresAt *int64 `json:"expires_at"`
			Items     []struct {
				CVEID string `json:"cve_id"`
			} `json:"items"`
		} `json:"cve_allowlist"`
	}
	apiGet(t, s, "/projects/acme", &proj)
	if len(proj.CVEAllowlist.Items) == 0 || proj.CVEAllowlist.ExpiresAt == nil || time.Unix(*proj.CVEAllowlist.ExpiresAt, 0).UTC().Year() != 2099 {
		t.Errorf("allowlist through the API: %+v", proj.CVEAllowlist)
	}
	if st, msg := pullStatus(t, s, "acme/app:1.0"); st != 0 {
		t.Errorf("pull with every finding allowlisted: %d %s", st, msg)
	}
	if _, pb := b.get("/projects/acme/policies"); !strings.Contains(pb, ids[0]) || !strings.Contains(pb, `value="2099-12-31"`) {
		t.Errorf("policies tab does not show the allowlist")
	}
	// The system's allowlist instead (empty): refused again.
	policies.Set("reuse_sys_cve_allowlist", "on")
	if st, _ := b.post("/projects/acme/policies", policies); st != http.StatusSeeOther {
		t.Fatalf("policies with the system allowlist: %d", st)
	}
	if st, msg := pullStatus(t, s, "acme/app:1.0"); st != http.StatusPreconditionFailed {
		t.Errorf("pull under the (empty) system allowlist: %d %s, want 412", st, msg)
	}
	if _, pb := b.get("/projects/acme/policies"); !strings.Contains(pb, `name="reuse_sys_cve_allowlist" checked`) {
		t.Errorf("policies tab does not show the system allowlist in use")
	}
	policies.Del("reuse_sys_cve_allowlist")
	if st, _ := b.post("/projects/acme/policies", policies); st != http.StatusSeeOther {
		t.Fatalf("policies with the project's allowlist again: %d", st)
	}

	// A cosign signature: an accessory, and the artifact is signed.
	home := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("admin:Harbor12345"))
	if err := os.WriteFile(filepath.Join(home, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.Host, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "COSIGN_PASSWORD=lading-test", "COSIGN_YES=true", "TUF_ROOT="+filepath.Join(home, "tuf"))
	for _, args := range [][]string{{"generate-key-pair", "--output-key-prefix", filepath.Join(home, "cosign")},
		{"sign", "--key", filepath.Join(home, "cosign.key"), "--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry",
			"--new-bundle-format=false", s.Host + "/acme/app@" + art.Digest}} {
		cmd := exec.Command(cosign, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", args[0], err, out)
		}
	}
	_, body = b.get(page)
	if !strings.Contains(body, `id="accessories"`) || !strings.Contains(body, "cosign signature") || !strings.Contains(body, `<span class="badge signed">signed</span>`) {
		t.Errorf("artifact page after signing: %.5000s", body)
	}
	if _, rb := b.get("/projects/acme/r/app"); !strings.Contains(rb, `<span class="badge signed">signed</span>`) {
		t.Errorf("repository page shows no signed badge")
	}
}
