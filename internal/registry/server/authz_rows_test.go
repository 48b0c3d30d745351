package server_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/configure"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/health"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/ping"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project_metadata"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/search"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/statistic"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
)

type call = func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, s subject, target any) error

func ignore[T any](_ T, err error) error { return err }

var pullOnly = []*models.RobotPermission{{Kind: "project", Namespace: "*", Access: []*models.Access{{Resource: "repository", Action: "pull"}}}}

// authzRows lists every endpoint with the permission it needs.
func authzRows() []row {
	sysRobot := func(t *testingT, e *env, p proj) any { return freshRobot(t, e, proj{}) }
	rows := append(identityRows(), []row{
		// System.
		{name: "GET /ping", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Ping.GetPing(ctx, ping.NewGetPingParams()))
		}},
		{name: "GET /health", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Health.GetHealth(ctx, health.NewGetHealthParams()))
		}},
		{name: "GET /systeminfo", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Systeminfo.GetSystemInfo(ctx, systeminfo.NewGetSystemInfoParams()))
		}},
		{name: "GET /configurations", scope: system, res: access.Configuration, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Configure.GetConfigurations(ctx, configure.NewGetConfigurationsParams()))
		}},
		{name: "PUT /configurations", scope: system, res: access.Configuration, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Configure.UpdateConfigurations(ctx, configure.NewUpdateConfigurationsParams().WithConfigurations(&models.Configurations{BannerMessage: ptr("hello")})))
		}},
		{name: "GET /search", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Search.Search(ctx, search.NewSearchParams().WithQ("app")))
		}},
		// The login form: users log in with their password (robots only
		// with basic credentials, as on Harbor); anyone may log out.
		{name: "POST /c/login", scope: loginForm, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			form := url.Values{"principal": {s.user}, "password": {s.password}}
			return httpCall(e, "", "", "POST", "/c/login", "application/x-www-form-urlencoded", form.Encode())
		}},
		{name: "GET /c/log_out", scope: public, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			return httpCall(e, s.user, s.password, "GET", "/c/log_out", "", "")
		}},
		{name: "POST /c/log_out", scope: public, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			return httpCall(e, s.user, s.password, "POST", "/c/log_out", "", "")
		}},
		{name: "GET /statistics", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Statistic.GetStatistic(ctx, statistic.NewGetStatisticParams()))
		}},
		// Users.
		{name: "GET /users", scope: system, res: access.User, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.User.ListUsers(ctx, user.NewListUsersParams()))
		}},
		{name: "POST /users", scope: system, res: access.User, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			n := e.fresh("new")
			return ignore(c.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: n, Email: n + "@example.com", Realname: n, Password: password})))
		}},
		{name: "GET /users/current", scope: usersOnly, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams()))
		}},
		{name: "GET /users/current/permissions", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.User.GetCurrentUserPermissions(ctx, user.NewGetCurrentUserPermissionsParams().WithScope(ptr("/project/"+p.name))))
		}},
		{name: "GET /users/search", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.User.SearchUsers(ctx, user.NewSearchUsersParams().WithUsername("u-")))
		}},
		{name: "GET /users/{id}", scope: system, res: access.User, act: access.Read, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.GetUser(ctx, user.NewGetUserParams().WithUserID(id.(int64))))
		}},
		{name: "PUT /users/{id}", scope: system, res: access.User, act: access.Update, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.UpdateUserProfile(ctx, user.NewUpdateUserProfileParams().WithUserID(id.(int64)).WithProfile(&models.UserProfile{Email: "x" + strconv.FormatInt(id.(int64), 10) + "@example.com", Realname: "X"})))
		}},
		{name: "PUT /users/{id}/password", scope: system, res: access.User, act: access.Update, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(id.(int64)).WithPassword(&models.PasswordReq{NewPassword: "Other-Passw0rd"})))
		}},
		{name: "PUT /users/{id}/sysadmin", scope: system, res: access.User, act: access.Update, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.SetUserSysAdmin(ctx, user.NewSetUserSysAdminParams().WithUserID(id.(int64)).WithSysadminFlag(&models.UserSysAdminFlag{SysadminFlag: true})))
		}},
		{name: "DELETE /users/{id}", scope: system, res: access.User, act: access.Delete, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.DeleteUser(ctx, user.NewDeleteUserParams().WithUserID(id.(int64))))
		}},
		// System robots.
		{name: "GET /robots", scope: system, res: access.Robot, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Robot.ListRobot(ctx, robot.NewListRobotParams()))
		}},
		{name: "POST /robots (system)", scope: system, res: access.Robot, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: e.fresh("nr"), Level: "system", Duration: -1, Permissions: pullOnly})))
		}},
		{name: "GET /robots/{system id}", scope: system, res: access.Robot, act: access.Read, setup: sysRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(id.(int64))))
		}},
		{name: "PUT /robots/{system id}", scope: system, res: access.Robot, act: access.Update, setup: sysRobot, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, id any) error {
			r, err := e.srv.Core.Identity.GetRobot(ctx, e.admin, id.(int64))
			if err != nil {
				return err
			}
			return ignore(c.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(id.(int64)).WithRobot(&models.Robot{Name: r.Name, Level: "system", Duration: ptr(int64(-1)), Description: "changed", Permissions: pullOnly})))
		}},
		{name: "PATCH /robots/{system id}", scope: system, res: access.Robot, act: access.Update, setup: sysRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(id.(int64)).WithRobotSec(&models.RobotSec{})))
		}},
		{name: "DELETE /robots/{system id}", scope: system, res: access.Robot, act: access.Delete, setup: sysRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.DeleteRobot(ctx, robot.NewDeleteRobotParams().WithRobotID(id.(int64))))
		}},
		// Quotas and audit logs.
		{name: "GET /quotas", scope: system, res: access.Quota, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Quota.ListQuotas(ctx, quota.NewListQuotasParams()))
		}},
		{name: "GET /quotas/{id}", scope: system, res: access.Quota, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Quota.GetQuota(ctx, quota.NewGetQuotaParams().WithID(p.id)))
		}},
		{name: "PUT /quotas/{id}", scope: system, res: access.Quota, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Quota.UpdateQuota(ctx, quota.NewUpdateQuotaParams().WithID(p.id).WithHard(&models.QuotaUpdateReq{Hard: models.ResourceList{"storage": -1}})))
		}},
		{name: "GET /audit-logs", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams()))
		}},
		{name: "GET /auditlog-exts", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Auditlog.ListAuditLogExts(ctx, auditlog.NewListAuditLogExtsParams()))
		}},
		{name: "GET /auditlog-exts/events", scope: system, res: access.AuditLog, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Auditlog.ListAuditLogEventTypes(ctx, auditlog.NewListAuditLogEventTypesParams()))
		}},
		{name: "GET /repositories", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Repository.ListAllRepositories(ctx, repository.NewListAllRepositoriesParams()))
		}},
		// Projects.
		{name: "GET /projects", scope: public, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Project.ListProjects(ctx, project.NewListProjectsParams()))
		}},
		{name: "HEAD /projects", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.HeadProject(ctx, project.NewHeadProjectParams().WithProjectName(p.name)))
		}},
		{name: "POST /projects", scope: createProject, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: e.fresh("np")})))
		}},
		{name: "GET /projects/{p}", scope: inProject, res: access.Self, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID(p.name)))
		}},
		{name: "GET /projects/{id}", scope: inProject, res: access.Self, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID(strconv.FormatInt(p.id, 10))))
		}},
		{name: "PUT /projects/{p}", scope: inProject, res: access.Self, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.UpdateProject(ctx, project.NewUpdateProjectParams().WithProjectNameOrID(p.name).WithProject(&models.ProjectReq{Metadata: &models.ProjectMetadata{Public: strconv.FormatBool(p.public)}})))
		}},
		{name: "DELETE /projects/{p}", scope: inProject, res: access.Self, act: access.Delete, setup: freshProject, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, name any) error {
			return ignore(c.Project.DeleteProject(ctx, project.NewDeleteProjectParams().WithProjectNameOrID(name.(string))))
		}},
		{name: "GET /projects/{p}/_deletable", scope: inProject, res: access.Self, act: access.Delete, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetProjectDeletable(ctx, project.NewGetProjectDeletableParams().WithProjectNameOrID(p.name)))
		}},
		{name: "GET /projects/{p}/summary", scope: inProject, res: access.Self, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID(p.name)))
		}},
		{name: "GET /projects/{p}/logs", scope: inProject, res: access.Log, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetLogs(ctx, project.NewGetLogsParams().WithProjectName(p.name)))
		}},
		{name: "GET /projects/{p}/auditlog-exts", scope: inProject, res: access.Log, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetLogExts(ctx, project.NewGetLogExtsParams().WithProjectName(p.name)))
		}},
		// Members.
		{name: "GET /projects/{p}/members", scope: inProject, res: access.Member, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Member.ListProjectMembers(ctx, member.NewListProjectMembersParams().WithProjectNameOrID(p.name)))
		}},
		{name: "POST /projects/{p}/members", scope: inProject, res: access.Member, act: access.Create, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID(p.name).WithProjectMember(&models.ProjectMember{RoleID: 2, MemberUser: &models.UserEntity{UserID: id.(int64)}})))
		}},
		{name: "GET /projects/{p}/members/{mid}", scope: inProject, res: access.Member, act: access.Read, setup: freshMember, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Member.GetProjectMember(ctx, member.NewGetProjectMemberParams().WithProjectNameOrID(p.name).WithMid(id.(int64))))
		}},
		{name: "GET /projects/{p}/members/{other project's mid}", scope: inProject, res: access.Member, act: access.Read, other: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Member.GetProjectMember(ctx, member.NewGetProjectMemberParams().WithProjectNameOrID(p.name).WithMid(e.otherID["member"])))
		}},
		{name: "PUT /projects/{p}/members/{mid}", scope: inProject, res: access.Member, act: access.Update, setup: freshMember, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Member.UpdateProjectMember(ctx, member.NewUpdateProjectMemberParams().WithProjectNameOrID(p.name).WithMid(id.(int64)).WithRole(&models.RoleRequest{RoleID: 3})))
		}},
		{name: "PUT /projects/{p}/members/{other project's mid}", scope: inProject, res: access.Member, act: access.Update, other: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Member.UpdateProjectMember(ctx, member.NewUpdateProjectMemberParams().WithProjectNameOrID(p.name).WithMid(e.otherID["member"]).WithRole(&models.RoleRequest{RoleID: 1})))
		}},
		{name: "DELETE /projects/{p}/members/{mid}", scope: inProject, res: access.Member, act: access.Delete, setup: freshMember, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			return ignore(c.Member.DeleteProjectMember(ctx, member.NewDeleteProjectMemberParams().WithProjectNameOrID(p.name).WithMid(id.(int64))))
		}},
		{name: "DELETE /projects/{p}/members/{other project's mid}", scope: inProject, res: access.Member, act: access.Delete, other: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Member.DeleteProjectMember(ctx, member.NewDeleteProjectMemberParams().WithProjectNameOrID(p.name).WithMid(e.otherID["member"])))
		}},
		// Metadata.
		// Harbor's paths end in a slash (as its client calls them); lading
		// also routes them without.
		{name: "GET /projects/{p}/metadatas/", scope: inProject, res: access.Metadata, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.ProjectMetadata.ListProjectMetadatas(ctx, project_metadata.NewListProjectMetadatasParams().WithProjectNameOrID(p.name)))
		}},
		{name: "POST /projects/{p}/metadatas/", scope: inProject, res: access.Metadata, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.ProjectMetadata.AddProjectMetadatas(ctx, project_metadata.NewAddProjectMetadatasParams().WithProjectNameOrID(p.name).WithMetadata(map[string]string{"auto_scan": "false"})))
		}},
		{name: "GET /projects/{p}/metadatas", scope: inProject, res: access.Metadata, act: access.List, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return httpCall(e, s.user, s.password, "GET", "/api/v2.0/projects/"+p.name+"/metadatas", "", "")
		}},
		{name: "POST /projects/{p}/metadatas", scope: inProject, res: access.Metadata, act: access.Create, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return httpCall(e, s.user, s.password, "POST", "/api/v2.0/projects/"+p.name+"/metadatas", "application/json", `{"auto_scan": "false"}`)
		}},
		{name: "GET /projects/{p}/metadatas/{name}", scope: inProject, res: access.Metadata, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.ProjectMetadata.GetProjectMetadata(ctx, project_metadata.NewGetProjectMetadataParams().WithProjectNameOrID(p.name).WithMetaName("public")))
		}},
		{name: "PUT /projects/{p}/metadatas/{name}", scope: inProject, res: access.Metadata, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.ProjectMetadata.UpdateProjectMetadata(ctx, project_metadata.NewUpdateProjectMetadataParams().WithProjectNameOrID(p.name).WithMetaName("severity").WithMetadata(map[string]string{"severity": "high"})))
		}},
		{name: "DELETE /projects/{p}/metadatas/{name}", scope: inProject, res: access.Metadata, act: access.Delete, setup: func(t *testingT, e *env, p proj) any {
			if err := e.srv.Core.Projects.SetMetadata(context.Background(), e.admin, projectRef(p), map[string]string{"prevent_vul": "false"}, access.Create); err != nil {
				t.Fatal(err)
			}
			return nil
		}, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.ProjectMetadata.DeleteProjectMetadata(ctx, project_metadata.NewDeleteProjectMetadataParams().WithProjectNameOrID(p.name).WithMetaName("prevent_vul")))
		}},
		// Project robots.
		{name: "GET /robots?q=Level=project", scope: inProject, res: access.Robot, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Robot.ListRobot(ctx, robot.NewListRobotParams().WithQ(ptr("Level=project,ProjectID="+strconv.FormatInt(p.id, 10)))))
		}},
		{name: "POST /robots (project)", scope: inProject, res: access.Robot, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			perms := []*models.RobotPermission{{Kind: "project", Namespace: p.name, Access: []*models.Access{{Resource: "repository", Action: "pull"}}}}
			return ignore(c.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: e.fresh("pr"), Level: "project", Duration: -1, Permissions: perms})))
		}},
		{name: "GET /robots/{project id}", scope: inProject, res: access.Robot, act: access.Read, setup: freshRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(id.(int64))))
		}},
		{name: "PUT /robots/{project id}", scope: inProject, res: access.Robot, act: access.Update, setup: freshRobot, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, id any) error {
			r, err := e.srv.Core.Identity.GetRobot(ctx, e.admin, id.(int64))
			if err != nil {
				return err
			}
			perms := []*models.RobotPermission{{Kind: "project", Namespace: p.name, Access: []*models.Access{{Resource: "repository", Action: "pull"}}}}
			return ignore(c.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(id.(int64)).WithRobot(&models.Robot{Name: r.Name, Level: "project", Duration: ptr(int64(-1)), Disable: true, Permissions: perms})))
		}},
		{name: "PATCH /robots/{project id}", scope: inProject, res: access.Robot, act: access.Update, setup: freshRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(id.(int64)).WithRobotSec(&models.RobotSec{})))
		}},
		{name: "DELETE /robots/{project id}", scope: inProject, res: access.Robot, act: access.Delete, setup: freshRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.DeleteRobot(ctx, robot.NewDeleteRobotParams().WithRobotID(id.(int64))))
		}},
		// Project robots addressed by the id of a robot of another project
		// (no project in the path): the rights in that project decide.
		{name: "GET /robots?q=Level=project,ProjectID={another project's id}", scope: inProject, res: access.Robot, act: access.List, inOther: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Robot.ListRobot(ctx, robot.NewListRobotParams().WithQ(ptr("Level=project,ProjectID="+strconv.FormatInt(e.otherID["project"], 10)))))
		}},
		{name: "POST /robots (another project)", scope: inProject, res: access.Robot, act: access.Create, inOther: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			perms := []*models.RobotPermission{{Kind: "project", Namespace: "other", Access: []*models.Access{{Resource: "repository", Action: "pull"}}}}
			return ignore(c.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: e.fresh("or"), Level: "project", Duration: -1, Permissions: perms})))
		}},
		{name: "GET /robots/{another project's robot id}", scope: inProject, res: access.Robot, act: access.Read, inOther: true, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(e.otherID["robot"])))
		}},
		{name: "PUT /robots/{another project's robot id}", scope: inProject, res: access.Robot, act: access.Update, inOther: true, setup: otherRobot, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, id any) error {
			r, err := e.srv.Core.Identity.GetRobot(ctx, e.admin, id.(int64))
			if err != nil {
				return err
			}
			perms := []*models.RobotPermission{{Kind: "project", Namespace: "other", Access: []*models.Access{{Resource: "repository", Action: "push"}}}}
			return ignore(c.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(id.(int64)).WithRobot(&models.Robot{Name: r.Name, Level: "project", Duration: ptr(int64(-1)), Permissions: perms})))
		}},
		{name: "PATCH /robots/{another project's robot id}", scope: inProject, res: access.Robot, act: access.Update, inOther: true, setup: otherRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(id.(int64)).WithRobotSec(&models.RobotSec{})))
		}},
		{name: "DELETE /robots/{another project's robot id}", scope: inProject, res: access.Robot, act: access.Delete, inOther: true, setup: otherRobot, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Robot.DeleteRobot(ctx, robot.NewDeleteRobotParams().WithRobotID(id.(int64))))
		}},
		// Repositories, artifacts, tags.
		{name: "GET /projects/{p}/repositories", scope: inProject, res: access.Repository, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Repository.ListRepositories(ctx, repository.NewListRepositoriesParams().WithProjectName(p.name)))
		}},
		{name: "GET /projects/{p}/repositories/{r}", scope: inProject, res: access.Repository, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Repository.GetRepository(ctx, repository.NewGetRepositoryParams().WithProjectName(p.name).WithRepositoryName("app")))
		}},
		{name: "PUT /projects/{p}/repositories/{r}", scope: inProject, res: access.Repository, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Repository.UpdateRepository(ctx, repository.NewUpdateRepositoryParams().WithProjectName(p.name).WithRepositoryName("app").WithRepository(&models.Repository{Description: "d"})))
		}},
		{name: "DELETE /projects/{p}/repositories/{r}", scope: inProject, res: access.Repository, act: access.Delete, setup: freshRepo, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, name any) error {
			return ignore(c.Repository.DeleteRepository(ctx, repository.NewDeleteRepositoryParams().WithProjectName(p.name).WithRepositoryName(name.(string))))
		}},
		{name: "GET .../artifacts", scope: inProject, res: access.Artifact, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName(p.name).WithRepositoryName("app")))
		}},
		{name: "GET .../artifacts/{ref}", scope: inProject, res: access.Artifact, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1")))
		}},
		{name: "DELETE .../artifacts/{ref}", scope: inProject, res: access.Artifact, act: access.Delete, setup: freshRepo, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, name any) error {
			return ignore(c.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName(p.name).WithRepositoryName(name.(string)).WithReference(e.digests[p.name])))
		}},
		{name: "POST .../artifacts?from=", scope: inProject, res: access.Artifact, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.CopyArtifact(ctx, artifact.NewCopyArtifactParams().WithProjectName(p.name).WithRepositoryName(e.fresh("dst")).WithFrom(p.name+"/app:v1")))
		}},
		{name: "GET .../artifacts/{ref}/tags", scope: inProject, res: access.Tag, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.ListTags(ctx, artifact.NewListTagsParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1")))
		}},
		{name: "POST .../artifacts/{ref}/tags", scope: inProject, res: access.Tag, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.CreateTag(ctx, artifact.NewCreateTagParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1").WithTag(&models.Tag{Name: e.fresh("nt")})))
		}},
		{name: "DELETE .../artifacts/{ref}/tags/{tag}", scope: inProject, res: access.Tag, act: access.Delete, setup: freshTag, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, tag any) error {
			return ignore(c.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1").WithTagName(tag.(string))))
		}},
		{name: "DELETE .../artifacts/{ref}/tags/{another repository's tag}", scope: inProject, res: access.Tag, act: access.Delete, other: true, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.DeleteTag(ctx, artifact.NewDeleteTagParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1").WithTagName("othertag")))
		}},
		// The registry, through the token service and with basic
		// credentials.
		{name: "registry pull (token)", scope: registryToken, res: access.Repository, act: access.Pull, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return registryCall(e, s.user, s.password, "GET", "/v2/"+p.name+"/app/manifests/v1", "repository:"+p.name+"/app:pull", true)
		}},
		{name: "registry push (token)", scope: registryToken, res: access.Repository, act: access.Push, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return registryCall(e, s.user, s.password, "POST", "/v2/"+p.name+"/app/blobs/uploads/", "repository:"+p.name+"/app:pull,push", true)
		}},
		{name: "registry delete (token)", scope: registryToken, res: access.Repository, act: access.Delete, setup: freshRepo, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, name any) error {
			repo := p.name + "/" + name.(string)
			return registryCall(e, s.user, s.password, "DELETE", "/v2/"+repo+"/manifests/"+e.digests[p.name], "repository:"+repo+":delete", true)
		}},
		{name: "registry token for another project", scope: registryToken, always: 401, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			// A token for p/app never opens other/app, whoever holds it.
			return registryCall(e, s.user, s.password, "GET", "/v2/other/app/manifests/v1", "repository:"+p.name+"/app:pull", true)
		}},
		{name: "registry pull (basic)", scope: registryBasic, res: access.Repository, act: access.Pull, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return registryCall(e, s.user, s.password, "GET", "/v2/"+p.name+"/app/manifests/v1", "", false)
		}},
		{name: "registry push (basic)", scope: registryBasic, res: access.Repository, act: access.Push, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return registryCall(e, s.user, s.password, "POST", "/v2/"+p.name+"/app/blobs/uploads/", "", false)
		}},
	}...)
	return append(rows, slices.Concat(jobsRows(), replicationRows(), lifecycleRows(), trustRows(), scanRows())...)
}
