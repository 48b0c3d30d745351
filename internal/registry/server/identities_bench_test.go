package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/lading-dev/lading/internal/ldaptest"
	"github.com/lading-dev/lading/internal/oidctest"
)

// BenchmarkTokenLogin measures a registry client's login: one token
// request with basic credentials (the directory or the provider asked
// every time, never cached), for a database user (the baseline), an LDAP
// user in three groups (search, bind, three group lookups against a real
// slapd) and an OIDC user's CLI secret (userinfo from a real provider),
// in the same run.
//
//	go test ./internal/registry/server -run '^$' -bench TokenLogin -benchtime 2s
func BenchmarkTokenLogin(b *testing.B) {
	w := startLDAPWorldB(b)
	ctx := context.Background()
	srv := w.srv
	_ = ctx
	// The baseline: the administrator, a database user (the only one
	// ldap_auth allows).
	scope := "repository:team/app:pull,push"
	bench := func(name, user, pass string) {
		b.Run(name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", srv.URL+"/service/token?service=harbor-registry&scope="+scope, nil)
			req.SetBasicAuth(user, pass)
			for b.Loop() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: %s", user, resp.Status)
				}
			}
		})
	}
	w.admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team"})
	bench("db-user", "admin", "Harbor12345")
	bench("ldap-user-3-groups", "bench", "bench-pw")

	op := oidctest.Start(b, oidctest.User{ID: "u1", Username: "olive", Password: "olive-pw", Name: "Olive", Email: "olive@example.org", Groups: []string{"a", "b", "c"}})
	o := startOIDCServer(b, op)
	_, c := o.login(b, "olive", "olive-pw")
	me := decode[userResp](b, c.must(200, "GET", "/api/v2.0/users/current", nil))
	o.admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team"})
	srv = o.srv
	bench("oidc-cli-secret-3-groups", "olive", me.OIDCUserMeta.Secret)
}

func startLDAPWorldB(b *testing.B) *ldapWorld {
	dir := ldaptest.Start(b)
	dir.AddUser(b, ldaptest.User{UID: "bench", Mail: "bench@example.org", Password: "bench-pw"})
	for i := range 3 {
		dir.AddGroup(b, fmt.Sprintf("g%d", i), "bench")
	}
	return ldapWorldOn(b, dir)
}
