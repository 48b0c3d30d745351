package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/ldaptest"
)

// ldapWorld is a lading serve in ldap_auth over a real slapd.
type ldapWorld struct {
	dir   *ldaptest.Server
	srv   *harbortest.Server
	admin *client
}

func ldapSettings(dir *ldaptest.Server) map[string]any {
	return map[string]any{
		"auth_mode": "ldap_auth", "ldap_url": dir.LDAPSURL, "ldap_verify_cert": true,
		"ldap_search_dn": ldaptest.SearchDN, "ldap_search_password": ldaptest.SearchPassword,
		"ldap_base_dn": ldaptest.BaseDN, "ldap_filter": "(objectClass=inetOrgPerson)", "ldap_uid": "uid", "ldap_scope": 2,
		"ldap_group_base_dn": ldaptest.GroupsDN, "ldap_group_search_filter": "(objectClass=groupOfNames)",
		"ldap_group_attribute_name": "cn", "ldap_group_search_scope": 2, "ldap_group_admin_dn": ldaptest.GroupDN("admins"),
		"ldap_group_membership_attribute": "memberof", "ldap_timeout": 2,
	}
}

func startLDAPWorld(t testing.TB) *ldapWorld {
	dir := ldaptest.Start(t)
	for _, u := range []ldaptest.User{
		{UID: "alice", CN: "Alice", Mail: "alice@example.org", Password: "alice-pw"},
		{UID: "bob", CN: "Bob", Mail: "bob@example.org", Password: "bob-pw"},
		{UID: "carol", CN: "Carol", Mail: "carol@example.org", Password: "carol-pw"},
		{UID: "dave", CN: "Dave", Password: "dave-pw"},
	} {
		dir.AddUser(t, u)
	}
	dir.AddGroup(t, "devs", "alice", "bob")
	dir.AddGroup(t, "admins", "alice")
	return ldapWorldOn(t, dir)
}

// ldapWorldOn starts lading in ldap_auth over dir.
func ldapWorldOn(t testing.TB, dir *ldaptest.Server) *ldapWorld {
	srv := harbortest.Start(t, harbortest.WithCAFile(writeCA(t, dir.CA.PEM)))
	w := &ldapWorld{dir: dir, srv: srv, admin: newClient(t, srv, "admin", harbortest.AdminPassword)}
	w.admin.must(200, "PUT", "/api/v2.0/configurations", ldapSettings(dir))
	return w
}

