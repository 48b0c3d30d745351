package server_test

import (
	"context"
	"path"
	"slices"
	"strconv"
	"testing"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/usergroup"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestUserGroups drives /usergroups with Harbor's own client under
// oidc_auth: create (OIDC groups by name), get, list, search, rename,
// delete; a group as a project member with a role, the higher of a
// user's and their groups' roles, a rename that keeps the provider's
// group (matched by its claim, not its display name), and a deleted
// group's membership gone at the next token.
func TestUserGroups(t *testing.T) {
	w := startOIDCWorld(t)
	ctx := context.Background()
	api := w.srv.Admin()
	secretOf := func(user string) string {
		_, web := w.login(t, user, user+"-pw")
		me := decode[userResp](t, web.must(200, "GET", "/api/v2.0/users/current", nil))
		if me.OIDCUserMeta == nil || me.OIDCUserMeta.Secret == "" {
			t.Fatalf("%s has no CLI secret: %+v", user, me)
		}
		return me.OIDCUserMeta.Secret
	}

	// Create, with Harbor's refusals (before anyone logs in: a login
	// takes in its groups, and devs would exist).
	created, err := api.Usergroup.CreateUserGroup(ctx, usergroup.NewCreateUserGroupParams().WithUsergroup(&models.UserGroup{GroupName: "devs", GroupType: 3}))
	if err != nil {
		t.Fatalf("create devs: %v", err)
	}
	id, err := strconv.ParseInt(path.Base(created.Location), 10, 64)
	if err != nil {
		t.Fatalf("create devs: Location %q", created.Location)
	}
	for _, tc := range []struct {
		name string
		g    models.UserGroup
		want int
	}{
		{"the same OIDC group again", models.UserGroup{GroupName: "devs", GroupType: 3}, 409},
		{"an empty name", models.UserGroup{GroupName: " ", GroupType: 3}, 400},
		{"a name with a newline", models.UserGroup{GroupName: "a\nb", GroupType: 3}, 400},
		{"an unknown type", models.UserGroup{GroupName: "x", GroupType: 9}, 400},
		{"an LDAP group without LDAP", models.UserGroup{GroupName: "x", GroupType: 1, LdapGroupDn: "cn=x,dc=example,dc=org"}, 412},
	} {
		_, err := api.Usergroup.CreateUserGroup(ctx, usergroup.NewCreateUserGroupParams().WithUsergroup(&tc.g))
		if got := statusOf(err); got != tc.want {
			t.Errorf("create %s: %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := api.Usergroup.CreateUserGroup(ctx, usergroup.NewCreateUserGroupParams().WithUsergroup(&models.UserGroup{GroupName: "ops", GroupType: 3})); err != nil {
		t.Fatalf("create ops: %v", err)
	}

	bob, carol := secretOf("bob"), secretOf("carol")

	// Get, list, search.
	got, err := api.Usergroup.GetUserGroup(ctx, usergroup.NewGetUserGroupParams().WithGroupID(id))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&models.UserGroup{ID: id, GroupName: "devs", GroupType: 3}, got.Payload); diff != "" {
		t.Errorf("get devs (-want +got):\n%s", diff)
	}
	if _, err := api.Usergroup.GetUserGroup(ctx, usergroup.NewGetUserGroupParams().WithGroupID(id+1000)); statusOf(err) != 404 {
		t.Errorf("get a missing group: %v, want 404", err)
	}
	names := func(gs []*models.UserGroup) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.GroupName)
		}
		slices.Sort(out)
		return out
	}
	list, err := api.Usergroup.ListUserGroups(ctx, usergroup.NewListUserGroupsParams())
	if err != nil || !slices.Equal(names(list.Payload), []string{"devs", "ops"}) || list.XTotalCount != 2 {
		t.Errorf("list: %v (total %v), %v; want devs, ops", names(list.Payload), list.XTotalCount, err)
	}
	list, err = api.Usergroup.ListUserGroups(ctx, usergroup.NewListUserGroupsParams().WithGroupName(ptr("op")))
	if err != nil || !slices.Equal(names(list.Payload), []string{"ops"}) {
		t.Errorf("list group_name=op: %v, %v", names(list.Payload), err)
	}
	// Searching is for any signed-in user (to add a group as a member).
	found, err := w.srv.API("carol", carol).Usergroup.SearchUserGroups(ctx, usergroup.NewSearchUserGroupsParams().WithGroupname("dev"))
	if err != nil || len(found.Payload) != 1 || found.Payload[0].GroupName != "devs" || found.Payload[0].ID != id {
		t.Errorf("search dev as carol: %+v, %v", found, err)
	}
	if _, err := w.srv.API("carol", carol).Usergroup.ListUserGroups(ctx, usergroup.NewListUserGroupsParams()); statusOf(err) != 403 {
		t.Errorf("list as carol: %v, want 403", err)
	}

	// The group as a member; bob is a guest himself and a developer
	// through devs; carol is in no group.
	w.admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team", "metadata": map[string]string{"public": "false"}})
	if _, err := api.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("team").
		WithProjectMember(&models.ProjectMember{RoleID: 2, MemberGroup: &models.UserGroup{ID: id}})); err != nil {
		t.Fatalf("devs as a developer: %v", err)
	}
	if _, err := api.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("team").
		WithProjectMember(&models.ProjectMember{RoleID: 3, MemberUser: &models.UserEntity{Username: "bob"}})); err != nil {
		t.Fatalf("bob as a guest: %v", err)
	}
	members, err := api.Member.ListProjectMembers(ctx, member.NewListProjectMembersParams().WithProjectNameOrID("team"))
	if err != nil {
		t.Fatal(err)
	}
	var entities []models.ProjectMemberEntity
	for _, m := range members.Payload {
		entities = append(entities, models.ProjectMemberEntity{EntityName: m.EntityName, EntityType: m.EntityType, RoleID: m.RoleID, RoleName: m.RoleName})
	}
	want := []models.ProjectMemberEntity{
		{EntityName: "admin", EntityType: "u", RoleID: 1, RoleName: "projectAdmin"},
		{EntityName: "bob", EntityType: "u", RoleID: 3, RoleName: "guest"},
		{EntityName: "devs", EntityType: "g", RoleID: 2, RoleName: "developer"},
	}
	sortEntities := cmpopts.SortSlices(func(a, b models.ProjectMemberEntity) bool { return a.EntityName < b.EntityName })
	if diff := cmp.Diff(want, entities, sortEntities); diff != "" {
		t.Errorf("team's members (-want +got):\n%s", diff)
	}

	actions := func(user, secret string) []string {
		t.Helper()
		st, acts, msg := token(t, w.srv, user, secret, "repository:team/app:pull,push")
		if st != 200 {
			t.Fatalf("token for %s: %d %s", user, st, msg)
		}
		slices.Sort(acts)
		return acts
	}
	if a := actions("bob", bob); !slices.Equal(a, []string{"pull", "push"}) {
		t.Errorf("bob, a guest and a developer through devs: %v, want pull and push", a)
	}
	if a := actions("carol", carol); len(a) != 0 {
		t.Errorf("carol, in no group: %v, want nothing", a)
	}

	// A rename changes the name shown, not the provider's group.
	if _, err := api.Usergroup.UpdateUserGroup(ctx, usergroup.NewUpdateUserGroupParams().WithGroupID(id).WithUsergroup(&models.UserGroup{GroupName: "ops"})); statusOf(err) != 409 {
		t.Errorf("rename devs to ops (taken): %v, want 409", err)
	}
	if _, err := api.Usergroup.UpdateUserGroup(ctx, usergroup.NewUpdateUserGroupParams().WithGroupID(id).WithUsergroup(&models.UserGroup{GroupName: "developers"})); err != nil {
		t.Fatalf("rename devs: %v", err)
	}
	if g, err := api.Usergroup.GetUserGroup(ctx, usergroup.NewGetUserGroupParams().WithGroupID(id)); err != nil || g.Payload.GroupName != "developers" {
		t.Errorf("after the rename: %+v, %v", g, err)
	}
	if a := actions("bob", bob); !slices.Equal(a, []string{"pull", "push"}) {
		t.Errorf("bob after devs was renamed: %v, want pull and push", a)
	}
	if list, err := api.Usergroup.ListUserGroups(ctx, usergroup.NewListUserGroupsParams()); err != nil || !slices.Equal(names(list.Payload), []string{"developers", "ops"}) {
		t.Errorf("after bob's token: %v, %v; want no new group for the claim devs", names(list.Payload), err)
	}

	// Deleting the group removes its membership: bob is a guest again.
	if _, err := api.Usergroup.DeleteUserGroup(ctx, usergroup.NewDeleteUserGroupParams().WithGroupID(id)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := api.Usergroup.GetUserGroup(ctx, usergroup.NewGetUserGroupParams().WithGroupID(id)); statusOf(err) != 404 {
		t.Errorf("get after delete: %v, want 404", err)
	}
	if a := actions("bob", bob); !slices.Equal(a, []string{"pull"}) {
		t.Errorf("bob after devs was deleted: %v, want pull", a)
	}
	members, err = api.Member.ListProjectMembers(ctx, member.NewListProjectMembersParams().WithProjectNameOrID("team"))
	if err != nil || len(members.Payload) != 2 {
		t.Errorf("team's members after the delete: %d, %v; want admin and bob", len(members.Payload), err)
	}
}
