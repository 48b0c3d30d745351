package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/replication"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/harbortest"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/testenv"
)

// The tests of replication and proxy-cache projects run lading against
// real registries: Debian's docker-registry (CNCF Distribution) and a
// second lading serve. What arrived is read back with skopeo, which
// computes nothing with lading's code.

// createRegistry registers an endpoint through Harbor's API and returns
// its id.
func createRegistry(t testing.TB, srv *harbortest.Server, nm, typ, u, user, password string) int64 {
	t.Helper()
	r := &models.Registry{Name: nm, Type: typ, URL: u, Insecure: true}
	if user != "" {
		r.Credential = &models.RegistryCredential{Type: "basic", AccessKey: user, AccessSecret: password}
	}
	res, err := srv.Admin().Registry.CreateRegistry(context.Background(), &registry.CreateRegistryParams{Registry: r})
	if err != nil {
		t.Fatalf("creating registry %s (%s): %v", nm, u, err)
	}
	return lastID(t, res.Location)
}

func lastID(t testing.TB, location string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(path.Base(location), 10, 64)
	if err != nil {
		t.Fatalf("location %q: %v", location, err)
	}
	return id
}

// createPolicy creates a replication policy and returns its id.
func createPolicy(t testing.TB, srv *harbortest.Server, p *models.ReplicationPolicy) int64 {
	t.Helper()
	p.Enabled = true
	res, err := srv.Admin().Replication.CreateReplicationPolicy(context.Background(), &replication.CreateReplicationPolicyParams{Policy: p})
	if err != nil {
		t.Fatalf("creating policy %s: %v", p.Name, err)
	}
	return lastID(t, res.Location)
}

// runPolicy starts a manual execution of a policy and waits for its end.
func runPolicy(t testing.TB, srv *harbortest.Server, policy int64) *models.ReplicationExecution {
	t.Helper()
	ctx := context.Background()
	res, err := srv.Admin().Replication.StartReplication(ctx, &replication.StartReplicationParams{Execution: &models.StartReplicationExecution{PolicyID: policy}})
	if err != nil {
		t.Fatalf("starting policy %d: %v", policy, err)
	}
	return waitExecution(t, srv, lastID(t, res.Location))
}

