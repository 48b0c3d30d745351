package cli

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/registrytest"
)

// Registry-side scanning across processes: replicas sharing the layer
// cache through PostgreSQL, and an external scanner that is another
// lading serve process.

const serveAdmin = "Harbor12345"

// serveAPI does a request to a lading serve process's API as admin (or
// with the headers given: "basic" "user:pass", or a header and its value)
// and returns the status and body.
func serveAPI(t *testing.T, base, method, path, body string, h ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(h) == 0 {
		h = []string{"basic", "admin:" + serveAdmin}
	}
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] == "basic" {
			user, pass, _ := strings.Cut(h[i+1], ":")
			req.SetBasicAuth(user, pass)
			continue
		}
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// mustAPI is serveAPI that fails the test unless the status is want.
func mustAPI(t *testing.T, want int, base, method, path, body string, h ...string) string {
	t.Helper()
	st, out := serveAPI(t, base, method, path, body, h...)
	if st != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, st, out, want)
	}
	return out
}

// writeServeConfig writes a lading serve configuration file.
func writeServeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("auth: {admin_password: %s}\nlog: {access: false}\njobs: {poll: 100ms}\n", serveAdmin)+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pushTo pushes img to base's repository "project/repo:tag" as admin and
// returns its digest.
func pushTo(t *testing.T, base, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.NewTag(strings.TrimPrefix(base, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: serveAdmin})); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// archiveImage is the first image of an OCI archive.
func archiveImage(t *testing.T, file string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(file)
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
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) || h.Typeflag != tar.TypeReg {
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
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

// scanOverview is what the tests read of an artifact's scan overview.
type scanOverview struct {
	ReportID   string `json:"report_id"`
	ScanStatus string `json:"scan_status"`
	Scanner    *struct {
		Name string `json:"name"`
	} `json:"scanner"`
	Summary *struct {
		Total int `json:"total"`
	} `json:"summary"`
}

// waitScanned waits until the scan of project/repo@ref has ended, through
// base's API, and returns its overview and log.
func waitScanned(t *testing.T, base, project, repo, ref string) (scanOverview, string) {
	t.Helper()
	const mime = "application/vnd.security.vulnerability.report; version=1.1"
	path := fmt.Sprintf("/api/v2.0/projects/%s/repositories/%s/artifacts/%s", project, url.PathEscape(repo), ref)
	deadline := time.Now().Add(3 * time.Minute)
	var s scanOverview
	for {
		var a struct {
			ScanOverview map[string]scanOverview `json:"scan_overview"`
		}
		body := mustAPI(t, http.StatusOK, base, "GET", path+"?with_scan_overview=true", "", "basic", "admin:"+serveAdmin, "X-Accept-Vulnerabilities", mime)
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		s = a.ScanOverview[mime]
		if s.ScanStatus != "" && s.ScanStatus != "Pending" && s.ScanStatus != "Running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s@%s: scan not done after 3 minutes: %+v", project, repo, ref, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The job's last lines are stored as it ends, a moment after the
	// report's status.
	for deadline := time.Now().Add(time.Minute); ; {
		_, log := serveAPI(t, base, "GET", path+"/scan/"+s.ReportID+"/log", "")
		if strings.Contains(log, "] succeeded") || strings.Contains(log, "] failed: ") || time.Now().After(deadline) {
			return s, log
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var analyzedLine = regexp.MustCompile(`analyzed (\d+) layers, (\d+) from the layer cache`)

// cachedLayers returns (layers, from the cache) of a scan log's
// "analyzed N layers, M from the layer cache".
func cachedLayers(t *testing.T, log string) (int, int) {
	t.Helper()
	m := analyzedLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no analysis line in the scan log:\n%s", log)
	}
	var n, c int
	fmt.Sscan(m[1], &n)
	fmt.Sscan(m[2], &c)
	return n, c
}

// TestServeReplicasShareLayerCache runs two lading serve processes on one
// PostgreSQL and one storage root, scanning on push. An image pushed and
// scanned through replica A; A stops; an image sharing A's layers, with
// one more, pushed through B and scanned by B: the shared layers come
// from the layer cache A filled (the scan job's log says how many), only
// the new one is read.
func TestServeReplicasShareLayerCache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two lading serve processes; skipped with -short")
	}
	dbURL := pgtest.Start(t).NewDatabase(t)
	root := t.TempDir()
	cfg := writeServeConfig(t, root, fmt.Sprintf("database: {url: %q}\nscan: {db: %q}\n", dbURL, testScanDB(t)))
	a := startServe(t, root, "--config", cfg)
	b := startServe(t, root, "--config", cfg)
	mustAPI(t, http.StatusCreated, a.base, "POST", "/api/v2.0/projects", `{"project_name":"team","metadata":{"auto_scan":"true"}}`)

	base := archiveImage(t, corpustest.Image(t, "alpine-3.20-app.oci.tar"))
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d1 := pushTo(t, a.base, "team/app:1", base)
	s1, log1 := waitScanned(t, a.base, "team", "app", d1)
	if s1.ScanStatus != "Success" {
		t.Fatalf("scan through A: %+v\n%s", s1, log1)
	}
	if n, c := cachedLayers(t, log1); n != len(baseLayers) || c != 0 {
		t.Fatalf("the first scan analyzed %d layers, %d from the cache; want %d, 0:\n%s", n, c, len(baseLayers), log1)
	}

	// A stops: what B finds, it finds in the database they share.
	a.cmd.Process.Signal(os.Interrupt)
	<-a.done
	extra, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	d2 := pushTo(t, b.base, "team/derived:1", derived)
	s2, log2 := waitScanned(t, b.base, "team", "derived", d2)
	if s2.ScanStatus != "Success" {
		t.Fatalf("scan through B: %+v\n%s", s2, log2)
	}
	if n, c := cachedLayers(t, log2); n != len(baseLayers)+1 || c != len(baseLayers) {
		t.Errorf("the scan through B analyzed %d layers, %d from the cache; want %d, %d:\n%s", n, c, len(baseLayers)+1, len(baseLayers), log2)
	}
	if s2.Summary == nil || s1.Summary == nil || s2.Summary.Total != s1.Summary.Total {
		t.Errorf("the derived image's findings differ from its base's: %+v, %+v", s2.Summary, s1.Summary)
	}
}

// TestServeExternalScannerProcess registers, in one lading serve process
// (which has no vulnerability database of its own), a second lading serve
// process as its external scanner, Bearer-authenticated the Harbor way
// (/scanners), the project's scanner: a scan of the corpus's
// alpine-3.20-app is done by the other process (it pulls the image back
// from the first with the credentials of the scan request) and its report
// lands in the first.
func TestServeExternalScannerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two lading serve processes; skipped with -short")
	}
	const token = "scanner-bearer-token"
	extRoot, regRoot := t.TempDir(), t.TempDir()
	ext := startServe(t, extRoot, "--config", writeServeConfig(t, extRoot, fmt.Sprintf(
		"scan: {db: %q, adapter: {auth: Bearer, credential: %s}}\noutbound: {allow: [127.0.0.1/32]}\n", testScanDB(t), token)))
	reg := startServe(t, regRoot, "--config", writeServeConfig(t, regRoot, fmt.Sprintf(
		"scan: {db: %q}\noutbound: {allow: [127.0.0.1/32]}\n", filepath.Join(regRoot, "no-such.db"))))
	if ext.cmd.Process.Pid == reg.cmd.Process.Pid {
		t.Fatal("one process")
	}

	// The adapter refuses a wrong token, and the registry's ping says so.
	if st, body := serveAPI(t, ext.base, "GET", "/api/v1/metadata", "", "Authorization", "Bearer wrong"); st != http.StatusUnauthorized {
		t.Errorf("metadata with a wrong token: %d %s", st, body)
	}
	ping := func(cred string) int {
		st, _ := serveAPI(t, reg.base, "POST", "/api/v2.0/scanners/ping", fmt.Sprintf(`{"name":"ext","url":%q,"auth":"Bearer","access_credential":%q}`, ext.base, cred))
		return st
	}
	if st := ping("wrong"); st == http.StatusOK {
		t.Error("ping with a wrong token succeeded")
	}
	if st := ping(token); st != http.StatusOK {
		t.Fatalf("ping: %d", st)
	}
	mustAPI(t, http.StatusCreated, reg.base, "POST", "/api/v2.0/scanners", fmt.Sprintf(`{"name":"ext","url":%q,"auth":"Bearer","access_credential":%q}`, ext.base, token))
	var regs []struct {
		UUID string `json:"uuid"`
		Name string `json:"name"`
	}
	json.Unmarshal([]byte(mustAPI(t, http.StatusOK, reg.base, "GET", "/api/v2.0/scanners", "")), &regs)
	var id string
	for _, r := range regs {
		if r.Name == "ext" {
			id = r.UUID
		}
	}
	if id == "" {
		t.Fatalf("the registration is not listed: %+v", regs)
	}
	mustAPI(t, http.StatusCreated, reg.base, "POST", "/api/v2.0/projects", `{"project_name":"team","metadata":{"auto_scan":"false"}}`)
	mustAPI(t, http.StatusOK, reg.base, "PUT", "/api/v2.0/projects/team/scanner", fmt.Sprintf(`{"uuid":%q}`, id))

	dgst := pushTo(t, reg.base, "team/app:1", archiveImage(t, corpustest.Image(t, "alpine-3.20-app.oci.tar")))
	mustAPI(t, http.StatusAccepted, reg.base, "POST", "/api/v2.0/projects/team/repositories/app/artifacts/"+dgst+"/scan", "")
	s, log := waitScanned(t, reg.base, "team", "app", dgst)
	if s.ScanStatus != "Success" || s.Summary == nil || s.Summary.Total == 0 {
		t.Fatalf("the external scan: %+v\n%s", s, log)
	}
	if !strings.Contains(log, "ext") {
		t.Errorf("the scan log does not name the external scanner:\n%s", log)
	}
	// The other process did the work: its adapter job pulled the image
	// from the first.
	ext.waitLog(t, regexp.MustCompile(`SCANNER_ADAPTER_SCAN`), 0)
	_, vulns := serveAPI(t, reg.base, "GET", "/api/v2.0/projects/team/repositories/app/artifacts/"+dgst+"/additions/vulnerabilities", "")
	if !strings.Contains(vulns, "lodash") {
		t.Errorf("the external scanner's report misses lodash: %.300s", vulns)
	}
}

