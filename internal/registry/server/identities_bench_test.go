package server_test

import (
	"fmt"
	"testing"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/ldaptest"
	"github.com/lading-dev/lading/internal/oidctest"
)

// BenchmarkHarborLoginExternal measures a registry client's login: one
// token request with basic credentials (the directory or the provider
// asked every time, never cached), for a database user (the baseline),
// an LDAP user in three groups (search, bind, three group lookups against
// a real slapd) and an OIDC user's CLI secret (userinfo from a real
// provider), in the same run.
//
//	go test ./internal/registry/server -run '^$' -bench HarborLoginExternal -benchtime 500x
func BenchmarkHarborLoginExternal(b *testing.B) {
	w := startLDAPWorldB(b)
	w.admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team"})
	op := oidctest.Start(b, oidctest.User{ID: "u1", Username: "olive", Password: "olive-pw", Name: "Olive", Email: "olive@example.org", Groups: []string{"a", "b", "c"}})
	o := startOIDCServer(b, op)
	_, c := o.login(b, "olive", "olive-pw")
	me := decode[userResp](b, c.must(200, "GET", "/api/v2.0/users/current", nil))
	o.admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team"})
	bench := func(name string, srv *harbortest.Server, user, pass string) {
		b.Run(name, func(b *testing.B) {
			url := srv.URL + "/service/token?service=harbor-registry&scope=repository:team/app:pull,push"
			timed(b, func() error {
				st, body, err := get(url, user, pass)
				if err == nil && st != 200 {
					err = fmt.Errorf("%s: %d %s", user, st, body)
				}
				return err
			})
		})
	}
	// The baseline: the administrator, a database user (the only one
	// ldap_auth allows).
	bench("db-user", w.srv, "admin", harbortest.AdminPassword)
	bench("ldap-user-3-groups", w.srv, "bench", "bench-pw")
	bench("oidc-cli-secret-3-groups", o.srv, "olive", me.OIDCUserMeta.Secret)
}

func startLDAPWorldB(b *testing.B) *ldapWorld {
	dir := ldaptest.Start(b)
	dir.AddUser(b, ldaptest.User{UID: "bench", Mail: "bench@example.org", Password: "bench-pw"})
	for i := range 3 {
		dir.AddGroup(b, fmt.Sprintf("g%d", i), "bench")
	}
	return ldapWorldOn(b, dir)
}