// TestLDAPEndToEnd: configuration, Harbor's LDAP endpoints, groups as
// project members, the token service with directory passwords, and the
// directory's changes taking effect at the next token.
func TestLDAPEndToEnd(t *testing.T) {
	w := startLDAPWorld(t)
	srv, admin := w.srv, w.admin
	cfg := decode[map[string]struct{ Value any }](t, admin.must(200, "GET", "/api/v2.0/configurations", nil))
	if _, ok := cfg["ldap_search_password"]; ok {
		t.Error("GET /configurations returns ldap_search_password")
	}
	if cfg["ldap_url"].Value != w.dir.LDAPSURL {
		t.Errorf("ldap_url = %v", cfg["ldap_url"].Value)
	}
	for _, bad := range []map[string]any{
		{"ldap_scope": 5}, {"ldap_url": "http://x"}, {"ldap_timeout": 0}, {"oidc_scope": "email,profile"},
		{"oidc_group_filter": "("}, {"oidc_endpoint": "ftp://x"}, {"oidc_extra_redirect_parms": "[1]"}, {"ldap_group_sync_cron": "@hourly"},
	} {
		if st, out := admin.do("PUT", "/api/v2.0/configurations", bad); st != 400 {
			t.Errorf("PUT /configurations %v: %d %s, want 400", bad, st, out)
		}
	}

	// /ldap/ping: the stored configuration, and a wrong password named.
	type ping struct {
		Success bool
		Message string
	}
	if p := decode[ping](t, admin.must(200, "POST", "/api/v2.0/ldap/ping", nil)); !p.Success {
		t.Errorf("ping: %+v", p)
	}
	p := decode[ping](t, admin.must(200, "POST", "/api/v2.0/ldap/ping", map[string]any{"ldap_search_password": "wrong"}))
	if p.Success || !strings.Contains(p.Message, "refused the bind of the search DN") {
		t.Errorf("ping with a wrong password: %+v", p)
	}
	p = decode[ping](t, admin.must(200, "POST", "/api/v2.0/ldap/ping", map[string]any{"ldap_base_dn": "dc=nowhere"}))
	if p.Success || !strings.Contains(p.Message, "does not exist") {
		t.Errorf("ping with no such base DN: %+v", p)
	}
	// The stored password goes only to the stored server.
	p = decode[ping](t, admin.must(200, "POST", "/api/v2.0/ldap/ping", map[string]any{"ldap_url": w.dir.URL}))
	if p.Success || !strings.Contains(p.Message, "empty password") {
		t.Errorf("ping elsewhere without a password: %+v", p)
	}

	// Harbor's searches and the import.
	type ldapUser struct{ Username, Realname, Email string }
	if us := decode[[]ldapUser](t, admin.must(200, "GET", "/api/v2.0/ldap/users/search?username=alice", nil)); len(us) != 1 || us[0] != (ldapUser{"alice", "Alice", "alice@example.org"}) {
		t.Errorf("users/search alice: %+v", us)
	}
	if us := decode[[]ldapUser](t, admin.must(200, "GET", "/api/v2.0/ldap/users/search?username=*", nil)); len(us) != 0 {
		t.Errorf("users/search *: %+v, want nobody", us)
	}
	admin.must(200, "POST", "/api/v2.0/ldap/users/import", map[string]any{"ldap_uid_list": []string{"dave"}})
	type failed struct{ UID, Error string }
	if f := decode[[]failed](t, admin.must(404, "POST", "/api/v2.0/ldap/users/import", map[string]any{"ldap_uid_list": []string{"carol", "nobody", ""}})); len(f) != 2 || f[0].Error != "unknown_user" || f[1].Error != "empty_uid" {
		t.Errorf("import of unknown users: %+v", f)
	}
	type group struct {
		ID          int64  `json:"id"`
		GroupName   string `json:"group_name"`
		GroupType   int    `json:"group_type"`
		LdapGroupDN string `json:"ldap_group_dn"`
	}
	devsDN := strings.ToLower(ldaptest.GroupDN("devs"))
	if gs := decode[[]group](t, admin.must(200, "GET", "/api/v2.0/ldap/groups/search?groupname=devs", nil)); len(gs) != 1 || gs[0].LdapGroupDN != devsDN {
		t.Errorf("groups/search devs: %+v", gs)
	}
	admin.must(404, "GET", "/api/v2.0/ldap/groups/search?groupname=nope", nil)

	// /usergroups: an LDAP group by DN, checked against the directory.
	admin.must(201, "POST", "/api/v2.0/usergroups", map[string]any{"group_name": "developers", "group_type": 1, "ldap_group_dn": "CN=devs," + ldaptest.GroupsDN})
	admin.must(409, "POST", "/api/v2.0/usergroups", map[string]any{"group_name": "developers2", "group_type": 1, "ldap_group_dn": ldaptest.GroupDN("devs")})
	admin.must(400, "POST", "/api/v2.0/usergroups", map[string]any{"group_name": "ghosts", "group_type": 1, "ldap_group_dn": ldaptest.GroupDN("ghosts")})
	admin.must(400, "POST", "/api/v2.0/usergroups", map[string]any{"group_name": "bad", "group_type": 1, "ldap_group_dn": "not a DN"})
	gs := decode[[]group](t, admin.must(200, "GET", "/api/v2.0/usergroups?ldap_group_dn="+strings.ToUpper(devsDN), nil))
	if len(gs) != 1 || gs[0].GroupName != "developers" || gs[0].GroupType != 1 {
		t.Fatalf("usergroups by DN: %+v", gs)
	}

	// A project where the group is a developer; carol is a guest herself.
	admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team", "metadata": map[string]string{"public": "false"}})
	admin.must(201, "POST", "/api/v2.0/projects/team/members", map[string]any{"role_id": 2, "member_group": map[string]any{"id": gs[0].ID}})
	if st, _, msg := token(t, srv, "carol", "carol-pw", "repository:team/app:pull"); st != 200 {
		t.Fatalf("carol's first login: %d %s", st, msg)
	}
	admin.must(201, "POST", "/api/v2.0/projects/team/members", map[string]any{"role_id": 3, "member_user": map[string]any{"username": "carol"}})
	// In "mixed", bob is a guest himself and a developer through devs:
	// the higher role counts.
	admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "mixed", "metadata": map[string]string{"public": "false"}})
	admin.must(201, "POST", "/api/v2.0/projects/mixed/members", map[string]any{"role_id": 2, "member_group": map[string]any{"ldap_group_dn": ldaptest.GroupDN("devs")}})
	admin.must(201, "POST", "/api/v2.0/projects/mixed/members", map[string]any{"role_id": 3, "member_user": map[string]any{"username": "bob"}})
	if st, acts, _ := token(t, srv, "bob", "bob-pw", "repository:mixed/app:pull,push"); st != 200 || len(acts) != 2 {
		t.Errorf("bob, guest and developer through devs: %d %v, want pull and push", st, acts)
	}

	for _, tc := range []struct {
		user, pass string
		status     int
		want       []string
	}{
		{"bob", "bob-pw", 200, []string{"pull", "push"}},     // developer through devs
		{"carol", "carol-pw", 200, []string{"pull"}},         // guest herself
		{"dave", "dave-pw", 200, nil},                        // imported, no role
		{"alice", "alice-pw", 200, []string{"pull", "push"}}, // administrator through admins
		{"bob", "wrong", 401, nil},
		{"bob", "", 401, nil},
		{"*", "bob-pw", 401, nil},
		{"bob)(uid=*", "bob-pw", 401, nil},
	} {
		st, acts, msg := token(t, srv, tc.user, tc.pass, "repository:team/app:pull,push")
		slices.Sort(acts)
		if st != tc.status || !slices.Equal(acts, tc.want) {
			t.Errorf("token for %q: %d %v %s, want %d %v", tc.user, st, acts, msg, tc.status, tc.want)
		}
	}
	if err := srv.Push(context.Background(), harbortest.Image(t), "team/app", "v1", "bob", "bob-pw"); err != nil {
		t.Errorf("bob pushes with his LDAP password: %v", err)
	}
	type me struct {
		Username        string `json:"username"`
		SysadminFlag    bool   `json:"sysadmin_flag"`
		AdminRoleInAuth bool   `json:"admin_role_in_auth"`
	}
	if u := decode[me](t, newClient(t, srv, "alice", "alice-pw").must(200, "GET", "/api/v2.0/users/current", nil)); !u.AdminRoleInAuth || u.SysadminFlag {
		t.Errorf("alice through the admin group: %+v", u)
	}
	newClient(t, srv, "alice", "alice-pw").must(200, "GET", "/api/v2.0/configurations", nil)

	// The directory changes; the next token says so.
	w.dir.RemoveMember(t, "devs", "bob")
	if st, acts, _ := token(t, srv, "bob", "bob-pw", "repository:team/app:pull,push"); st != 200 || len(acts) != 0 {
		t.Errorf("bob out of devs: %d %v, want no actions", st, acts)
	}
	if st, acts, _ := token(t, srv, "bob", "bob-pw", "repository:mixed/app:pull,push"); st != 200 || !slices.Equal(acts, []string{"pull"}) {
		t.Errorf("bob out of devs, a guest himself: %d %v, want pull", st, acts)
	}
	w.dir.Lock(t, "carol")
	if st, _, _ := token(t, srv, "carol", "carol-pw", "repository:team/app:pull"); st != 401 {
		t.Errorf("carol locked: %d, want 401", st)
	}
	w.dir.DeleteUser(t, "dave")
	if st, _, _ := token(t, srv, "dave", "dave-pw", "repository:team/app:pull"); st != 401 {
		t.Errorf("dave deleted: %d, want 401", st)
	}

	// The auth mode is fixed now.
	st, out := admin.do("PUT", "/api/v2.0/configurations", map[string]any{"auth_mode": "db_auth"})
	if st != 400 || !strings.Contains(string(out), "auth mode cannot be modified") {
		t.Errorf("auth mode change with users: %d %s", st, out)
	}
}

