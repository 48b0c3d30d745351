package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/harbortest"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/registrytest"
)

// TestProxyCacheSlowUpstream: an upstream that answers the freshness
// check later than its timeout does not hold the pull: the cached copy is
// served, the log says why, and the slow request is abandoned.
func TestProxyCacheSlowUpstream(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	u, _ := url.Parse("http://" + dist.Host)
	rp := httputil.NewSingleHostReverseProxy(u)
	var slow atomic.Bool
	var held, abandoned atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && strings.Contains(r.URL.Path, "/manifests/") {
			held.Add(1)
			select {
			case <-r.Context().Done(): // lading gave up on it
				abandoned.Add(1)
				return
			case <-time.After(time.Minute):
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	srv := harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) {
		c.Outbound.Allow = []string{"127.0.0.0/8"}
		c.Jobs.Poll = 50 * time.Millisecond
		c.ProxyCache.FreshnessTimeout = 300 * time.Millisecond
	}))

	img := harbortest.Image(t)
	want := digestOfImage(t, img)
	up, _ := name.ParseReference(dist.Host+"/team/app:v1", name.Insecure)
	if err := remote.Write(up, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Admin().Registry.CreateRegistry(ctx, &registry.CreateRegistryParams{Registry: &models.Registry{Name: "slow", Type: "docker-registry", URL: front.URL}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := strconv.ParseInt(path.Base(res.Location), 10, 64)
	if err != nil {
		t.Fatalf("registry location %q: %v", res.Location, err)
	}
	if _, err := srv.Admin().Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: "cache", RegistryID: &reg}}); err != nil {
		t.Fatal(err)
	}
	pull := func(stage string) {
		t.Helper()
		// A hang fails the test instead of holding it.
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		got, err := srv.Pull(pctx, "cache/team/app:v1", "admin", harbortest.AdminPassword)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if d := digestOfImage(t, got); d != want {
			t.Fatalf("%s: pulled %s, want %s", stage, d, want)
		}
	}
	pull("first pull")
	deadline := time.Now().Add(time.Minute)
	for {
		arts, _, err := srv.Core.Artifacts.Artifacts(ctx, srv.AdminSubject(t), lproject.Ref{Name: "cache"}, "team/app", query.Query{}, query.Page{Number: 1, Size: 10}, true)
		if err == nil && len(arts) == 1 && arts[0].Digest == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cached artifact was not stored within a minute: %v %v", arts, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	slow.Store(true)
	pull("pull while the upstream is slow")
	if held.Load() == 0 {
		t.Fatal("the freshness check never reached the upstream")
	}
	logs := srv.Logs.String()
	for _, want := range []string{"the upstream did not answer the freshness check; serving the cached copy", "no answer within 300ms"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); abandoned.Load() < held.Load() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if a, h := abandoned.Load(), held.Load(); a != h {
		t.Errorf("%d of %d slow freshness checks were left open", h-a, h)
	}
}

// digestOfImage is an image's digest.
func digestOfImage(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestProxyCacheTagMoved: a tag moved upstream after it was cached is
// fetched again at the next pull (the freshness check names another
// digest), and the cache's tag follows once the new artifact is stored.
func TestProxyCacheTagMoved(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)
	res, err := srv.Admin().Registry.CreateRegistry(ctx, &registry.CreateRegistryParams{Registry: &models.Registry{Name: "up", Type: "docker-registry", URL: "http://" + dist.Host}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := strconv.ParseInt(path.Base(res.Location), 10, 64)
	if err != nil {
		t.Fatalf("registry location %q: %v", res.Location, err)
	}
	if _, err := srv.Admin().Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: "cache", RegistryID: &reg}}); err != nil {
		t.Fatal(err)
	}
	up, _ := name.ParseReference(dist.Host+"/team/app:v1", name.Insecure)
	for i, img := range []v1.Image{harbortest.Image(t), harbortest.Image(t)} {
		if err := remote.Write(up, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		want := digestOfImage(t, img)
		got, err := srv.Pull(ctx, "cache/team/app:v1", "admin", harbortest.AdminPassword)
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if d := digestOfImage(t, got); d != want {
			t.Fatalf("pull %d: got %s, want %s (the tag upstream)", i, d, want)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			arts, _, err := srv.Core.Artifacts.Artifacts(ctx, srv.AdminSubject(t), lproject.Ref{Name: "cache"}, "team/app", query.Query{}, query.Page{Number: 1, Size: 10}, true)
			tagged := ""
			for _, a := range arts {
				for _, tg := range a.Tags {
					if tg.Name == "v1" {
						tagged = a.Digest
					}
				}
			}
			if err == nil && tagged == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pull %d: the cache's v1 is %q a minute later, want %s (%v)", i, tagged, want, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
