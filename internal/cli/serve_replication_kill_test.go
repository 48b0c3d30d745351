package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// arrivals is a front of docker-registry that records what reached it:
// each blob committed (an upload's final PUT or a mount answered 201) and
// each manifest stored, by repository and digest or tag. Once armed, it
// holds every blob commit until released (or until the client goes
// away), so that a kill lands while uploads are in
// flight. It arms itself once holdAfter manifests have been stored, so
// that the kill finds some artifacts finished and others half sent.
type arrivals struct {
	*httptest.Server
	holdAfter int32
	manifests atomic.Int32
	armed     atomic.Bool
	held      atomic.Int32
	release   chan struct{}

	mu   sync.Mutex
	seen map[string]int // "blob repo@digest", "manifest repo:ref" -> 201s
}

var (
	blobCommit    = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/[^/]+$`)
	blobMount     = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/$`)
	manifestWrite = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
)

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func newArrivals(t *testing.T, host string, holdAfter int32) *arrivals {
	a := &arrivals{holdAfter: holdAfter, release: make(chan struct{}), seen: map[string]int{}}
	u, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(u)
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var key string
		switch m := blobCommit.FindStringSubmatch(r.URL.Path); {
		case r.Method == http.MethodPut && m != nil && r.URL.Query().Get("digest") != "":
			key = "blob " + m[1] + "@" + r.URL.Query().Get("digest")
			if a.armed.Load() && a.manifests.Load() >= a.holdAfter {
				a.held.Add(1)
				select {
				case <-a.release:
				case <-r.Context().Done():
					return // the client died: the upload never commits
				}
			}
		}
		if m := blobMount.FindStringSubmatch(r.URL.Path); r.Method == http.MethodPost && m != nil && r.URL.Query().Get("mount") != "" {
			key = "blob " + m[1] + "@" + r.URL.Query().Get("mount")
		}
		if m := manifestWrite.FindStringSubmatch(r.URL.Path); r.Method == http.MethodPut && m != nil {
			key = "manifest " + m[1] + ":" + m[2]
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if key != "" && sw.code == http.StatusCreated {
			a.mu.Lock()
			a.seen[key]++
			a.mu.Unlock()
			if strings.HasPrefix(key, "manifest ") {
				a.manifests.Add(1)
			}
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// counts returns the committed blobs and stored manifests so far, and the
// keys that arrived more than once.
func (a *arrivals) counts() (blobs, manifests int, twice []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, n := range a.seen {
		if strings.HasPrefix(k, "blob ") {
			blobs++
		} else {
			manifests++
		}
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s (%d times)", k, n))
		}
	}
	sort.Strings(twice)
	return blobs, manifests, twice
}

// corpusReplica is a corpus image as the test pushes it into lading.
type corpusReplica struct {
	file, tag, repo string
	digest          string // the manifest's digest in the OCI tar
}

// rawDigest returns the sha256 of the manifest skopeo reads raw at ref.
func rawDigest(t *testing.T, skopeo string, args ...string) string {
	t.Helper()
	out, err := exec.Command(skopeo, append([]string{"inspect", "--raw"}, args...)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", strings.Join(args, " "), err, stderrText(err))
	}
	s := sha256.Sum256(out)
	return "sha256:" + hex.EncodeToString(s[:])
}

func stderrText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// complete fails the test unless skopeo can copy every tag docker-registry
// lists, with all its platforms and blobs (each verified against its
// digest): the destination holds no manifest whose content is missing.
func complete(t *testing.T, skopeo string, d destinationRegistry) map[string]string {
	t.Helper()
	host := d.host
	creds := []string{"--src-no-creds"}
	inspectCreds := []string{"--no-creds"}
	if d.user != "" {
		creds = []string{"--src-creds", d.user + ":" + d.password}
		inspectCreds = []string{"--creds", d.user + ":" + d.password}
	}
	// get decodes the answer to GET path into v; a 404 leaves v alone
	// (docker-registry lists in its catalog a repository that holds
	// blobs but no tag yet, and answers 404 for its tags).
	get := func(path string, v any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.user != "" {
			req.SetBasicAuth(d.user, d.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var cat struct{ Repositories []string }
	get("/v2/_catalog", &cat)
	out := map[string]string{}
	for _, repo := range cat.Repositories {
		var tl struct{ Tags []string }
		get("/v2/"+repo+"/tags/list", &tl)
		for _, tag := range tl.Tags {
			ref := "docker://" + host + "/" + repo + ":" + tag
			dir := t.TempDir()
			cmd := exec.Command(skopeo, append(append([]string{"copy", "--all", "--src-tls-verify=false"}, creds...), ref, "dir:"+dir)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("the destination's %s:%s cannot be read whole: %v\n%s", repo, tag, err, b)
				continue
			}
			out[repo+":"+tag] = rawDigest(t, skopeo, append(append([]string{"--tls-verify=false"}, inspectCreds...), ref)...)
		}
	}
	return out
}

// destinationRegistry is where a replication goes: its host and an
// administrator's credentials ("" for none).
type destinationRegistry struct {
	typ, host, user, password string
}

// TestServeKillMidReplication replicates corpus images from a real
// `lading serve` to Debian's docker-registry and to a second `lading
// serve`, kills lading with SIGKILL
// while blob uploads are in flight, checks that the destination holds no
// half-written artifact, starts lading again on the same root and checks
// that the execution resumes and succeeds: every image arrived with the
// digest of its OCI tar, whole, and nothing arrived twice (an upload
// that was in flight at the kill was sent again, as at least once allows;
// what had arrived was found there and not sent again).
func TestServeKillMidReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("replicates the corpus through lading serve processes; skipped with -short")
	}
	t.Run("docker-registry", func(t *testing.T) {
		dist := registrytest.Start(t, registrytest.None)
		killMidReplication(t, destinationRegistry{typ: "docker-registry", host: dist.Host})
	})
	t.Run("lading", func(t *testing.T) {
		dst := startServe(t, t.TempDir(), "--config", serveConfig(t))
		killMidReplication(t, destinationRegistry{typ: "harbor", host: strings.TrimPrefix(dst.base, "http://"), user: "admin", password: serveAdminPassword})
	})
}

const serveAdminPassword = "Harbor12345"

// serveConfig writes a lading serve configuration for the replication
// tests: outbound to loopback allowed, short job leases.
func serveConfig(t *testing.T) string {
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfg, []byte("auth: {admin_password: "+serveAdminPassword+"}\noutbound: {allow: [127.0.0.0/8]}\njobs: {lease: 3s, poll: 100ms}\nlog: {access: false}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func killMidReplication(t *testing.T, dst destinationRegistry) {
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	images := []corpusReplica{
		{file: "alpine-3.10.oci.tar", tag: "3.10", repo: "library/alpine-3.10"},
		{file: "alpine-3.9.oci.tar", tag: "3.9.6", repo: "library/alpine-3.9"},
		{file: "alpine-3.20-app.oci.tar", tag: "latest", repo: "library/alpine-app"},
		{file: "alpine-3.20-multiarch.oci.tar", tag: "latest", repo: "library/alpine-multiarch"},
		{file: "debian-12-distroless.oci.tar", tag: "latest", repo: "library/distroless"},
		{file: "mariner-2.0-rpmdb.oci.tar", tag: "latest", repo: "library/mariner"},
	}
	for i := range images {
		images[i].file = corpustest.Image(t, images[i].file)
	}
	front := newArrivals(t, dst.host, 2)

	const admin = serveAdminPassword
	root := t.TempDir()
	cfg := serveConfig(t)
	first := startServe(t, root, "--config", cfg)
	host := strings.TrimPrefix(first.base, "http://")
	for i, im := range images {
		src := "oci-archive:" + im.file + ":" + im.tag
		images[i].digest = rawDigest(t, skopeo, src)
		cmd := exec.Command(skopeo, "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", "admin:"+admin,
			src, "docker://"+host+"/"+im.repo+":"+im.tag)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy %s into lading: %v\n%s", im.file, err, b)
		}
	}

	api := func(base, method, path, body string, want int) (string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, base+"/api/v2.0"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("admin", admin)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return string(b), resp.Header
	}
	created := func(base, path, body string) string {
		_, h := api(base, http.MethodPost, path, body, http.StatusCreated)
		return filepath.Base(h.Get("Location"))
	}
	credential := ""
	if dst.user != "" {
		credential = fmt.Sprintf(`,"credential":{"type":"basic","access_key":%q,"access_secret":%q}`, dst.user, dst.password)
	}
	reg := created(first.base, "/registries", fmt.Sprintf(`{"name":"destination","type":%q,"url":%q,"insecure":true%s}`, dst.typ, front.URL, credential))
	policy := created(first.base, "/replication/policies", `{"name":"corpus","enabled":true,"dest_registry":{"id":`+reg+`},
		"filters":[{"type":"name","value":"library/**"}],"trigger":{"type":"manual"}}`)
	front.armed.Store(true)
	execution := created(first.base, "/replication/executions", `{"policy_id":`+policy+`}`)

	for deadline := time.Now().Add(2 * time.Minute); front.held.Load() == 0; {
		if time.Now().After(deadline) {
			b, m, _ := front.counts()
			t.Fatalf("no upload in flight within 2 minutes (%d blobs, %d manifests arrived)", b, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	blobs, manifests, _ := front.counts()
	t.Logf("killed lading with %d blob commits in flight; %d blobs and %d manifests had arrived", front.held.Load(), blobs, manifests)
	atKill := complete(t, skopeo, dst)
	t.Logf("the destination's tags at the kill, each whole: %v", atKill)
	for _, im := range images {
		if d, ok := atKill[im.repo+":"+im.tag]; ok && d != im.digest {
			t.Errorf("at the kill the destination's %s:%s is %s, want %s", im.repo, im.tag, d, im.digest)
		}
	}

	front.armed.Store(false)
	close(front.release)
	second := startServe(t, root, "--config", cfg)
	var ex struct {
		Status     string `json:"status"`
		StatusText string `json:"status_text"`
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		body, _ := api(second.base, http.MethodGet, "/replication/executions/"+execution, "", http.StatusOK)
		json.Unmarshal([]byte(body), &ex)
		if ex.Status != "InProgress" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s still in progress 3 minutes after the restart", execution)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var logs strings.Builder
	body, _ := api(second.base, http.MethodGet, "/replication/executions/"+execution+"/tasks", "", http.StatusOK)
	var tasks []struct{ ID int64 }
	json.Unmarshal([]byte(body), &tasks)
	for _, tk := range tasks {
		l, _ := api(second.base, http.MethodGet, fmt.Sprintf("/replication/executions/%s/tasks/%d/log", execution, tk.ID), "", http.StatusOK)
		logs.WriteString(l)
	}
	if ex.Status != "Succeed" || len(tasks) != len(images) {
		t.Fatalf("after the restart the execution is %s (%s) with %d tasks, want Succeed with %d:\n%s", ex.Status, ex.StatusText, len(tasks), len(images), logs.String())
	}
	if !regexp.MustCompile(`attempt=[2-9]`).MatchString(logs.String()) {
		t.Errorf("no task ran a second attempt after the kill:\n%s", logs.String())
	}

	got := complete(t, skopeo, dst)
	for _, im := range images {
		if d := got[im.repo+":"+im.tag]; d != im.digest {
			t.Errorf("the destination's %s:%s is %q, want %s (the OCI tar's)", im.repo, im.tag, d, im.digest)
		}
	}
	if len(got) != len(images) {
		t.Errorf("the destination has tags %v, want one per image", got)
	}
	blobs, manifests, twice := front.counts()
	t.Logf("in all %d blobs and %d manifests arrived at the destination", blobs, manifests)
	if len(twice) > 0 {
		t.Errorf("arrived more than once (work done twice): %s", strings.Join(twice, ", "))
	}
}
