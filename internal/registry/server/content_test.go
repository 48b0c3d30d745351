package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
)

// imageSize is what Harbor counts as an image's size: the manifest, the
// config and the layers.
func imageSize(t *testing.T, img v1.Image) int64 {
	m, _ := img.RawManifest()
	mf, _ := img.Manifest()
	n := int64(len(m)) + mf.Config.Size
	for _, l := range mf.Layers {
		n += l.Size
	}
	return n
}

func TestProjectsAndArtifacts(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()
	a := srv.Admin()
	if _, err := a.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "alice", Email: "alice@example.com", Realname: "Alice", Password: password})); err != nil {
		t.Fatal(err)
	}
	alice := srv.API("alice", password)
	if _, err := alice.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "team"})); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Project.HeadProject(ctx, project.NewHeadProjectParams().WithProjectName("team")); err != nil {
		t.Errorf("HEAD team: %v", err)
	}
	if _, err := alice.Project.HeadProject(ctx, project.NewHeadProjectParams().WithProjectName("nope")); statusOf(err) != 404 {
		t.Errorf("HEAD nope: %v", err)
	}
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "team/app", "v1", "alice", password); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	arts, err := alice.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("team").WithRepositoryName("app"))
	if err != nil || arts.XTotalCount != 1 {
		t.Fatalf("artifacts: %+v %v", arts, err)
	}
	art := arts.Payload[0]
	if art.Digest != d.String() || art.Type != "IMAGE" || art.Size != imageSize(t, img) || len(art.Tags) != 1 || art.Tags[0].Name != "v1" ||
		art.MediaType != "application/vnd.docker.container.image.v1+json" || time.Since(time.Time(art.PushTime)) > time.Minute {
		t.Errorf("artifact: %+v", art)
	}
	// A pull is recorded within a second or so.
	if _, err := srv.Pull(ctx, "team/app:v1", "alice", password); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := alice.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("team").WithRepositoryName("app").WithReference("v1"))
		if err == nil && !time.Time(got.Payload.PullTime).IsZero() && time.Time(got.Payload.PullTime).Year() > 2000 && !time.Time(got.Payload.Tags[0].PullTime).IsZero() && time.Time(got.Payload.Tags[0].PullTime).Year() > 2000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull time not recorded: %+v %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	repo, _ := alice.Repository.GetRepository(ctx, repository.NewGetRepositoryParams().WithProjectName("team").WithRepositoryName("app"))
	if repo.Payload.PullCount < 1 || repo.Payload.ArtifactCount != 1 || repo.Payload.Name != "team/app" {
		t.Errorf("repository: %+v", repo.Payload)
	}

	// An index lists its references with their platforms; its children
	// cannot be deleted while it holds them.
	child := harbortest.Image(t)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: child, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	ref, _ := name.ParseReference(srv.Host+"/team/multi:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(authOf("alice", password))); err != nil {
		t.Fatal(err)
	}
	ig, err := alice.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("team").WithRepositoryName("multi").WithReference("v1"))
	if err != nil || len(ig.Payload.References) != 1 || ig.Payload.References[0].Platform.Architecture != "arm64" || ig.Payload.References[0].Platform.Variant != "v8" || ig.Payload.References[0].ChildID == 0 {
		t.Fatalf("index: %+v %v", ig, err)
	}
	cd, _ := child.Digest()
	if _, err := alice.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("team").WithRepositoryName("multi").WithReference(cd.String())); statusOf(err) != 412 {
		t.Errorf("delete a child of an index: %v", err)
	}
	if _, err := alice.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("team").WithRepositoryName("multi").WithReference("v1")); err != nil {
		t.Errorf("delete the index: %v", err)
	}
	if left, _ := alice.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("team").WithRepositoryName("multi")); left.XTotalCount != 0 {
		t.Errorf("the index's untagged children stay: %d", left.XTotalCount)
	}

	// Copy, and tags.
	if _, err := alice.Artifact.CopyArtifact(ctx, artifact.NewCopyArtifactParams().WithProjectName("team").WithRepositoryName("sub/copy").WithFrom("team/app:v1")); err != nil {
		t.Fatal(err)
	}
	cp, err := alice.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("team").WithRepositoryName("sub%2Fcopy").WithReference("v1"))
	if err != nil || cp.Payload.Digest != d.String() || cp.Payload.RepositoryName != "team/sub/copy" {
		t.Errorf("copy: %+v %v", cp, err)
	}
	if _, err := srv.Pull(ctx, "team/sub/copy:v1", "alice", password); err != nil {
		t.Errorf("pull the copy: %v", err)
	}
	tagOp := func(name string) error {
		_, err := alice.Artifact.CreateTag(ctx, artifact.NewCreateTagParams().WithProjectName("team").WithRepositoryName("app").WithReference(d.String()).WithTag(&models.Tag{Name: name}))
		return err
	}
	if err := tagOp("extra"); err != nil {
		t.Fatal(err)
	}
	if err := tagOp("extra"); statusOf(err) != 409 {
		t.Errorf("duplicate tag: %v", err)
	}
	if err := tagOp("-bad"); statusOf(err) != 400 {
		t.Errorf("bad tag: %v", err)
	}
	tags, _ := alice.Artifact.ListTags(ctx, artifact.NewListTagsParams().WithProjectName("team").WithRepositoryName("app").WithReference("v1"))
	if tags.XTotalCount != 2 {
		t.Errorf("tags: %d", tags.XTotalCount)
	}
	if _, err := srv.Pull(ctx, "team/app:extra", "alice", password); err != nil {
		t.Errorf("pull by the new tag: %v", err)
	}
	if _, err := alice.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName("team").WithRepositoryName("app").WithReference("v1").WithTagName("extra")); err != nil {
		t.Errorf("delete tag: %v", err)
	}
	if _, err := srv.Pull(ctx, "team/app:extra", "alice", password); err == nil {
		t.Error("the deleted tag still pulls")
	}
	// q on artifacts: tagged, untagged, by tag.
	for q, want := range map[string]int64{"tags=*": 1, "tags=nil": 0, "tags=v1": 1, "tags=~v": 1, "tags=nope": 0, "type=IMAGE": 1} {
		list, err := alice.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("team").WithRepositoryName("app").WithQ(&q))
		if err != nil || list.XTotalCount != want {
			t.Errorf("q=%s: %v %v", q, list, err)
		}
	}

	// The summary, and a project holding repositories cannot go.
	sum, err := alice.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID("team"))
	if err != nil || sum.Payload.RepoCount != 3 || sum.Payload.ProjectAdminCount != 1 || sum.Payload.Quota == nil || sum.Payload.Quota.Used["storage"] <= 0 {
		t.Errorf("summary: %+v %v", sum, err)
	}
	if _, err := alice.Project.DeleteProject(ctx, project.NewDeleteProjectParams().WithProjectNameOrID("team")); statusOf(err) != 412 {
		t.Errorf("delete a project with repositories: %v", err)
	}
	for _, r := range []string{"app", "multi", "sub%2Fcopy"} {
		if _, err := alice.Repository.DeleteRepository(ctx, repository.NewDeleteRepositoryParams().WithProjectName("team").WithRepositoryName(r)); err != nil {
			t.Errorf("delete repository %s: %v", r, err)
		}
	}
	del, _ := alice.Project.GetProjectDeletable(ctx, project.NewGetProjectDeletableParams().WithProjectNameOrID("team"))
	if !del.Payload.Deletable {
		t.Errorf("deletable: %+v", del.Payload)
	}
	if _, err := alice.Project.DeleteProject(ctx, project.NewDeleteProjectParams().WithProjectNameOrID("team")); err != nil {
		t.Errorf("delete the empty project: %v", err)
	}
	// Only administrators create projects under adminonly.
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{ProjectCreationRestriction: ptr("adminonly")})); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "again"})); statusOf(err) != 403 {
		t.Errorf("adminonly: %v", err)
	}
}

