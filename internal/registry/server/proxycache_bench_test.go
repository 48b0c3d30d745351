package server_test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// BenchmarkProxyCachePull compares, in one run, pulls (manifest and every
// layer) of an artifact cached by a proxy-cache project, whose tag is
// checked upstream (docker-registry on loopback) each time, with pulls
// of the same artifact pushed into an ordinary project. It reports both
// latencies and their ratio (cached/local), and the latency of a bare
// HEAD of the tag to the upstream (what the freshness check cannot save).
// Two images: a random one of three 1 MiB layers, and the corpus's
// debian-12-app.
func BenchmarkProxyCachePull(b *testing.B) {
	b.Run("random-3MiB", func(b *testing.B) {
		img, err := random.Image(1<<20, 3)
		if err != nil {
			b.Fatal(err)
		}
		benchProxyCachePull(b, func(dist *registrytest.Registry, srv *harbortest.Server) {
			up, _ := name.ParseReference(dist.Host+"/team/app:v1", name.Insecure)
			if err := remote.Write(up, img); err != nil {
				b.Fatal(err)
			}
			if err := srv.Push(context.Background(), img, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("debian-12-app", func(b *testing.B) {
		skopeo := testenv.Tool(b, "skopeo", "skopeo")
		tar := corpustest.Image(b, "debian-12-app.oci.tar")
		benchProxyCachePull(b, func(dist *registrytest.Registry, srv *harbortest.Server) {
			for _, dst := range []string{dist.Host + "/team/app:v1", srv.Host + "/library/app:v1"} {
				out, err := exec.Command(skopeo, "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "admin:"+harbortest.AdminPassword,
					"oci-archive:"+tar, "docker://"+dst).CombinedOutput()
				if err != nil {
					b.Fatalf("skopeo copy to %s: %v\n%s", dst, err, out)
				}
			}
		})
	})
}

func benchProxyCachePull(b *testing.B, push func(*registrytest.Registry, *harbortest.Server)) {
	ctx := context.Background()
	dist := registrytest.Start(b, registrytest.None)
	srv := loopbackServer(b)
	push(dist, srv)
	res, err := srv.Admin().Registry.CreateRegistry(ctx, &registry.CreateRegistryParams{Registry: &models.Registry{Name: "up", Type: "docker-registry", URL: "http://" + dist.Host}})
	if err != nil {
		b.Fatal(err)
	}
	reg := lastID(b, res.Location)
	if _, err := srv.Admin().Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: "cache", RegistryID: &reg}}); err != nil {
		b.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: harbortest.AdminPassword})
	pull := func(repo string) time.Duration {
		ref, _ := name.ParseReference(srv.Host+"/"+repo+":v1", name.Insecure)
		start := time.Now()
		got, err := remote.Image(ref, remote.WithContext(ctx), auth)
		if err != nil {
			b.Fatal(err)
		}
		readAll(b, got)
		return time.Since(start)
	}
	pull("cache/team/app")      // fills the cache
	time.Sleep(3 * time.Second) // the completion job stores the manifest
	pull("cache/team/app")
	// The freshness check's own cost: a HEAD of the tag straight to the
	// upstream, over a kept-alive connection.
	headUp := func() time.Duration {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+dist.Host+"/v2/team/app/manifests/v1", nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return time.Since(start)
	}
	headUp()
	b.ResetTimer()
	var local, cached, head time.Duration
	for i := 0; i < b.N; i++ {
		local += pull("library/app")
		cached += pull("cache/team/app")
		head += headUp()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(local), "local-ms/pull")
	b.ReportMetric(ms(cached), "cached-ms/pull")
	b.ReportMetric(ms(head), "upstream-head-ms")
	b.ReportMetric(float64(cached)/float64(local), "cached/local")
}

func readAll(b *testing.B, img v1.Image) {
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
