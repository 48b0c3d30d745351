package scanning_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/system_cve_allowlist"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/dockertest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/token"
)

// pullers are real registry clients reading a manifest: each returns its
// combined output and whether it succeeded.
type puller struct {
	name string
	pull func(t *testing.T, srv *harbortest.Server, ref string) (string, bool)
}

func pullers(t *testing.T) []puller {
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	crane := testenv.Tool(t, "crane", "github.com/google/go-containerregistry/cmd/crane")
	cfg := t.TempDir() // crane's docker config, not the machine's
	podman := testenv.Tool(t, "podman", "podman")
	// podman's own storage, not the machine's; podman refuses a runroot
	// over 50 characters, which a subtest's TempDir can be.
	store, err := os.MkdirTemp("", "lading-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(store) })
	// docker, through a real Docker Engine, which reaches the registry
	// over plain HTTP: dockerd treats registries on 127.0.0.0/8 as
	// insecure by default.
	docker := testenv.Tool(t, "docker", "Debian's docker.io")
	dockerEnv := append(os.Environ(), "DOCKER_HOST="+dockertest.Start(t), "DOCKER_CONFIG="+t.TempDir())
	return []puller{
		{"docker", func(t *testing.T, srv *harbortest.Server, ref string) (string, bool) {
			login := exec.Command(docker, "login", "-u", "admin", "--password-stdin", srv.Host)
			login.Env, login.Stdin = dockerEnv, strings.NewReader(harbortest.AdminPassword)
			if out, err := login.CombinedOutput(); err != nil {
				t.Fatalf("docker login: %v: %s", err, out)
			}
			c := exec.Command(docker, "pull", srv.Host+"/"+ref)
			c.Env = dockerEnv
			out, err := c.CombinedOutput()
			return string(out), err == nil
		}},
		{"podman", func(t *testing.T, srv *harbortest.Server, ref string) (string, bool) {
			out, err := exec.Command(podman, "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs",
				"pull", "--tls-verify=false", "--creds", "admin:"+harbortest.AdminPassword, srv.Host+"/"+ref).CombinedOutput()
			return string(out), err == nil
		}},
		{"skopeo", func(t *testing.T, srv *harbortest.Server, ref string) (string, bool) {
			out, err := exec.Command(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", "admin:"+harbortest.AdminPassword, "docker://"+srv.Host+"/"+ref).CombinedOutput()
			// skopeo logs the error quoted (logrus): unquote it.
			return strings.ReplaceAll(string(out), `\"`, `"`), err == nil
		}},
		{"crane", func(t *testing.T, srv *harbortest.Server, ref string) (string, bool) {
			env := append(os.Environ(), "DOCKER_CONFIG="+cfg)
			login := exec.Command(crane, "auth", "login", srv.Host, "-u", "admin", "-p", harbortest.AdminPassword, "--insecure")
			login.Env = env
			if out, err := login.CombinedOutput(); err != nil {
				t.Fatalf("crane auth login: %v: %s", err, out)
			}
			c := exec.Command(crane, "manifest", "--insecure", srv.Host+"/"+ref)
			c.Env = env
			out, err := c.CombinedOutput()
			return string(out), err == nil
		}},
	}
}

// headStatus is the status of a HEAD of a manifest.
func headStatus(t *testing.T, srv *harbortest.Server, repo, ref, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	} else {
		req.SetBasicAuth("admin", harbortest.AdminPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func setAllowlist(t *testing.T, srv *harbortest.Server, proj string, ids []string, expires *int64, md map[string]string) {
	t.Helper()
	l := &models.CVEAllowlist{ExpiresAt: expires}
	for _, id := range ids {
		l.Items = append(l.Items, &models.CVEAllowlistItem{CVEID: id})
	}
	req := &models.ProjectReq{CVEAllowlist: l}
	if md != nil {
		var meta models.ProjectMetadata
		if v, ok := md["reuse_sys_cve_allowlist"]; ok {
			meta.ReuseSysCVEAllowlist = &v
		}
		req.Metadata = &meta
	}
	if _, err := srv.Admin().Project.UpdateProject(context.Background(), project.NewUpdateProjectParams().WithProjectNameOrID(proj).WithProject(req)); err != nil {
		t.Fatal(err)
	}
}

// TestPreventVulnerable is the vulnerability prevention policy as docker's
// peers see it: skopeo and crane pulling (GET) an image with
// vulnerabilities at or above the project's severity get Harbor's 412
// message, and so does HEAD; an image without any passes; an unscanned
// image is blocked; a project allowlist of the blocking ids lets it
// through until it expires; a project that reuses the system allowlist
// follows that one; a scanner's token (scanner-pull) is exempt.
func TestPreventVulnerable(t *testing.T) {
	ps := pullers(t)
	srv := start(t, corpusDB(t))
	newProject(t, srv, "guarded", map[string]string{"auto_scan": "true", "prevent_vul": "true", "severity": "medium"})
	dgst := push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "guarded/app:1")
	clean := push(t, srv, harbortest.Image(t), "guarded/clean:1")
	s := waitScan(t, srv, "guarded", "app", "1")
	if s.ScanStatus != "Success" {
		t.Fatalf("scan: %+v", s)
	}
	if c := waitScan(t, srv, "guarded", "clean", "1"); c.ScanStatus != "Success" || c.Summary.Total != 0 {
		t.Fatalf("clean image: %+v", c)
	}
	var blocking []string
	for _, v := range vulnerabilities(t, srv, "guarded", "app", dgst).Vulnerabilities {
		switch v.Severity {
		case "Medium", "High", "Critical":
			if !containsString(blocking, v.ID) {
				blocking = append(blocking, v.ID)
			}
		}
	}
	if len(blocking) == 0 {
		t.Fatal("no vulnerability of medium severity or more: the test image says nothing")
	}
	blocked := func(t *testing.T, ref, want string) {
		t.Helper()
		for _, p := range ps {
			out, ok := p.pull(t, srv, ref)
			if ok || !strings.Contains(out, want) {
				t.Errorf("%s pull %s: succeeded %v, output %q; want a refusal saying %q", p.name, ref, ok, out, want)
			}
		}
		repo, tag, _ := strings.Cut(ref, ":")
		if code := headStatus(t, srv, repo, tag, ""); code != http.StatusPreconditionFailed {
			t.Errorf("HEAD %s: %d, want 412", ref, code)
		}
	}
	passes := func(t *testing.T, ref string) {
		t.Helper()
		for _, p := range ps {
			if out, ok := p.pull(t, srv, ref); !ok {
				t.Errorf("%s pull %s: %s", p.name, ref, out)
			}
		}
	}
	policy := `cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of "Medium" or higher from running.'`
	blocked(t, "guarded/app:1", policy)
	blocked(t, "guarded/app:1", blocking[0])
	passes(t, "guarded/clean:1")
	_ = clean

	// A project allowlist of the blocking ids lets it through.
	setAllowlist(t, srv, "guarded", blocking, nil, nil)
	passes(t, "guarded/app:1")
	// An expired one no longer applies.
	past := time.Now().Add(-time.Minute).Unix()
	setAllowlist(t, srv, "guarded", blocking, &past, nil)
	blocked(t, "guarded/app:1", policy)
	future := time.Now().Add(time.Hour).Unix()
	setAllowlist(t, srv, "guarded", blocking, &future, nil)
	passes(t, "guarded/app:1")

	// Reusing the system's allowlist: the project's own does not count.
	setAllowlist(t, srv, "guarded", blocking, nil, map[string]string{"reuse_sys_cve_allowlist": "true"})
	blocked(t, "guarded/app:1", policy)
	sys := &models.CVEAllowlist{}
	for _, id := range blocking {
		sys.Items = append(sys.Items, &models.CVEAllowlistItem{CVEID: id})
	}
	if _, err := srv.Admin().SystemCVEAllowlist.PutSystemCVEAllowlist(context.Background(), system_cve_allowlist.NewPutSystemCVEAllowlistParams().WithAllowlist(sys)); err != nil {
		t.Fatal(err)
	}
	passes(t, "guarded/app:1")
	got, err := srv.Admin().SystemCVEAllowlist.GetSystemCVEAllowlist(context.Background(), system_cve_allowlist.NewGetSystemCVEAllowlistParams())
	if err != nil || len(got.Payload.Items) != len(blocking) {
		t.Errorf("system allowlist: %+v %v", got, err)
	}
	// Back to the project's own, empty: blocked.
	setAllowlist(t, srv, "guarded", nil, nil, map[string]string{"reuse_sys_cve_allowlist": "false"})
	blocked(t, "guarded/app:1", policy)

	// A scanner's token is exempt.
	tok, _ := srv.Core.Tokens.Issue(scanning.ScannerTokenSubject, []token.Access{{Type: "repository", Name: "guarded/app", Actions: []string{"pull", "scanner-pull"}}}, time.Minute)
	if code := headStatus(t, srv, "guarded/app", "1", tok); code != http.StatusOK {
		t.Errorf("HEAD with a scanner's token: %d, want 200", code)
	}
	tok, _ = srv.Core.Tokens.Issue("admin", []token.Access{{Type: "repository", Name: "guarded/app", Actions: []string{"pull"}}}, time.Minute)
	if code := headStatus(t, srv, "guarded/app", "1", tok); code != http.StatusPreconditionFailed {
		t.Errorf("HEAD with a pull token: %d, want 412", code)
	}

	// An image not scanned is blocked while the policy is on.
	newProject(t, srv, "unscanned", map[string]string{"prevent_vul": "true", "severity": "high"})
	push(t, srv, harbortest.Image(t), "unscanned/app:1")
	blocked(t, "unscanned/app:1", `current image without vulnerability scanning cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of "High" or higher from running.'`)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
