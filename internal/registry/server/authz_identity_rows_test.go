package server_test

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-openapi/runtime"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/ldap"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/oidc"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/usergroup"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/identity"
)

// identityRows are the external identities' endpoints. The world of the
// authorization test is in db_auth with LDAP unconfigured, so where the
// permission is granted the answer is the precondition that fails there
// (allowed): what these endpoints do when they can is tested against a
// real slapd (ldap_test.go) and a real OpenID Provider (oidc_test.go).
func identityRows() []row {
	return []row{
		{name: "GET /usergroups", scope: system, res: access.UserGroup, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Usergroup.ListUserGroups(ctx, usergroup.NewListUserGroupsParams()))
		}},
		{name: "POST /usergroups", scope: system, res: access.UserGroup, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Usergroup.CreateUserGroup(ctx, usergroup.NewCreateUserGroupParams().WithUsergroup(&models.UserGroup{GroupName: e.fresh("g"), GroupType: identity.GroupOIDC})))
		}},
		{name: "GET /usergroups/search", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Usergroup.SearchUserGroups(ctx, usergroup.NewSearchUserGroupsParams().WithGroupname("g")))
		}},
		{name: "GET /usergroups/{id}", scope: system, res: access.UserGroup, act: access.Read, setup: freshGroup, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Usergroup.GetUserGroup(ctx, usergroup.NewGetUserGroupParams().WithGroupID(id.(int64))))
		}},
		{name: "PUT /usergroups/{id}", scope: system, res: access.UserGroup, act: access.Update, setup: freshGroup, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, id any) error {
			return ignore(c.Usergroup.UpdateUserGroup(ctx, usergroup.NewUpdateUserGroupParams().WithGroupID(id.(int64)).WithUsergroup(&models.UserGroup{GroupName: e.fresh("renamed")})))
		}},
		{name: "DELETE /usergroups/{id}", scope: system, res: access.UserGroup, act: access.Delete, setup: freshGroup, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Usergroup.DeleteUserGroup(ctx, usergroup.NewDeleteUserGroupParams().WithGroupID(id.(int64))))
		}},
		// Allowed: 200 with success false (LDAP is not configured).
		{name: "POST /ldap/ping", scope: system, res: access.Configuration, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Ldap.PingLdap(ctx, ldap.NewPingLdapParams().WithLdapconf(&models.LdapConf{LdapURL: "ldap://127.0.0.1:1", LdapBaseDn: "dc=x"})))
		}},
		{name: "GET /ldap/users/search", scope: system, res: access.LdapUser, act: access.List, allowed: http.StatusPreconditionFailed, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Ldap.SearchLdapUser(ctx, ldap.NewSearchLdapUserParams().WithUsername(ptr("alice"))))
		}},
		{name: "POST /ldap/users/import", scope: system, res: access.LdapUser, act: access.Create, allowed: http.StatusPreconditionFailed, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Ldap.ImportLdapUser(ctx, ldap.NewImportLdapUserParams().WithUIDList(&models.LdapImportUsers{LdapUIDList: []string{"alice"}})))
		}},
		{name: "GET /ldap/groups/search", scope: system, res: access.LdapUser, act: access.List, allowed: http.StatusPreconditionFailed, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Ldap.SearchLdapGroup(ctx, ldap.NewSearchLdapGroupParams().WithGroupname(ptr("devs"))))
		}},
		// Allowed: 400 naming why the (unreachable) provider fails.
		{name: "POST /system/oidc/ping", scope: system, res: access.Configuration, act: access.Update, allowed: http.StatusBadRequest, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.OIDC.PingOIDC(ctx, oidc.NewPingOIDCParams().WithEndpoint(oidc.PingOIDCBody{URL: "https://127.0.0.1:1", VerifyCert: true})))
		}},
		// Another user's CLI secret: administrators (and robots with the
		// user update permission); 412 under db_auth.
		{name: "PUT /users/{id}/cli_secret", scope: system, res: access.User, act: access.Update, allowed: http.StatusPreconditionFailed, setup: freshUser, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.User.SetCliSecret(ctx, user.NewSetCliSecretParams().WithUserID(id.(int64)).WithSecret(&models.OIDCCliSecretReq{Secret: "Secret-0f-Tests"})))
		}},
		// The OIDC login: anyone; not under db_auth.
		{name: "GET /c/oidc/login", scope: public, allowed: http.StatusPreconditionFailed, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			return rawCall(e, s, "GET", "/c/oidc/login?redirect_url=/", "")
		}},
		{name: "GET /c/oidc/callback", scope: public, allowed: http.StatusPreconditionFailed, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			return rawCall(e, s, "GET", "/c/oidc/callback?code=x&state=y", "")
		}},
		{name: "POST /c/oidc/onboard", scope: public, allowed: http.StatusPreconditionFailed, call: func(_ context.Context, _ *v2.HarborAPI, e *env, _ proj, s subject, _ any) error {
			return rawCall(e, s, "POST", "/c/oidc/onboard", `{"username":"x"}`)
		}},
	}
}

// freshGroup creates an OIDC group for one call.
func freshGroup(t *testingT, e *env, _ proj) any {
	g, err := e.srv.Core.Identity.CreateGroup(context.Background(), e.admin, identity.GroupCreate{Name: e.fresh("group"), Type: identity.GroupOIDC})
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// rawCall calls an endpoint outside Harbor's client (the /c/ login pages)
// as s, with basic credentials.
func rawCall(e *env, s subject, method, path, body string) error {
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &runtime.APIError{Code: resp.StatusCode, OperationName: method + " " + path}
	}
	return nil
}