// TestServeDBFromAnotherRegistry: lading db push puts a database in
// another registry (Debian's docker-registry, on loopback); a lading serve
// process that has no database and whose scan.db_source names it pulls it
// at start, and scans on push with it: the corpus's alpine-3.20-app shows
// the npm and Go findings that only the pulled database has.
func TestServeDBFromAnotherRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts docker-registry and a lading serve process; skipped with -short")
	}
	dist := registrytest.Start(t, registrytest.None)
	ref := dist.Host + "/security/lading-db:1"
	l := newLading(t)
	l.ok("db", "push", "--db", testScanDB(t), "--insecure", ref)

	root := t.TempDir()
	srv := startServe(t, root, "--config", writeServeConfig(t, root, fmt.Sprintf(
		"scan: {db: %q, db_source: {repository: %q, insecure: true, schedule: \"@weekly\"}}\noutbound: {allow: [127.0.0.1/32]}\n",
		filepath.Join(root, "vuln.db"), ref)))
	srv.waitLog(t, regexp.MustCompile(`vulnerability database updated`), 0)
	mustAPI(t, http.StatusCreated, srv.base, "POST", "/api/v2.0/projects", `{"project_name":"team","metadata":{"auto_scan":"true"}}`)
	dgst := pushTo(t, srv.base, "team/app:1", archiveImage(t, corpustest.Image(t, "alpine-3.20-app.oci.tar")))
	s, log := waitScanned(t, srv.base, "team", "app", dgst)
	if s.ScanStatus != "Success" || s.Summary == nil || s.Summary.Total == 0 {
		t.Fatalf("scan with the pulled database: %+v\n%s", s, log)
	}
	_, vulns := serveAPI(t, srv.base, "GET", "/api/v2.0/projects/team/repositories/app/artifacts/"+dgst+"/additions/vulnerabilities", "")
	for _, want := range []string{"lodash", "github.com/gin-gonic/gin"} {
		if !strings.Contains(vulns, want) {
			t.Errorf("the report misses %s: %.300s", want, vulns)
		}
	}
}
