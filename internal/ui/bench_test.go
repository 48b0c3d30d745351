package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/inspect/compute"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/ui"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// timings collects request durations and reports percentiles.
type timings []time.Duration

func (ts timings) pct(p float64) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// serve runs one request through the server's handler, in process, and
// returns its wall time and the CPU time of the thread that served it
// (the caller locks its goroutine to a thread): on a machine shared with
// other work, the wall time's tail measures the machine's load, the CPU
// time what the request costs. A status other than 200 fails.
func serve(b *testing.B, h http.Handler, req *http.Request) (wall, cpu time.Duration) {
	rec := httptest.NewRecorder()
	c0 := threadCPU()
	start := time.Now()
	h.ServeHTTP(rec, req)
	wall = time.Since(start)
	cpu = threadCPU() - c0
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %.300s", req.URL, rec.Code, rec.Body.String())
	}
	return wall, cpu
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// report reports the percentiles of wall and CPU times in milliseconds.
func report(b *testing.B, prefix string, wall, cpu timings) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(wall.pct(0.5)), prefix+"p50-ms")
	b.ReportMetric(ms(wall.pct(0.99)), prefix+"p99-ms")
	b.ReportMetric(ms(cpu.pct(0.99)), prefix+"cpu-p99-ms")
}

// loadAverage is the one-minute load average, for the record.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// sessionCookie logs user in through the service and returns the cookie.
func sessionCookie(b *testing.B, s *testServer, user, password string) *http.Cookie {
	ctx := context.Background()
	who, err := s.Core.Identity.Login(ctx, user, password, "", false)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := s.Core.Identity.StartSession(ctx, who)
	if err != nil {
		b.Fatal(err)
	}
	return &http.Cookie{Name: ui.SessionCookie, Value: sess.Token}
}

// putManifests pushes n manifests (or one manifest under n tags) into
// acme/big through the registry's HTTP API, in process.
func putManifests(b *testing.B, s *testServer, n int, oneArtifact bool) {
	img, err := random.Image(128, 1)
	if err != nil {
		b.Fatal(err)
	}
	d := s.push(b, img, "acme/big", "base", "admin", "Harbor12345")
	_ = d
	raw, err := img.RawManifest()
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	h := s.Handler()
	for i := range n {
		body := raw
		if !oneArtifact {
			m["annotations"] = map[string]string{"org.example.build": fmt.Sprint(i)}
			body, _ = json.Marshal(m)
		}
		req := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/v2/acme/big/manifests/v1.%d.%d", i/100, i%100), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		req.SetBasicAuth("admin", "Harbor12345")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("put manifest %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkRepositoryPage renders the repository page of a repository
// with 10,000 tags, as a developer of the project: 10,000 artifacts of one
// tag each, and one artifact with 10,000 tags; the first page, a tag
// filter and the last page. The baseline is the API's JSON of the same
// page of artifacts with their tags (GET .../artifacts?with_tag=true),
// measured in the same run; p50 and p99 of the server time are reported
// (the goal: p99 under 50 ms).
func BenchmarkRepositoryPage(b *testing.B) {
	for _, one := range []bool{false, true} {
		name := "10000-artifacts"
		if one {
			name = "1-artifact-10000-tags"
		}
		b.Run(name, func(b *testing.B) {
			// Scanning attached as lading serve attaches it (the page
			// reads each artifact's scan overview); no database is
			// needed for that.
			s := start(b, nil, withScanning(filepath.Join(b.TempDir(), "absent.db")))
			ctx := context.Background()
			admin := s.admin(b)
			if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: "dev", Email: "dev@example.com", Realname: "Dev", Password: userPassword}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: "dev", Role: access.Developer}); err != nil {
				b.Fatal(err)
			}
			putManifests(b, s, 10000, one)
			ck := sessionCookie(b, s, "dev", userPassword)
			h := s.Handler()
			pages := []string{"/projects/acme/r/big", "/projects/acme/r/big?tag=v1.42", "/projects/acme/r/big?page=400"}
			apis := []string{"/api/v2.0/projects/acme/repositories/big/artifacts?with_tag=true&page_size=25",
				"/api/v2.0/projects/acme/repositories/big/artifacts?with_tag=true&page_size=25&q=tags%3D~v1.42",
				"/api/v2.0/projects/acme/repositories/big/artifacts?with_tag=true&page_size=25&page=400"}
			var uiW, uiC, apiW, apiC timings
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				req := httptest.NewRequest(http.MethodGet, pages[i%len(pages)], nil)
				req.AddCookie(ck)
				w, c := serve(b, h, req)
				uiW, uiC = append(uiW, w), append(uiC, c)
				b.StopTimer()
				req = httptest.NewRequest(http.MethodGet, apis[i%len(apis)], nil)
				req.SetBasicAuth("dev", userPassword)
				w, c = serve(b, h, req)
				apiW, apiC = append(apiW, w), append(apiC, c)
				b.StartTimer()
			}
			report(b, "", uiW, uiC)
			report(b, "api-", apiW, apiC)
			b.ReportMetric(float64(uiC.pct(0.5))/float64(apiC.pct(0.5)), "ui/api-cpu")
			b.Logf("load average %s", loadAverage())
		})
	}
}

