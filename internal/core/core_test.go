package core_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/goharbor/go-client/pkg/harbor"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

func client(t *testing.T, srv *httptest.Server, auth runtime.ClientAuthInfoWriter) *v2.HarborAPI {
	u, _ := url.Parse(srv.URL + "/api/v2.0")
	c := &harbor.Config{URL: u, Transport: http.DefaultTransport, AuthInfo: auth}
	return v2.New(c.ToV2Config())
}

func TestCoreSmoke(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.SQLite(t, core.Migrations())
	c, err := core.New(ctx, db, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bootstrap(ctx, "Harbor12345", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", c.API)
	mux.Handle("/c/", c.API)
	mux.Handle("/service/token", c.TokenService)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	admin := client(t, srv, httptransport.BasicAuth("admin", "Harbor12345"))
	_, err = admin.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "alice", Email: "a@example.com", Realname: "Alice", Password: "Alice12345"}))
	if err != nil {
		t.Fatal(err)
	}
	alice := client(t, srv, httptransport.BasicAuth("alice", "Alice12345"))
	created, err := alice.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "team"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("location %s", created.Location)
	list, err := alice.Project.ListProjects(ctx, project.NewListProjectsParams())
	if err != nil {
		t.Fatal(err)
	}
	if list.XTotalCount != 2 || len(list.Payload) != 2 {
		t.Fatalf("projects: %d %+v", list.XTotalCount, list.Payload)
	}
	got, err := alice.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("team"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Payload.Name != "team" || got.Payload.CurrentUserRoleID != 1 {
		t.Errorf("project: %+v", got.Payload)
	}
	anon := client(t, srv, nil)
	_, err = anon.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("team"))
	if _, ok := err.(*project.GetProjectUnauthorized); !ok {
		t.Errorf("anonymous get private project: %T %v", err, err)
	}
}
