package server_test

import (
	"context"
	"testing"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/ldaptest"
	lproject "github.com/lading-dev/lading/internal/project"
)

// ldapSubjects are the callers of TestAuthorizationLDAP: directory users
// who hold their project role through an LDAP group (one per role), one
// who is a system administrator through ldap_group_admin_dn, and one in
// no project.
var ldapSubjects = []subject{
	{name: "ldap-sysadmin", user: "l-admin", password: password, admin: true},
	{name: "ldap-projectAdmin", user: "l-padmin", password: password, role: access.ProjectAdmin},
	{name: "ldap-maintainer", user: "l-maint", password: password, role: access.Maintainer},
	{name: "ldap-developer", user: "l-dev", password: password, role: access.Developer},
	{name: "ldap-guest", user: "l-guest", password: password, role: access.Guest},
	{name: "ldap-limitedGuest", user: "l-lguest", password: password, role: access.LimitedGuest},
	{name: "ldap-non-member", user: "l-outsider", password: password},
}

// TestAuthorizationLDAP runs the project rows of the authorization table
// (every endpoint on a project's resources, the registry through the
// token service and with basic credentials) for directory users under
// ldap_auth, against a real slapd: their LDAP passwords and the roles of
// their LDAP groups must give exactly what the same roles give database
// users (the expectations are TestAuthorization's, from package access).
func TestAuthorizationLDAP(t *testing.T) {
	if testing.Short() {
		t.Skip("the authorization table again, for directory users: long")
	}
	ctx := context.Background()
	dir := ldaptest.Start(t)
	for _, s := range ldapSubjects {
		dir.AddUser(t, ldaptest.User{UID: s.user, Mail: s.user + "@example.org", Password: s.password})
		if s.role != 0 {
			dir.AddGroup(t, "role-"+s.name, s.user)
		}
	}
	dir.AddGroup(t, "admins", "l-admin")
	w := ldapWorldOn(t, dir)
	e := &env{srv: w.srv, admin: w.srv.AdminSubject(t), otherID: map[string]int64{}, digests: map[string]string{}}
	e.memberOf = func(s subject) lproject.MemberCreate {
		return lproject.MemberCreate{Role: s.role, GroupType: identity.GroupLDAP, LdapGroupDN: ldaptest.GroupDN("role-" + s.name)}
	}
	e.newUser = func(t *testing.T, name string) int64 {
		dir.AddUser(t, ldaptest.User{UID: name, Password: password})
		w.admin.must(200, "POST", "/api/v2.0/ldap/users/import", map[string]any{"ldap_uid_list": []string{name}})
		return mustSubject(t, w.srv, name).ID
	}
	projects := e.populate(t, ldapSubjects, "l-outsider")

	cells := 0
	for _, r := range authzRows() {
		if r.scope != inProject && r.scope != registryToken && r.scope != registryBasic {
			continue
		}
		if r.inOther {
			// Another project's ids: a question of the path, not of
			// where the caller's identity comes from (TestAuthorization
			// asks it).
			continue
		}
		for _, p := range projects {
			for _, s := range ldapSubjects {
				var target any
				if r.setup != nil {
					target = r.setup(t, e, p)
				}
				_, want := expected(r, s, p)
				got := statusOf(r.call(ctx, e.srv.API(s.user, s.password), e, p, s, target))
				if got != want {
					t.Errorf("%s/%s/%s: status %d, want %d", r.name, p.name, s.name, got, want)
				}
				cells++
			}
		}
	}
	t.Logf("%d cells asserted", cells)
	if cells == 0 {
		t.Fatal("no project rows")
	}
}