// blob pushes content monolithically into repo with basic credentials.
func blob(srv *harbortest.Server, repo string, content []byte) (int, string, error) {
	sum := sha256.Sum256(content)
	req, _ := http.NewRequest("POST", srv.URL+"/v2/"+repo+"/blobs/uploads/?digest=sha256:"+hex.EncodeToString(sum[:]), bytes.NewReader(content))
	req.SetBasicAuth(admin, adminPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// TestQuota: a project's blobs count once; a push that would exceed the
// limit is refused with DENIED and the figures; usage stays exact under
// concurrent pushes, and is recounted after garbage collection.
func TestQuota(t *testing.T) {
	srv := harbortest.Start(t, harbortest.WithConfig(func(c *serverConfig) { grace := time.Nanosecond; c.GC.Grace = &grace }))
	ctx := context.Background()
	a := srv.Admin()
	limit := int64(100 << 10)
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "q", StorageLimit: &limit})); err != nil {
		t.Fatal(err)
	}
	info, _ := srv.Core.Projects.Resolve(ctx, projectRef(proj{name: "q"}))
	used := func() int64 {
		q, err := a.Quota.GetQuota(ctx, quota.NewGetQuotaParams().WithID(info.ID))
		if err != nil {
			t.Fatal(err)
		}
		if q.Payload.Hard["storage"] != limit {
			t.Errorf("hard %v", q.Payload.Hard)
		}
		return q.Payload.Used["storage"]
	}
	layer := bytes.Repeat([]byte("a"), 30<<10)
	for _, repo := range []string{"q/one", "q/two", "q/one"} {
		if st, body, err := blob(srv, repo, layer); err != nil || st != 201 {
			t.Fatalf("push %s: %d %s %v", repo, st, body, err)
		}
	}
	if u := used(); u != 30<<10 {
		t.Errorf("one blob in two repositories counts once: used %d", u)
	}
	st, body, _ := blob(srv, "q/one", bytes.Repeat([]byte("b"), 80<<10))
	if st != 403 || !strings.Contains(body, `"DENIED"`) || !strings.Contains(body, "quota exceeded") ||
		!strings.Contains(body, fmt.Sprint(30<<10)) || !strings.Contains(body, fmt.Sprint(limit)) || !strings.Contains(body, fmt.Sprint(80<<10)) {
		t.Errorf("over quota: %d %s", st, body)
	}
	// Concurrent pushes of distinct blobs: never over the limit, and the
	// usage is what a recount finds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 24 {
		wg.Go(func() {
			st, body, err := blob(srv, fmt.Sprintf("q/c%d", i%3), bytes.Repeat([]byte{byte('c' + i)}, 10<<10))
			if err != nil || (st != 201 && st != 403) {
				t.Errorf("concurrent push %d: %d %s %v", i, st, body, err)
			}
			if st == 201 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	u := used()
	if u > limit || u != int64(30<<10+ok*(10<<10)) || ok != 7 {
		t.Errorf("after concurrent pushes: used %d, limit %d, %d pushed", u, limit, ok)
	}
	if err := srv.Core.Projects.Recount(ctx, srv.Meta.ForEachLink); err != nil {
		t.Fatal(err)
	}
	if after := used(); after != u {
		t.Errorf("recount %d, incremental %d", after, u)
	}
	// Unreferenced blobs go at garbage collection, and with them the
	// usage.
	if _, err := srv.CollectGarbage(ctx, false); err != nil {
		t.Fatal(err)
	}
	if after := used(); after != 0 {
		t.Errorf("used after garbage collection: %d", after)
	}
}

type serverConfig = server.Config

func authOf(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}