// waitExecution waits for an execution to end.
func waitExecution(t testing.TB, srv *harbortest.Server, id int64) *models.ReplicationExecution {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := srv.Admin().Replication.GetReplicationExecution(context.Background(), &replication.GetReplicationExecutionParams{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if got.Payload.Status != "InProgress" && got.Payload.Status != "Pending" && got.Payload.Status != "Running" {
			return got.Payload
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %d still %s after 90s", id, got.Payload.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// taskLogs returns the tasks of an execution and their logs joined.
func taskLogs(t *testing.T, srv *harbortest.Server, execution int64) ([]*models.ReplicationTask, string) {
	t.Helper()
	ctx := context.Background()
	tasks, err := srv.Admin().Replication.ListReplicationTasks(ctx, &replication.ListReplicationTasksParams{ID: execution})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	for _, tk := range tasks.Payload {
		l, err := srv.Admin().Replication.GetReplicationLog(ctx, &replication.GetReplicationLogParams{ID: execution, TaskID: tk.ID})
		if err != nil {
			t.Fatalf("log of task %d: %v", tk.ID, err)
		}
		logs.WriteString(l.Payload)
	}
	return tasks.Payload, logs.String()
}

// skopeoDigest returns the digest of the manifest skopeo reads at ref
// (docker://HOST/REPO:TAG or @DIGEST), computed over the raw bytes it
// fetched, or "" when the registry does not have it.
func skopeoDigest(t *testing.T, ref, creds string) string {
	t.Helper()
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	args := []string{"inspect", "--raw", "--tls-verify=false"}
	if creds != "" {
		args = append(args, "--creds", creds)
	} else {
		args = append(args, "--no-creds")
	}
	out, err := exec.Command(skopeo, append(args, "docker://"+ref)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && (strings.Contains(string(ee.Stderr), "manifest unknown") || strings.Contains(string(ee.Stderr), "not found")) {
			return ""
		}
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, stderrOf(err))
	}
	sum := sha256.Sum256(out)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// signature is an OCI 1.1 referrer of subject (an accessory, as cosign
// and notation write them).
func signature(t *testing.T, subject v1.Image) v1.Image {
	t.Helper()
	m, err := subject.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := subject.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.dev.lading.signature.v1+json")
	sig, err = mutate.AppendLayers(sig, static.NewLayer([]byte("signature of "+d.String()), "application/vnd.dev.lading.signature.layer"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := subject.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Subject(sig, v1.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(raw))}).(v1.Image)
}

func pushByDigest(t *testing.T, srv *harbortest.Server, img v1.Image, repo string) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(srv.Host+"/"+repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: harbortest.AdminPassword})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return d
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestReplicationPushToDistribution replicates from lading to Debian's
// docker-registry with basic auth: filters by name and tag, a destination
// namespace with flattening, digests preserved, an accessory following its
// subject, a second run sending nothing, and the credentials in no log.
func TestReplicationPushToDistribution(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.Htpasswd)
	srv := loopbackServer(t)
	creds := dist.User + ":" + dist.Password

	app1, app2, other := harbortest.Image(t), harbortest.Image(t), harbortest.Image(t)
	for _, p := range []struct {
		img  v1.Image
		repo string
		tag  string
	}{{app1, "library/app", "v1"}, {app2, "library/app", "v2"}, {other, "library/other", "v1"}} {
		if err := srv.Push(ctx, p.img, p.repo, p.tag, "admin", harbortest.AdminPassword); err != nil {
			t.Fatal(err)
		}
	}
	sig := signature(t, app1)
	sigDigest := pushByDigest(t, srv, sig, "library/app")

	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, dist.User, dist.Password)
	got, err := srv.Admin().Registry.GetRegistry(ctx, &registry.GetRegistryParams{ID: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got.Payload.Credential == nil || got.Payload.Credential.AccessSecret != "*****" {
		t.Errorf("GET /registries/%d shows the secret as %+v, want *****", reg, got.Payload.Credential)
	}
	var sealed string
	if err := srv.Core.DB.QueryRow(ctx, `SELECT access_secret FROM registries WHERE id = ?`, reg).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if sealed == "" || strings.Contains(sealed, dist.Password) {
		t.Errorf("the registry's secret is stored as %q, not sealed", sealed)
	}
	one := int8(1)
	policy := createPolicy(t, srv, &models.ReplicationPolicy{
		Name:                      "to-distribution",
		DestRegistry:              &models.Registry{ID: reg},
		DestNamespace:             "mirror",
		DestNamespaceReplaceCount: &one,
		Filters: []*models.ReplicationFilter{
			{Type: "name", Value: "library/app"},
			{Type: "tag", Value: "v1", Decoration: "matches"},
		},
		Trigger: &models.ReplicationTrigger{Type: "manual"},
	})

	if _, err := srv.Admin().Registry.DeleteRegistry(ctx, &registry.DeleteRegistryParams{ID: reg}); err == nil {
		t.Error("a registry that a policy names was deleted")
	}
	ex := runPolicy(t, srv, policy)
	tasks, logs := taskLogs(t, srv, ex.ID)
	if ex.Status != "Succeed" || ex.Succeed != 1 || ex.Total != 1 {
		t.Fatalf("execution: %+v\nlogs:\n%s", ex, logs)
	}
	if len(tasks) != 1 || tasks[0].SrcResource == "" || tasks[0].Operation != "copy" {
		t.Errorf("tasks: %+v", tasks)
	}
	for _, c := range []struct {
		ref, want string
	}{
		{"mirror/app:v1", digestOf(t, app1)},
		{"mirror/app@" + sigDigest.String(), sigDigest.String()},
		{"mirror/app:v2", ""},
		{"mirror/other:v1", ""},
	} {
		if got := skopeoDigest(t, dist.Host+"/"+c.ref, creds); got != c.want {
			t.Errorf("docker-registry's %s is %q, want %q", c.ref, got, c.want)
		}
	}

	// A second run finds everything there and sends nothing.
	ex = runPolicy(t, srv, policy)
	_, logs = taskLogs(t, srv, ex.ID)
	if ex.Status != "Succeed" {
		t.Fatalf("second execution: %+v\nlogs:\n%s", ex, logs)
	}
	if !strings.Contains(logs, "blobs_sent=0") || !strings.Contains(logs, "already at the destination") {
		t.Errorf("the second run sent something again:\n%s", logs)
	}
	if strings.Contains(srv.Logs.String(), dist.Password) || strings.Contains(logs, dist.Password) {
		t.Error("the endpoint's password is in a log")
	}
}

// TestReplicationBetweenLadings pulls from a second lading serve (type
// harbor) and pushes to it on events: a push to the source lading appears
// at the destination without anyone starting the policy.
func TestReplicationBetweenLadings(t *testing.T) {
	ctx := context.Background()
	a, b := loopbackServer(t), loopbackServer(t)
	creds := "admin:" + harbortest.AdminPassword

	img := harbortest.Image(t)
	if err := b.Push(ctx, img, "library/src", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	regB := createRegistry(t, a, "lading-b", "harbor", b.URL, "admin", harbortest.AdminPassword)
	if _, err := a.Admin().Registry.PingRegistry(ctx, &registry.PingRegistryParams{Registry: &models.RegistryPing{ID: &regB}}); err != nil {
		t.Errorf("ping: %v", err)
	}

	pull := createPolicy(t, a, &models.ReplicationPolicy{
		Name:        "from-b",
		SrcRegistry: &models.Registry{ID: regB},
		Filters:     []*models.ReplicationFilter{{Type: "name", Value: "library/**"}},
		Trigger:     &models.ReplicationTrigger{Type: "manual"},
	})
	ex := runPolicy(t, a, pull)
	if ex.Status != "Succeed" {
		_, logs := taskLogs(t, a, ex.ID)
		t.Fatalf("pull execution: %+v\n%s", ex, logs)
	}
	want := skopeoDigest(t, b.Host+"/library/src:v1", creds)
	if got := skopeoDigest(t, a.Host+"/library/src:v1", creds); got != want || want != digestOf(t, img) {
		t.Errorf("pulled library/src:v1 is %s at a, %s at b, pushed %s", got, want, digestOf(t, img))
	}

	createPolicy(t, a, &models.ReplicationPolicy{
		Name:              "to-b-on-push",
		DestRegistry:      &models.Registry{ID: regB},
		Filters:           []*models.ReplicationFilter{{Type: "name", Value: "library/ev"}},
		Trigger:           &models.ReplicationTrigger{Type: "event_based"},
		ReplicateDeletion: true,
	})
	ev := harbortest.Image(t)
	if err := a.Push(ctx, ev, "library/ev", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for skopeoDigest(t, b.Host+"/library/ev:v1", creds) != digestOf(t, ev) {
		if time.Now().After(deadline) {
			t.Fatal("the event-based policy did not replicate library/ev:v1 within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Deleting the artifact at a deletes it at b (replicate_deletion).
	evRef, err := name.ParseReference(a.Host+"/library/ev@"+digestOf(t, ev), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(evRef, remote.WithAuth(&authn.Basic{Username: "admin", Password: harbortest.AdminPassword})); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for skopeoDigest(t, b.Host+"/library/ev@"+digestOf(t, ev), creds) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the deletion of library/ev was not replicated within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReplicationStop stops a run that a bandwidth limit of 1 KB/s keeps
// busy: the execution ends Stopped and the destination holds no
// manifest of the half-sent artifact.
func TestReplicationStop(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	srv := loopbackServer(t)
	img, err := random.Image(256<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Push(ctx, img, "library/big", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	reg := createRegistry(t, srv, "distribution", "docker-registry", "http://"+dist.Host, "", "")
	speed := int32(1)
	policy := createPolicy(t, srv, &models.ReplicationPolicy{
		Name: "slow", DestRegistry: &models.Registry{ID: reg}, Speed: &speed,
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/big"}},
	})
	res, err := srv.Admin().Replication.StartReplication(ctx, &replication.StartReplicationParams{Execution: &models.StartReplicationExecution{PolicyID: policy}})
	if err != nil {
		t.Fatal(err)
	}
	id := lastID(t, res.Location)
	// Wait for the task to run, then stop.
	deadline := time.Now().Add(60 * time.Second)
	for {
		tasks, err := srv.Admin().Replication.ListReplicationTasks(ctx, &replication.ListReplicationTasksParams{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks.Payload) == 1 && tasks.Payload[0].Status == "InProgress" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running task within 60s: %+v", tasks.Payload)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := srv.Admin().Replication.StopReplication(ctx, &replication.StopReplicationParams{ID: id}); err != nil {
		t.Fatal(err)
	}
	ex := waitExecution(t, srv, id)
	if ex.Status != "Stopped" {
		t.Errorf("stopped execution is %s, want Stopped", ex.Status)
	}
	if d := skopeoDigest(t, dist.Host+"/library/big:v1", ""); d != "" {
		t.Errorf("the destination has library/big:v1 (%s) after a stop mid-copy", d)
	}
}

// TestReplicationPolicyBadInput: bad policies are refused with 400 and a
// reason, before anything runs.
func TestReplicationPolicyBadInput(t *testing.T) {
	srv := loopbackServer(t)
	other := loopbackServer(t)
	reg := createRegistry(t, srv, "other", "harbor", other.URL, "admin", harbortest.AdminPassword)
	dest := &models.Registry{ID: reg}
	for _, c := range []struct {
		name string
		p    models.ReplicationPolicy
	}{
		{"invalid cron", models.ReplicationPolicy{DestRegistry: dest, Trigger: &models.ReplicationTrigger{Type: "scheduled", TriggerSettings: &models.ReplicationTriggerSettings{Cron: "0 61 * * * *"}}}},
		{"cron every minute", models.ReplicationPolicy{DestRegistry: dest, Trigger: &models.ReplicationTrigger{Type: "scheduled", TriggerSettings: &models.ReplicationTriggerSettings{Cron: "0 * * * * *"}}}},
		{"empty cron", models.ReplicationPolicy{DestRegistry: dest, Trigger: &models.ReplicationTrigger{Type: "scheduled"}}},
		{"event-based pull", models.ReplicationPolicy{SrcRegistry: dest, Trigger: &models.ReplicationTrigger{Type: "event_based"}}},
		{"unknown trigger", models.ReplicationPolicy{DestRegistry: dest, Trigger: &models.ReplicationTrigger{Type: "sometimes"}}},
		{"no registry", models.ReplicationPolicy{}},
		{"both registries", models.ReplicationPolicy{SrcRegistry: dest, DestRegistry: dest}},
		{"bad pattern", models.ReplicationPolicy{DestRegistry: dest, Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/[a"}}}},
		{"unknown filter", models.ReplicationPolicy{DestRegistry: dest, Filters: []*models.ReplicationFilter{{Type: "colour", Value: "red"}}}},
		{"bad namespace", models.ReplicationPolicy{DestRegistry: dest, DestNamespace: "../up"}},
	} {
		p := c.p
		p.Name = strings.ReplaceAll(c.name, " ", "-")
		_, err := srv.Admin().Replication.CreateReplicationPolicy(context.Background(), &replication.CreateReplicationPolicyParams{Policy: &p})
		var bad *replication.CreateReplicationPolicyBadRequest
		if !errors.As(err, &bad) {
			t.Errorf("%s: %v, want 400", c.name, err)
		}
	}
	var unknown *replication.CreateReplicationPolicyBadRequest
	_, err := srv.Admin().Replication.CreateReplicationPolicy(context.Background(), &replication.CreateReplicationPolicyParams{Policy: &models.ReplicationPolicy{Name: "nowhere", DestRegistry: &models.Registry{ID: 9999}}})
	if err == nil {
		t.Error("a policy naming a registry that does not exist was accepted")
	} else if errors.As(err, &unknown) {
		t.Logf("unknown registry: %s", unknown.Payload.Errors[0].Message)
	}
}

// TestRegistryEndpointOutbound: a registry URL on loopback, a private
// network or the cloud metadata address is refused unless
// outbound.allow lets it through.
func TestRegistryEndpointOutbound(t *testing.T) {
	srv := harbortest.Start(t)
	for _, u := range []string{"http://127.0.0.1:5000", "http://10.1.2.3", "http://169.254.169.254", "http://[::1]:5000"} {
		_, err := srv.Admin().Registry.CreateRegistry(context.Background(), &registry.CreateRegistryParams{
			Registry: &models.Registry{Name: "r" + strconv.Itoa(len(u)), Type: "docker-registry", URL: u}})
		var bad *registry.CreateRegistryBadRequest
		if !errors.As(err, &bad) {
			t.Errorf("registry at %s: %v, want 400", u, err)
			continue
		}
		if msg := fmt.Sprint(bad.Payload.Errors[0].Message); !strings.Contains(msg, "outbound") {
			t.Errorf("registry at %s refused with %q, which does not say how to allow it", u, msg)
		}
	}
}

// flaky is an upstream's front the test controls: it passes requests to
// the registry, answers 429 or drops the connection.
type flaky struct {
	*httptest.Server
	mode atomic.Int32 // 0 pass, 1 answer 429, 2 down
	// blobs counts the blob GETs that reached the upstream.
	blobs atomic.Int32
}

const (
	pass = iota
	tooMany
	down
)

func newFlaky(t *testing.T, host string) *flaky {
	f := &flaky{}
	u, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(u)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch f.mode.Load() {
		case tooMany:
			w.Header().Set("Retry-After", "60")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limit"}]}`, http.StatusTooManyRequests)
		case down:
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
			}
		default:
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				f.blobs.Add(1)
			}
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// TestProxyCacheProject: a project created with a registry_id pulls
// through from docker-registry, serves its cached copy when the upstream
// answers 429 or is down (and says so in the log), and refuses pushes.
func TestProxyCacheProject(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	up := newFlaky(t, dist.Host)
	srv := loopbackServer(t)

	img := harbortest.Image(t)
	ref, err := name.ParseReference(dist.Host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	reg := createRegistry(t, srv, "upstream", "docker-registry", up.URL, "", "")
	if _, err := srv.Admin().Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: "cache", RegistryID: &reg}}); err != nil {
		t.Fatal(err)
	}
	creds := "admin:" + harbortest.AdminPassword
	want := digestOf(t, img)
	// Cached artifacts take the path of a push: the project's webhooks
	// (and scan on push) see them.
	recv := newHookReceiver(t)
	hookTo(t, srv, "cache", recv.URL+"/hook", "PUSH_ARTIFACT")

	pullAll := func(stage string) {
		t.Helper()
		got, err := srv.Pull(ctx, "cache/team/app:v1", "admin", harbortest.AdminPassword)
		if err != nil {
			t.Fatalf("%s: pull: %v", stage, err)
		}
		if d := digestOf(t, got); d != want {
			t.Fatalf("%s: pulled %s, want %s", stage, d, want)
		}
		layers, err := got.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers { // reading verifies each blob
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			if _, err := io.ReadAll(rc); err != nil {
				t.Fatalf("%s: reading a layer: %v", stage, err)
			}
		}
	}
	pullAll("first pull")
	if d := skopeoDigest(t, srv.Host+"/cache/team/app:v1", creds); d != want {
		t.Fatalf("skopeo reads %s through the cache, want %s", d, want)
	}
	// Wait for the completion job to store the manifest itself.
	deadline := time.Now().Add(60 * time.Second)
	for {
		arts, _, err := srv.Core.Artifacts.Artifacts(ctx, srv.AdminSubject(t), lproject.Ref{Name: "cache"}, "team/app", query.Query{}, query.Page{Number: 1, Size: 10}, true)
		if err == nil && len(arts) == 1 && arts[0].Digest == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cached artifact was not stored within 60s: %v %v", arts, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := recv.next(t, "PUSH_ARTIFACT"); d.payload.EventData == nil || len(d.payload.EventData.Resources) == 0 || d.payload.EventData.Resources[0].Digest != want {
		t.Errorf("the cached artifact's PUSH_ARTIFACT event: %s", d.raw)
	}

	// A later pull checks the tag's freshness upstream and reads the blobs
	// from the cache.
	before := up.blobs.Load()
	pullAll("cached pull")
	if n := up.blobs.Load() - before; n != 0 {
		t.Errorf("a cached pull read %d blobs from the upstream", n)
	}

	up.mode.Store(tooMany)
	pullAll("upstream answers 429")
	up.mode.Store(down)
	pullAll("upstream down")
	if l := srv.Logs.String(); !strings.Contains(l, "serving the cached copy") {
		t.Errorf("the log does not say the cached copy was served:\n%s", l)
	}

	if _, err := srv.Admin().Registry.DeleteRegistry(ctx, &registry.DeleteRegistryParams{ID: reg}); err == nil {
		t.Error("the upstream of a proxy-cache project was deleted")
	}

	up.mode.Store(pass)
	err = srv.Push(ctx, harbortest.Image(t), "cache/team/app", "mine", "admin", harbortest.AdminPassword)
	if err == nil {
		t.Fatal("a push into a proxy-cache project was accepted")
	}
}

// TestReplicationResumesAfterRestart: lading goes away while a task is
// sending a blob (the destination holds the upload); a lading on the same
// root takes the task over and finishes it, and the destination ends with
// the artifact, digest unchanged.
func TestReplicationResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	dist := registrytest.Start(t, registrytest.None)
	u, _ := url.Parse("http://" + dist.Host)
	rp := httputil.NewSingleHostReverseProxy(u)
	release := make(chan struct{})
	var held atomic.Int32
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			held.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer gate.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	root := t.TempDir()
	config := harbortest.WithConfig(func(c *server.Config) {
		c.Outbound.Allow = []string{"127.0.0.0/8"}
		c.Jobs.Poll = 50 * time.Millisecond
		c.Jobs.Lease = 3 * time.Second
	})
	a := harbortest.Start(t, harbortest.WithRoot(root), config)
	img := harbortest.Image(t)
	if err := a.Push(ctx, img, "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	reg := createRegistry(t, a, "gated", "docker-registry", gate.URL, "", "")
	policy := createPolicy(t, a, &models.ReplicationPolicy{
		Name: "resumed", DestRegistry: &models.Registry{ID: reg},
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "library/app"}},
	})
	res, err := a.Admin().Replication.StartReplication(ctx, &replication.StartReplicationParams{Execution: &models.StartReplicationExecution{PolicyID: policy}})
	if err != nil {
		t.Fatal(err)
	}
	id := lastID(t, res.Location)
	deadline := time.Now().Add(60 * time.Second)
	for held.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the task sent no blob within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Stop()

	b := harbortest.Start(t, harbortest.WithRoot(root), config)
	close(release)
	ex := waitExecution(t, b, id)
	if ex.Status != "Succeed" {
		_, logs := taskLogs(t, b, id)
		t.Fatalf("the execution after the restart: %+v\n%s", ex, logs)
	}
	if d := skopeoDigest(t, dist.Host+"/library/app:v1", ""); d != digestOf(t, img) {
		t.Errorf("the destination's library/app:v1 is %q, want %s", d, digestOf(t, img))
	}
}
