package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
)

// TestReplicas runs two lading serve processes' worth of servers on one
// real PostgreSQL and one storage root: a user created through one logs
// in, gets a token and pushes through the other; sessions, tokens, the
// login throttle and settings are shared.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dbURL := pgtest.Start(t).NewDatabase(t)
	root := t.TempDir()
	a := harbortest.Start(t, harbortest.WithDatabase(dbURL), harbortest.WithRoot(root))
	b := harbortest.Start(t, harbortest.WithDatabase(dbURL), harbortest.WithRoot(root))
	ctx := context.Background()
	if _, err := a.Admin().User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "carol", Email: "carol@example.com", Realname: "Carol", Password: password})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admin().Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "shared"})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admin().Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("shared").WithProjectMember(&models.ProjectMember{RoleID: 2, MemberUser: &models.UserEntity{Username: "carol"}})); err != nil {
		t.Fatal(err)
	}

	// Carol logs in through b; the session works on a too.
	resp, err := http.PostForm(b.URL+"/c/login", url.Values{"principal": {"carol"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == "sid" {
			sid = c.Value
		}
	}
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("login through b: %d", resp.StatusCode)
	}
	if r := do(t, a, "GET", "/api/v2.0/users/current", "", "", "", "Cookie: sid="+sid); r.status != 200 {
		t.Errorf("b's session on a: %d %s", r.status, r.body)
	}
	// A token from b opens a's registry.
	r := do(t, b, "GET", "/service/token?service=harbor-registry&scope=repository:shared/app:pull,push", "", "carol", password)
	var tok struct{ Token string }
	json.Unmarshal([]byte(r.body), &tok)
	if r.status != 200 || tok.Token == "" {
		t.Fatalf("token from b: %d %s", r.status, r.body)
	}
	if r := do(t, a, "POST", "/v2/shared/app/blobs/uploads/", "", "", "", "Authorization: Bearer "+tok.Token); r.status != 202 {
		t.Errorf("b's token on a: %d %s", r.status, r.body)
	}
	// Carol pushes through b; a serves it.
	img := harbortest.Image(t)
	if err := b.Push(ctx, img, "shared/app", "v1", "carol", password); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pull(ctx, "shared/app:v1", "carol", password); err != nil {
		t.Errorf("pull through a: %v", err)
	}
	arts, err := a.API("carol", password).Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("shared").WithRepositoryName("app"))
	if err != nil || arts.XTotalCount != 1 {
		t.Errorf("artifacts through a: %+v %v", arts, err)
	}
	// Failed logins through a block the user on b.
	for range 6 {
		do(t, a, "GET", "/api/v2.0/users/current", "", "carol", "wrong")
	}
	if r := do(t, b, "GET", "/api/v2.0/users/current", "", "carol", password); r.status != 429 {
		t.Errorf("throttled through b: %d", r.status)
	}
	// A setting changed through a reaches b within a few seconds.
	if _, err := a.Admin().Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{BannerMessage: ptr("maintenance tonight")})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := b.API("", "").Systeminfo.GetSystemInfo(ctx, systeminfo.NewGetSystemInfoParams())
		if err == nil && info.Payload.BannerMessage != nil && *info.Payload.BannerMessage == "maintenance tonight" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's banner: %+v %v", info, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
