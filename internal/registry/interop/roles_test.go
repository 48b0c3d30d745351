package interop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
)

// rolePassword is the role users' password.
const rolePassword = "Role-Passw0rd"

// TestRoles: real clients log in (through the token service) and push or
// pull as their roles allow, in a private and a public project: skopeo,
// podman, crane and oras, as developers, maintainers, guests, limited
// guests, outsiders, robots and anonymous callers. (docker's CLI needs a
// daemon, which CI has not; podman speaks the same protocol.)
func TestRoles(t *testing.T) {
	skopeo, podman, crane, oras := tool(t, "skopeo"), tool(t, "podman"), tool(t, "crane"), tool(t, "oras")
	reg := start(t)
	ctx := context.Background()
	c := reg.srv.Core
	adm, err := c.Identity.Login(ctx, "admin", admin, "", false)
	if err != nil {
		t.Fatal(err)
	}
	pub := true
	if _, err := c.Projects.Create(ctx, adm, project.Create{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Projects.Create(ctx, adm, project.Create{Name: "open", Public: &pub}); err != nil {
		t.Fatal(err)
	}
	roles := map[string]access.Role{"dev": access.Developer, "maint": access.Maintainer, "guest": access.Guest, "lguest": access.LimitedGuest}
	for name, role := range roles {
		if _, err := c.Identity.CreateUser(ctx, adm, identity.UserCreate{Username: name, Email: name + "@example.com", Realname: name, Password: rolePassword}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"team", "open"} {
			if _, err := c.Projects.AddMember(ctx, adm, project.Ref{Name: p}, project.MemberCreate{Role: role, Username: name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.Identity.CreateUser(ctx, adm, identity.UserCreate{Username: "outsider", Email: "o@example.com", Realname: "O", Password: rolePassword}); err != nil {
		t.Fatal(err)
	}
	bot, secret, err := c.Identity.CreateRobot(ctx, adm, identity.RobotCreate{Name: "ci", Level: access.LevelProject, Duration: -1,
		Permissions: []access.Permission{{Kind: "project", Namespace: "team", Access: []access.Policy{{Resource: access.Repository, Action: access.Push}}}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, _ := ociLayout(t, "v1", 3000)

	// skopeo, with credentials on each call.
	sk := func(credFlag, user, pass string, args ...string) error {
		all := []string{"--insecure-policy", "copy"}
		if user != "" {
			all = append(all, credFlag, user+":"+pass)
		}
		_, err := try(nil, skopeo, append(all, args...)...)
		return err
	}
	push := func(user, pass, repo string) error {
		return sk("--dest-creds", user, pass, "--dest-tls-verify=false", "oci:"+src+":v1", "docker://"+reg.host+"/"+repo+":v1")
	}
	pull := func(user, pass, repo string) error {
		out := filepath.Join(t.TempDir(), "pulled")
		return sk("--src-creds", user, pass, "--src-tls-verify=false", "docker://"+reg.host+"/"+repo+":v1", "oci:"+out+":v1")
	}
	for _, tc := range []struct {
		what     string
		err      error
		wantFail bool
	}{
		{"developer pushes", push("dev", rolePassword, "team/app"), false},
		{"developer pushes (public project)", push("dev", rolePassword, "open/app"), false},
		{"guest pushes", push("guest", rolePassword, "team/other"), true},
		{"outsider pushes", push("outsider", rolePassword, "team/other"), true},
		{"anonymous pushes", push("", "", "open/other"), true},
		{"robot with push pushes", push(bot.Name, secret, "team/robot"), false},
		{"robot pushes elsewhere", push(bot.Name, secret, "open/robot"), true},
		{"guest pulls", pull("guest", rolePassword, "team/app"), false},
		{"limited guest pulls", pull("lguest", rolePassword, "team/app"), false},
		{"robot with push pulls", pull(bot.Name, secret, "team/app"), false},
		{"outsider pulls private", pull("outsider", rolePassword, "team/app"), true},
		{"outsider pulls public", pull("outsider", rolePassword, "open/app"), false},
		{"anonymous pulls private", pull("", "", "team/app"), true},
		{"anonymous pulls public", pull("", "", "open/app"), false},
	} {
		if (tc.err != nil) != tc.wantFail {
			t.Errorf("skopeo: %s: %v (want failure %v)", tc.what, tc.err, tc.wantFail)
		}
	}

	// podman: login, pull, push (a guest's push is refused).
	p := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	penv := []string{"REGISTRY_AUTH_FILE=" + authFile(t, dir)}
	login := func(user string) {
		run(t, penv, podman, append(p, "login", "--tls-verify=false", "-u", user, "-p", rolePassword, reg.host)...)
	}
	login("guest")
	run(t, penv, podman, append(p, "pull", "--tls-verify=false", reg.host+"/team/app:v1")...)
	run(t, penv, podman, append(p, "tag", reg.host+"/team/app:v1", reg.host+"/team/bypodman:v1")...)
	if out, err := try(penv, podman, append(p, "push", "--tls-verify=false", reg.host+"/team/bypodman:v1")...); err == nil {
		t.Errorf("podman: a guest pushed: %s", out)
	}
	login("dev")
	run(t, penv, podman, append(p, "push", "--tls-verify=false", reg.host+"/team/bypodman:v1")...)

	// crane: a developer may not delete, a maintainer may.
	cenv := []string{"DOCKER_CONFIG=" + filepath.Join(dir, "crane")}
	os.MkdirAll(filepath.Join(dir, "crane"), 0o700)
	run(t, cenv, crane, "auth", "login", reg.host, "-u", "dev", "-p", rolePassword)
	digest := strings.TrimSpace(run(t, cenv, crane, "digest", "--insecure", reg.host+"/team/bypodman:v1"))
	if out, err := try(cenv, crane, "delete", "--insecure", reg.host+"/team/bypodman@"+digest); err == nil {
		t.Errorf("crane: a developer deleted: %s", out)
	}
	run(t, cenv, crane, "auth", "login", reg.host, "-u", "maint", "-p", rolePassword)
	run(t, cenv, crane, "delete", "--insecure", reg.host+"/team/bypodman@"+digest)
	// The catalog is for administrators.
	if out, err := try(cenv, crane, "catalog", "--insecure", reg.host); err == nil && strings.Contains(out, "team/app") {
		t.Errorf("crane: a maintainer listed the catalog: %s", out)
	}

	// oras: a developer pushes an artifact, a limited guest pulls it, a
	// guest cannot push.
	os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"k":1}`), 0o644)
	orasAs := func(user string, args ...string) (string, error) {
		return tryIn(dir, []string{"DOCKER_CONFIG=" + filepath.Join(dir, "oras")}, oras, append(append(args[:1:1], "--plain-http", "-u", user, "-p", rolePassword), args[1:]...)...)
	}
	if out, err := orasAs("dev", "push", "--artifact-type", "application/vnd.lading.test", reg.host+"/team/art:v1", "data.json:application/json"); err != nil {
		t.Errorf("oras: developer push: %v %s", err, out)
	}
	if out, err := orasAs("lguest", "pull", "-o", filepath.Join(dir, "out"), reg.host+"/team/art:v1"); err != nil {
		t.Errorf("oras: limited guest pull: %v %s", err, out)
	}
	if out, err := orasAs("guest", "push", "--artifact-type", "application/vnd.lading.test", reg.host+"/team/art:v2", "data.json:application/json"); err == nil {
		t.Errorf("oras: a guest pushed: %s", out)
	}
}