// debianDB builds a vulnerability database from the corpus feeds that
// debian-12-app needs (Debian's DSA and DLA lists, PyPI).
func debianDB(b *testing.B) *vulndb.DB {
	feeds := filepath.Join(corpustest.Dir(b), "feeds")
	path := filepath.Join(b.TempDir(), vulndb.FileName)
	if _, err := feed.Build(context.Background(), nil, path, []string{filepath.Join(feeds, "debian"), filepath.Join(feeds, "osv", "PyPI.zip")}); err != nil {
		b.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkArtifactPage renders the artifact page of debian-12-app (pushed
// with skopeo, scanned once by lading's scanner over the stored blobs)
// with its vulnerabilities panel, unfiltered and filtered, and its
// packages panel. The baseline is the repository page of the same
// repository, in the same run.
func BenchmarkArtifactPage(b *testing.B) {
	skopeo := testenv.Tool(b, "skopeo", "skopeo")
	img := corpustest.Image(b, "debian-12-app.oci.tar")
	s := start(b, compute.New(compute.WithScanner(scan.New(debianDB(b), "corpus feeds", nil))), withScanning(filepath.Join(b.TempDir(), "absent.db")))
	ctx := context.Background()
	if _, err := s.Core.Projects.Create(ctx, s.admin(b), project.Create{Name: "acme"}); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "admin:Harbor12345",
		"oci-archive:"+img+":latest", "docker://"+s.Host+"/acme/debian:12").CombinedOutput()
	if err != nil {
		b.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	ck := sessionCookie(b, s, "admin", "Harbor12345")
	h := s.Handler()
	base := "/projects/acme/r/debian/-/12"
	warm := httptest.NewRequest(http.MethodGet, base+"/vulnerabilities", nil)
	warm.AddCookie(ck)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, warm) // the first view analyzes and scans the image
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `class="vulns"`) {
		b.Fatalf("first view: %d, no findings table", rec.Code)
	}
	b.Logf("debian-12-app: %d findings shown, page of %d bytes", strings.Count(rec.Body.String(), `<span class="sev sev-`), rec.Body.Len())
	pages := []string{base + "/vulnerabilities", base + "/vulnerabilities?severity=HIGH&sort=package", base + "/vulnerabilities?q=openssl&layer=own", base + "/packages"}
	var uiW, uiC, baseW, baseC timings
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodGet, pages[i%len(pages)], nil)
		req.AddCookie(ck)
		w, c := serve(b, h, req)
		uiW, uiC = append(uiW, w), append(uiC, c)
		b.StopTimer()
		req = httptest.NewRequest(http.MethodGet, "/projects/acme/r/debian", nil)
		req.AddCookie(ck)
		w, c = serve(b, h, req)
		baseW, baseC = append(baseW, w), append(baseC, c)
		b.StartTimer()
	}
	report(b, "", uiW, uiC)
	b.ReportMetric(float64(uiC.pct(0.5))/float64(baseC.pct(0.5)), "artifact/repository-cpu")
	b.Logf("load average %s", loadAverage())
}