// TestLDAPGroupSync: the scheduled job refreshes groups between logins
// and drops what a departed user held.
func TestLDAPGroupSync(t *testing.T) {
	w := startLDAPWorld(t)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if st, _, msg := token(t, w.srv, u, u+"-pw", "repository:library/x:pull"); st != 200 {
			t.Fatalf("%s: %d %s", u, st, msg)
		}
	}
	s, err := w.srv.Core.Jobs.GetSchedule(ctx, core.LDAPSyncKind, 0)
	if err != nil || s.Cron != jobs.CronHourly {
		t.Errorf("the sync's schedule: %+v %v, want hourly", s, err)
	}
	w.admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{"ldap_group_sync_cron": "0 */5 * * * *"})
	if s, err := w.srv.Core.Jobs.GetSchedule(ctx, core.LDAPSyncKind, 0); err != nil || s.Cron != "0 */5 * * * *" {
		t.Errorf("re-armed schedule: %+v %v", s, err)
	}
	w.admin.must(400, "PUT", "/api/v2.0/configurations", map[string]any{"ldap_group_sync_cron": "every day"})

	groups := func(name string) []int64 {
		subj, err := w.srv.Core.Identity.SubjectByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return subj.Groups
	}
	if len(groups("bob")) != 1 {
		t.Fatalf("bob's groups after login: %v", groups("bob"))
	}
	bobSession, err := w.srv.Core.Identity.StartSession(ctx, mustSubject(t, w.srv, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	w.dir.RemoveMember(t, "devs", "bob")
	w.dir.AddGroup(t, "ops", "alice")
	w.dir.DeleteUser(t, "bob")
	if info := runJob(t, w.srv, core.LDAPSyncKind); info.State != jobs.Success {
		t.Fatalf("sync job: %+v", info)
	}
	if g := groups("bob"); len(g) != 0 {
		t.Errorf("bob (gone from the directory) keeps groups %v", g)
	}
	if _, _, err := w.srv.Core.Identity.Session(ctx, bobSession.Token); err == nil {
		t.Error("bob's session survives his removal from the directory")
	}
	if g := groups("alice"); len(g) != 3 {
		t.Errorf("alice's groups after the sync: %v, want devs, admins, ops", g)
	}
}

func mustSubject(t *testing.T, srv *harbortest.Server, name string) access.Subject {
	s, err := srv.Core.Identity.SubjectByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLDAPDown: with the directory hung or stopped, LDAP logins fail
// within ldap_timeout with a 503 that says why, and everything else goes
// on: the API, the database administrator, robots.
func TestLDAPDown(t *testing.T) {
	w := startLDAPWorld(t)
	ctx := context.Background()
	if st, _, msg := token(t, w.srv, "alice", "alice-pw", "repository:library/x:pull"); st != 200 {
		t.Fatalf("alice: %d %s", st, msg)
	}
	_, secret, err := w.srv.Core.Identity.CreateRobot(ctx, w.srv.AdminSubject(t), identity.RobotCreate{Name: "ci", Level: "system", Duration: -1,
		Permissions: robotPull()})
	if err != nil {
		t.Fatal(err)
	}
	for _, down := range []struct {
		name string
		do   func()
		want string
	}{
		{"hung", func() { w.dir.Pause(t) }, "did not answer"},
		{"stopped", func() { w.dir.Resume(); w.dir.Stop() }, "connection refused"},
	} {
		down.do()
		// The LDAP login waits for the directory; meanwhile the others
		// are served.
		start := time.Now()
		ldapDone := make(chan struct{})
		go func() {
			defer close(ldapDone)
			st, _, msg := token(t, w.srv, "alice", "alice-pw", "repository:library/x:pull")
			if st != http.StatusServiceUnavailable || !strings.Contains(msg, down.want) {
				t.Errorf("%s directory: %d %s, want 503 saying %q", down.name, st, msg, down.want)
			}
			t.Logf("%s directory: the LDAP login failed after %v (ldap_timeout 2s)", down.name, time.Since(start).Round(time.Millisecond))
		}()
		if st, _, msg := token(t, w.srv, "admin", harbortest.AdminPassword, "repository:library/x:pull"); st != 200 {
			t.Errorf("%s directory: the database administrator: %d %s", down.name, st, msg)
		}
		if st, _, msg := token(t, w.srv, "robot$ci", secret, "repository:library/x:pull"); st != 200 {
			t.Errorf("%s directory: a robot: %d %s", down.name, st, msg)
		}
		w.admin.must(200, "GET", "/api/v2.0/projects", nil)
		t.Logf("%s directory: the administrator, a robot and the API answered after %v", down.name, time.Since(start).Round(time.Millisecond))
		<-ldapDone
		// Harbor's LDAP endpoints say what is wrong too.
		if st, out := w.admin.do("GET", "/api/v2.0/ldap/users/search?username=alice", nil); st != http.StatusServiceUnavailable || !strings.Contains(string(out), down.want) {
			t.Errorf("%s directory: users/search: %d %s, want 503 saying %q", down.name, st, out, down.want)
		}
	}
	w.dir.Restart(t)
	if st, _, msg := token(t, w.srv, "alice", "alice-pw", "repository:library/x:pull"); st != 200 {
		t.Errorf("directory back: %d %s", st, msg)
	}
}

func robotPull() []access.Permission {
	return []access.Permission{{Kind: "project", Namespace: "*", Access: []access.Policy{{Resource: access.Repository, Action: access.Pull}}}}
}
