package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/ldaptest"
	"github.com/lading-dev/lading/internal/oidctest"
	"github.com/lading-dev/lading/internal/project"
)

func writeCA(t *testing.T, pem []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// ldapServer starts slapd with alice and bob in the group devs, and
// lading in ldap_auth over it.
func ldapServer(t *testing.T) (*ldaptest.Server, *harbortest.Server) {
	t.Helper()
	dir := ldaptest.Start(t)
	dir.AddUser(t, ldaptest.User{UID: "alice", CN: "Alice", Mail: "alice@example.org", Password: "alice-pw"})
	dir.AddUser(t, ldaptest.User{UID: "bob", CN: "Bob", Mail: "bob@example.org", Password: "bob-pw"})
	dir.AddGroup(t, "devs", "alice", "bob")
	srv := startFull(t, harbortest.WithCAFile(writeCA(t, dir.CA.PEM)))
	err := srv.Core.Settings.Update(context.Background(), srv.AdminSubject(t), map[string]any{
		"auth_mode": "ldap_auth", "ldap_url": dir.LDAPSURL, "ldap_verify_cert": true,
		"ldap_search_dn": ldaptest.SearchDN, "ldap_search_password": ldaptest.SearchPassword,
		"ldap_base_dn": ldaptest.BaseDN, "ldap_filter": "(objectClass=inetOrgPerson)", "ldap_uid": "uid", "ldap_scope": 2,
		"ldap_group_base_dn": ldaptest.GroupsDN, "ldap_group_search_filter": "(objectClass=groupOfNames)",
		"ldap_group_attribute_name": "cn", "ldap_group_search_scope": 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, srv
}

// TestLDAPTestAndGroups: the configuration page's LDAP test against
// slapd (the settings as typed, the stored password standing in, a
// wrong password and a wrong base refused with slapd's reason); an LDAP
// group made on the groups page (a DN the directory lacks refused) and
// added to a project in the members tab, after which the directory's
// members of the group open the project.
func TestLDAPTestAndGroups(t *testing.T) {
	dir, srv := ldapServer(t)
	ctx := context.Background()
	if _, err := srv.Core.Projects.Create(ctx, srv.AdminSubject(t), project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)
	b.login("admin", harbortest.AdminPassword)
	_, body := b.get("/admin/configuration")
	if !strings.Contains(body, `formaction="/admin/configuration/ldap-ping"`) {
		t.Fatal("no LDAP test button on the configuration page")
	}
	form := url.Values{"ldap_url": {dir.LDAPSURL}, "ldap_search_dn": {ldaptest.SearchDN}, "ldap_search_password": {""},
		"ldap_base_dn": {ldaptest.BaseDN}, "ldap_uid": {"uid"}, "ldap_scope": {"2"}, "has_ldap_verify_cert": {"1"}, "ldap_verify_cert": {"on"}}
	tests := []struct {
		name string
		edit map[string]string
		ok   bool
		want string
	}{
		{"stored password", nil, true, "The LDAP server answered"},
		{"typed password", map[string]string{"ldap_search_password": ldaptest.SearchPassword}, true, "The LDAP server answered"},
		{"wrong password", map[string]string{"ldap_search_password": "wrong"}, false, "error: "},
		{"a port that is not one", map[string]string{"ldap_url": dir.URL + "x", "ldap_search_password": ldaptest.SearchPassword}, false, "error: "},
		{"wrong base", map[string]string{"ldap_base_dn": "dc=nowhere,dc=org"}, false, "error: "},
	}
	for _, tt := range tests {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		for k, v := range tt.edit {
			f.Set(k, v)
		}
		st, body := b.post("/admin/configuration/ldap-ping", f)
		got := pingRe.FindString(body)
		if st != http.StatusOK || strings.Contains(got, `class="flash`) != tt.ok || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %d %q, want ok %v and %q", tt.name, st, got, tt.ok, tt.want)
		}
	}
	// Nothing the tests typed was saved.
	cur, err := srv.Core.Settings.Get(ctx)
	if err != nil || cur.Values["ldap_base_dn"] != ldaptest.BaseDN {
		t.Errorf("ldap_base_dn after the tests: %v %v", cur.Values["ldap_base_dn"], err)
	}

	// Groups.
	b.get("/admin/groups")
	if st, body := b.post("/admin/groups", url.Values{"name": {"ghosts"}, "type": {"1"}, "ldap_dn": {ldaptest.GroupDN("ghosts")}}); st != http.StatusBadRequest || !strings.Contains(body, `class="error"`) {
		t.Errorf("a group the directory lacks: %d", st)
	}
	if st, loc := b.post("/admin/groups", url.Values{"name": {"developers"}, "type": {"1"}, "ldap_dn": {ldaptest.GroupDN("devs")}}); st != http.StatusSeeOther {
		t.Fatalf("create group: %d %.1000s", st, loc)
	}
	_, body = b.get("/admin/groups")
	if !strings.Contains(body, "developers") || !strings.Contains(strings.ToLower(body), strings.ToLower(ldaptest.GroupDN("devs"))) {
		t.Errorf("groups page does not list developers:\n%.2000s", body)
	}
	b.get("/projects/acme/members")
	if st, loc := b.post("/projects/acme/members", url.Values{"kind": {"ldap-group"}, "name": {ldaptest.GroupDN("devs")}, "role": {"2"}}); st != http.StatusSeeOther {
		t.Fatalf("add the group as a member: %d %s", st, loc)
	}
	_, body = b.get("/projects/acme/members")
	if !regexp.MustCompile(`developers</td><td>[^<]*group`).MatchString(body) {
		t.Errorf("members tab does not list the group:\n%.3000s", body)
	}
	// alice is in devs: the project opens to her, a developer by her group.
	alice := newBrowser(t, srv.URL)
	alice.login("alice", "alice-pw")
	if st, _ := alice.get("/projects/acme/repositories"); st != http.StatusOK {
		t.Errorf("alice, in the group, opens the project: %d", st)
	}
	// Deleting the group removes the membership.
	_, body = b.get("/admin/groups")
	gid := regexp.MustCompile(`action="/admin/groups/(\d+)/delete"`).FindStringSubmatch(body)
	if gid == nil {
		t.Fatal("no delete form for the group")
	}
	if st, _ := b.post("/admin/groups/"+gid[1]+"/delete", nil); st != http.StatusSeeOther {
		t.Errorf("delete group: %d", st)
	}
	_, body = b.get("/admin/groups")
	if strings.Contains(body, "developers") {
		t.Error("the group is still listed")
	}
}

// TestCLISecret: an OIDC user (onboarded through a real OpenID Provider)
// sees their CLI secret in their profile and makes a new one; the API
// accepts the new secret and refuses the old one. A database user sees
// no CLI secret.
func TestCLISecret(t *testing.T) {
	const clientID, clientSecret = "lading", "lading-client-secret"
	op := oidctest.Start(t, oidctest.User{ID: "u-carol", Username: "carol", Password: "carol-pw", Name: "Carol", Email: "carol@example.org"})
	srv := startFull(t, harbortest.WithCAFile(writeCA(t, op.CA.PEM)))
	op.Client(clientID, clientSecret, srv.URL+"/c/oidc/callback")
	err := srv.Core.Settings.Update(context.Background(), srv.AdminSubject(t), map[string]any{
		"auth_mode": "oidc_auth", "oidc_name": "test", "oidc_endpoint": op.URL, "oidc_client_id": clientID, "oidc_client_secret": clientSecret,
		"oidc_scope": "openid,profile,email,offline_access", "oidc_user_claim": "preferred_username", "oidc_verify_cert": true, "oidc_auto_onboard": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	hc := op.Browser()
	cb := op.Authorize(t, hc, srv.URL+"/c/oidc/login?redirect_url=/profile", "carol", "carol-pw")
	resp, err := hc.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b := &browser{t: t, base: srv.URL, c: hc}
	secretRe := regexp.MustCompile(`id="cli-secret".*?<code>([^<]+)</code>`)
	st, body := b.get("/profile")
	m := secretRe.FindStringSubmatch(strings.ReplaceAll(body, "\n", " "))
	if st != http.StatusOK || m == nil {
		t.Fatalf("carol's profile shows no CLI secret: %d\n%.3000s", st, body)
	}
	old := m[1]
	if st, loc := b.post("/profile/cli-secret", nil); st != http.StatusSeeOther {
		t.Fatalf("regenerate: %d %.1000s", st, loc)
	}
	_, body = b.get("/profile")
	m = secretRe.FindStringSubmatch(strings.ReplaceAll(body, "\n", " "))
	if m == nil || m[1] == old {
		t.Fatalf("after regenerating, the secret is %v (was %q)", m, old)
	}
	api := func(secret string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v2.0/users/current", nil)
		req.SetBasicAuth("carol", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := api(m[1]); got != http.StatusOK {
		t.Errorf("the API with the new secret: %d", got)
	}
	if got := api(old); got != http.StatusUnauthorized {
		t.Errorf("the API with the old secret: %d, want 401", got)
	}
	// The administrator, a database user, has no CLI secret.
	a := newBrowser(t, srv.URL)
	a.login("admin", harbortest.AdminPassword)
	if _, body := a.get("/profile"); strings.Contains(body, "cli-secret") {
		t.Error("a database user is shown a CLI secret")
	}
}
