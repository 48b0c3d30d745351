package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/configure"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/syslog/syslogtest"
)

// syslogWith waits for a syslog message containing each of parts.
func syslogWith(t *testing.T, c *syslogtest.Collector, parts ...string) string {
	t.Helper()
	return c.Wait(t, 10*time.Second, fmt.Sprintf("with %q", parts), func(m string) bool {
		for _, p := range parts {
			if !strings.Contains(m, p) {
				return false
			}
		}
		return true
	})
}

func TestAuditLog(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()
	a := srv.Admin()
	col := syslogtest.Start(t)
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{AuditLogForwardEndpoint: ptr(col.Addr())})); err != nil {
		t.Fatal(err)
	}
	// A login, a failed one; a project, a member, a push, a pull, a delete.
	for _, pw := range []string{adminPW, "wrong"} {
		resp, err := http.PostForm(srv.URL+"/c/login", url.Values{"principal": {admin}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "aud"})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "aud"})); statusOf(err) != 409 {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := a.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "bob", Email: "bob@example.com", Realname: "Bob", Password: password})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("aud").WithProjectMember(&models.ProjectMember{RoleID: 1, MemberUser: &models.UserEntity{Username: "bob"}})); err != nil {
		t.Fatal(err)
	}
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "aud/app", "v1", "bob", password); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Pull(ctx, "aud/app:v1", "bob", password); err != nil {
		t.Fatal(err)
	}
	// A repository's description changed, and a refused change (anonymous)
	// that must not be recorded.
	upd := repository.NewUpdateRepositoryParams().WithProjectName("aud").WithRepositoryName("app").WithRepository(&models.Repository{Description: "the app"})
	if _, err := srv.API("bob", password).Repository.UpdateRepository(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.API("", "").Repository.UpdateRepository(ctx, upd); statusOf(err) != 401 {
		t.Fatalf("anonymous description change: %v", err)
	}
	d, _ := img.Digest()
	if _, err := srv.API("bob", password).Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("aud").WithRepositoryName("app").WithReference(d.String())); err != nil {
		t.Fatal(err)
	}
	want := []struct{ op, typ, user string }{
		{"update", "configuration", admin}, {"login", "user", admin}, {"create", "project", admin},
		{"create", "user", admin}, {"create", "member", admin}, {"create", "artifact", "bob"},
		{"pull", "artifact", "bob"}, {"update", "repository", "bob"}, {"delete", "artifact", "bob"},
	}
	var logs []*models.AuditLogExt
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := a.Auditlog.ListAuditLogExts(ctx, auditlog.NewListAuditLogExtsParams().WithPageSize(ptr(int64(100))))
		if err != nil {
			t.Fatal(err)
		}
		logs = got.Payload
		if findLog(logs, "pull", "artifact", "bob") != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range want {
		e := findLog(logs, w.op, w.typ, w.user)
		if e == nil {
			t.Errorf("no %s %s by %s in %+v", w.op, w.typ, w.user, logs)
			continue
		}
		if !e.OperationResult || time.Since(time.Time(e.OpTime)) > time.Minute {
			t.Errorf("%s %s: %+v", w.op, w.typ, e)
		}
	}
	if e := findFailedLogin(logs); e == nil {
		t.Errorf("no failed login in %+v", logs)
	}
	for _, e := range logs {
		if e.Operation == "create" && e.ResourceType == "project" && strings.Count(e.Resource, "aud") > 0 && e.ID == 0 {
			t.Error("zero id")
		}
	}
	if e := findLog(logs, "update", "repository", "bob"); e != nil && (e.Resource != "aud/app" || e.OperationDescription != "update repository: aud/app") {
		t.Errorf("repository update recorded as %+v", e)
	}
	if n := countLogs(logs, "update", "repository"); n != 1 {
		t.Errorf("%d repository updates recorded, want 1 (the refused one is not)", n)
	}
	if n := countLogs(logs, "create", "project"); n != 1 {
		t.Errorf("%d project creations recorded; the refused duplicate must not be", n)
	}
	// Address and request id are kept.
	var addr, rid string
	srv.DB.QueryRow(ctx, `SELECT address, request_id FROM audit_log WHERE operation = 'create' AND resource_type = 'project'`).Scan(&addr, &rid)
	if !strings.HasPrefix(addr, "127.0.0.1") || len(rid) < 16 {
		t.Errorf("address %q, request id %q", addr, rid)
	}
	// q filters.
	q := "operation=create,resource_type=artifact"
	got, err := a.Auditlog.ListAuditLogExts(ctx, auditlog.NewListAuditLogExtsParams().WithQ(&q))
	if err != nil || got.XTotalCount != 1 {
		t.Errorf("q=%s: %v %v", q, got, err)
	}
	// A project admin reads their project's entries only.
	bob := srv.API("bob", password)
	mine, err := bob.Auditlog.ListAuditLogExts(ctx, auditlog.NewListAuditLogExtsParams().WithPageSize(ptr(int64(100))))
	if err != nil || mine.XTotalCount == 0 || findLog(mine.Payload, "update", "configuration", admin) != nil || findLog(mine.Payload, "create", "artifact", "bob") == nil {
		t.Errorf("bob's audit log: %+v %v", mine, err)
	}
	if _, err := bob.Project.GetLogExts(ctx, project.NewGetLogExtsParams().WithProjectName("aud")); err != nil {
		t.Errorf("bob's project log: %v", err)
	}
	if _, err := bob.Project.GetLogs(ctx, project.NewGetLogsParams().WithProjectName("library")); statusOf(err) != 403 {
		t.Errorf("bob reads library's log: %v", err)
	}

	// Forwarded: each record after its commit, as RFC 5424; the
	// application and access logs to the same collector.
	m := syslogWith(t, col, `"operation":"create"`, `"resource_type":"artifact"`)
	if !strings.HasPrefix(m, "<110>1 ") || !strings.Contains(m, " lading ") || !strings.Contains(m, " audit - {") {
		t.Errorf("forwarded record %q", m)
	}
	syslogWith(t, col, `"operation":"pull"`, `"username":"bob"`)
	syslogWith(t, col, " access - {", `"request_id"`, `"path":"/api/v2.0/projects"`)
	// skip_audit_log_database: forwarded only.
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{SkipAuditLogDatabase: ptr(true)})); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "forwardedonly"})); err != nil {
		t.Fatal(err)
	}
	syslogWith(t, col, `"resource":"forwardedonly"`)
	var n int
	srv.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'forwardedonly'`).Scan(&n)
	if n != 0 {
		t.Errorf("skip_audit_log_database: %d rows", n)
	}
	// Old entries are purged.
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{SkipAuditLogDatabase: ptr(false)})); err != nil {
		t.Fatal(err)
	}
	srv.DB.SetClock(func() time.Time { return time.Now().Add(-3 * time.Hour) })
	if _, err := a.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "ancient"})); err != nil {
		t.Fatal(err)
	}
	srv.DB.SetClock(time.Now)
	if r := do(t, srv, "PUT", "/api/v2.0/configurations", `{"audit_log_retention_hour": 1}`, admin, adminPW); r.status != 200 {
		t.Fatalf("retention: %d %s", r.status, r.body)
	}
	srv.Core.Housekeep(ctx)
	srv.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'ancient'`).Scan(&n)
	var recent int
	srv.DB.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log`).Scan(&recent)
	if n != 0 || recent == 0 {
		t.Errorf("after the purge: %d old, %d in all", n, recent)
	}
}

// findLog finds a successful operation.
func findLog(logs []*models.AuditLogExt, op, typ, user string) *models.AuditLogExt {
	for _, e := range logs {
		if e.Operation == op && e.ResourceType == typ && e.Username == user && e.OperationResult {
			return e
		}
	}
	return nil
}

func findFailedLogin(logs []*models.AuditLogExt) *models.AuditLogExt {
	for _, e := range logs {
		if e.Operation == "login" && !e.OperationResult {
			return e
		}
	}
	return nil
}

func countLogs(logs []*models.AuditLogExt, op, typ string) int {
	n := 0
	for _, e := range logs {
		if e.Operation == op && e.ResourceType == typ {
			n++
		}
	}
	return n
}

// TestConfigurations: secrets are never returned; unknown keys, wrong
// types and values are refused; settings the file fixes are not editable.
func TestConfigurations(t *testing.T) {
	srv := harbortest.Start(t, harbortest.WithConfig(func(c *serverConfig) { c.Settings = map[string]any{"banner_message": "fixed"} }))
	ctx := context.Background()
	a := srv.Admin()
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{LdapSearchPassword: ptr("s3cret"), OIDCClientSecret: ptr("t0ps3cret")})); err != nil {
		t.Fatal(err)
	}
	r := do(t, srv, "GET", "/api/v2.0/configurations", "", admin, adminPW)
	if r.status != 200 || strings.Contains(r.body, "s3cret") || strings.Contains(r.body, "ldap_search_password") || strings.Contains(r.body, "oidc_client_secret") {
		t.Errorf("configurations: %d %s", r.status, r.body)
	}
	var items map[string]struct {
		Value    any  `json:"value"`
		Editable bool `json:"editable"`
	}
	json.Unmarshal([]byte(r.body), &items)
	if items["banner_message"].Value != "fixed" || items["banner_message"].Editable || !items["self_registration"].Editable || items["token_expiration"].Value != float64(30) {
		t.Errorf("items: %+v", items)
	}
	for _, body := range []string{`{"no_such_setting": 1}`, `{"token_expiration": "soon"}`, `{"project_creation_restriction": "sometimes"}`, `{"storage_per_project": 0}`, `{"banner_message": "changed"}`, `{"audit_log_forward_endpoint": "no-port"}`} {
		r := do(t, srv, "PUT", "/api/v2.0/configurations", body, admin, adminPW)
		if r.status != 400 {
			t.Errorf("PUT %s: %d %s", body, r.status, r.body)
		}
	}
	got, err := a.Configure.GetConfigurations(ctx, configGet())
	if err != nil || got.Payload.TokenExpiration.Value != 30 {
		t.Errorf("go-client reads the configurations: %+v %v", got, err)
	}
	// auth_mode changes while only the admin exists; not once users do.
	if r := do(t, srv, "PUT", "/api/v2.0/configurations", `{"auth_mode": "ldap_auth"}`, admin, adminPW); r.status != 200 {
		t.Errorf("auth_mode with only the admin: %d %s", r.status, r.body)
	}
	do(t, srv, "PUT", "/api/v2.0/configurations", `{"auth_mode": "db_auth"}`, admin, adminPW)
	if _, err := a.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "cfguser", Email: "cfg@example.com", Realname: "C", Password: password})); err != nil {
		t.Fatal(err)
	}
	r = do(t, srv, "PUT", "/api/v2.0/configurations", `{"auth_mode": "ldap_auth"}`, admin, adminPW)
	if r.status != 400 || !strings.Contains(r.body, "new users have been inserted") {
		t.Errorf("auth_mode with users: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", "/api/v2.0/configurations", `{"auth_mode": "db_auth", "self_registration": true}`, admin, adminPW); r.status != 200 {
		t.Errorf("auth_mode unchanged: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/api/v2.0/configurations", "", admin, adminPW)
	json.Unmarshal([]byte(r.body), &items)
	if items["auth_mode"].Editable || items["auth_mode"].Value != "db_auth" {
		t.Errorf("auth_mode item: %+v", items["auth_mode"])
	}
}

func configGet() *configure.GetConfigurationsParams { return configure.NewGetConfigurationsParams() }
