package scanning_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// The vulnerability database of these tests is built from the corpus
// feeds the README's first command names (Alpine's secdb, the Node
// Security WG's npm advisories, the Go vulnerability database), once per
// test binary.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// feedsOf are the corpus feeds of the README's first command.
func feedsOf(t testing.TB) []string {
	c := corpustest.Dir(t)
	return []string{filepath.Join(c, "feeds", "alpine-secdb"), filepath.Join(c, "feeds", "npm"), filepath.Join(c, "feeds", "osv", "Go.zip")}
}

// corpusDB returns the path of the database (do not write to it).
func corpusDB(t testing.TB) string {
	t.Helper()
	feeds := feedsOf(t)
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "lading-scanning-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "vuln.db")
		_, built.err = feed.Build(context.Background(), nil, built.path, feeds)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// dbCopy copies the corpus database to a file of the test's own (a server
// replaces its database on updates).
func dbCopy(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(corpusDB(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "vuln.db")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// start starts lading serve with scanning on the database file db ("":
// none), loopback reachable by outbound connections.
func start(t testing.TB, db string, opts ...harbortest.Option) *harbortest.Server {
	t.Helper()
	opts = append([]harbortest.Option{harbortest.WithConfig(func(c *server.Config) {
		c.Scan.DB = db
		c.Outbound.Allow = []string{"127.0.0.1/32"}
		c.Jobs.Poll = 50 * time.Millisecond
	})}, opts...)
	if db == "" {
		opts = append(opts, harbortest.WithConfig(func(c *server.Config) { c.Scan.DB = filepath.Join(t.TempDir(), "absent.db") }))
	}
	return harbortest.Start(t, opts...)
}

// corpusIndex opens a corpus OCI archive as a layout.
func corpusIndex(t testing.TB, file string) v1.ImageIndex {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(corpusLayout(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// corpusLayout extracts a corpus OCI archive into a layout directory.
func corpusLayout(t testing.TB, file string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(corpustest.Image(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir) {
			t.Fatalf("archive entry %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// corpusImage is the image of a corpus archive (its first manifest).
func corpusImage(t testing.TB, file string) v1.Image {
	t.Helper()
	idx := corpusIndex(t, file)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var admin = &authn.Basic{Username: "admin", Password: harbortest.AdminPassword}

// push pushes img as admin and returns its digest.
func push(t testing.TB, srv *harbortest.Server, img v1.Image, repoTag string) string {
	t.Helper()
	ref, err := name.ParseReference(srv.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(admin)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// newProject creates a project with metadata.
func newProject(t testing.TB, srv *harbortest.Server, name string, md map[string]string) {
	t.Helper()
	var meta models.ProjectMetadata
	b, _ := json.Marshal(md)
	json.Unmarshal(b, &meta)
	if _, err := srv.Admin().Project.CreateProject(context.Background(), project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: name, Metadata: &meta})); err != nil {
		t.Fatal(err)
	}
}

// vulnMime is the report type Harbor's UI asks for.
const vulnMime = "application/vnd.security.vulnerability.report; version=1.1"

// overview returns an artifact's scan overview, through Harbor's client.
func overview(t testing.TB, srv *harbortest.Server, project, repo, ref string) *models.NativeReportSummary {
	t.Helper()
	a, err := srv.Admin().Artifact.GetArtifact(context.Background(), artifact.NewGetArtifactParams().WithProjectName(project).WithRepositoryName(repo).
		WithReference(ref).WithWithScanOverview(ptr(true)).WithXAcceptVulnerabilities(ptr(vulnMime)))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := a.Payload.ScanOverview[vulnMime]
	if !ok {
		return nil
	}
	return &s
}

// waitScan waits until an artifact's scan has ended and returns its
// overview.
func waitScan(t testing.TB, srv *harbortest.Server, project, repo, ref string) *models.NativeReportSummary {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := overview(t, srv, project, repo, ref)
		if s != nil && s.ScanStatus != "Pending" && s.ScanStatus != "Running" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s:%s: scan not done after 3 minutes: %+v", project, repo, ref, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// get does an API request as admin and decodes the JSON answer.
func get(t testing.TB, srv *harbortest.Server, path string, header map[string]string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.SetBasicAuth("admin", harbortest.AdminPassword)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	if resp.StatusCode != http.StatusOK && out != nil {
		t.Logf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

var _ = fmt.Sprint
var _ = scanning.KindScan
