package scanning_test

import (
	"context"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestProxyCacheScanned: artifacts that a proxy-cache project caches from
// docker-registry are scanned on arrival (auto_scan on the project) and
// are subject to its vulnerability prevention policy like pushed ones: a
// vulnerable image is refused to skopeo and to HEAD with Harbor's 412
// message, a clean one is served.
func TestProxyCacheScanned(t *testing.T) {
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	ctx := context.Background()
	srv := start(t, corpusDB(t))
	dist := registrytest.Start(t, registrytest.None)
	images := map[string]v1.Image{"app": corpusImage(t, "alpine-3.20-app.oci.tar"), "clean": harbortest.Image(t)}
	for repo, img := range images {
		ref, _ := name.ParseReference(dist.Host+"/"+repo+":1", name.Insecure)
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := srv.Admin().Registry.CreateRegistry(ctx, &registry.CreateRegistryParams{Registry: &models.Registry{Name: "up", Type: "docker-registry", URL: "http://" + dist.Host}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := strconv.ParseInt(path.Base(res.Location), 10, 64)
	if err != nil {
		t.Fatalf("registry location %q: %v", res.Location, err)
	}
	yes, medium := "true", "medium"
	if _, err := srv.Admin().Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: "cache", RegistryID: &reg,
		Metadata: &models.ProjectMetadata{AutoScan: &yes, PreventVul: &yes, Severity: &medium}}}); err != nil {
		t.Fatal(err)
	}
	inspect := func(repo string) (string, bool) {
		out, err := exec.Command(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", "admin:"+harbortest.AdminPassword,
			"docker://"+srv.Host+"/cache/"+repo+":1").CombinedOutput()
		return strings.ReplaceAll(string(out), `\"`, `"`), err == nil
	}
	for repo := range images {
		// The first pull fetches from the upstream and queues the
		// caching; unscanned, the manifest itself is refused.
		inspect(repo)
	}
	for repo, img := range images {
		want, _ := img.Digest()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			a, err := srv.Admin().Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("cache").WithRepositoryName(repo).WithReference("1"))
			if err == nil && a.Payload.Digest == want.String() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache/%s:1 was not cached within 2 minutes: %v", repo, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if s := waitScan(t, srv, "cache", "app", "1"); s.ScanStatus != "Success" || s.Summary == nil || s.Summary.Total == 0 {
		t.Fatalf("the cached vulnerable image's scan: %+v", s)
	}
	if s := waitScan(t, srv, "cache", "clean", "1"); s.ScanStatus != "Success" || s.Summary.Total != 0 {
		t.Fatalf("the cached clean image's scan: %+v", s)
	}
	policy := `cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of "Medium" or higher from running.'`
	if out, ok := inspect("app"); ok || !strings.Contains(out, policy) {
		t.Errorf("skopeo reading the cached vulnerable image: succeeded %v, output %q; want a refusal saying %q", ok, out, policy)
	}
	if code := headStatus(t, srv, "cache/app", "1", ""); code != 412 {
		t.Errorf("HEAD of the cached vulnerable image: %d, want 412", code)
	}
	if out, ok := inspect("clean"); !ok {
		t.Errorf("skopeo reading the cached clean image: %s", out)
	}
}
