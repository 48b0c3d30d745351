package interop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/dockertest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/testenv"
)

// rolePassword is the role users' password.
const rolePassword = "Role-Passw0rd"

// TestRoles: real clients log in (through the token service) and push or
// pull as their roles allow, in a private and a public project: skopeo,
// podman, crane, oras and docker (a real Docker Engine, started by
// dockertest), as developers, maintainers, guests, limited guests,
// outsiders, robots and anonymous callers.
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

	t.Run("docker", func(t *testing.T) { dockerRoles(t, reg, bot.Name, secret) })
}

// dockerRoles: the docker CLI, through a real Docker Engine, logs in and
// pulls and pushes as each role may, and is refused what it may not. The
// engine reaches the registry over plain HTTP: dockerd treats registries
// on 127.0.0.0/8 as insecure (HTTP allowed) by default, and dockertest
// leaves that default alone. team/app:v1 is in the registry already.
func dockerRoles(t *testing.T, reg *registry, robot, secret string) {
	docker := testenv.Tool(t, "docker", "Debian's docker.io")
	host := dockertest.Start(t)
	env := []string{"DOCKER_HOST=" + host, "DOCKER_CONFIG=" + t.TempDir()}
	dk := func(args ...string) (string, error) { return try(env, docker, args...) }
	login := func(user, pass string) {
		t.Helper()
		if out, err := dk("login", "-u", user, "-p", pass, reg.host); err != nil {
			t.Fatalf("docker login as %s: %v\n%s", user, err, out)
		}
	}
	app, mine := reg.host+"/team/app:v1", reg.host+"/team/bydocker:v1"

	// A wrong password is refused at login.
	if out, err := dk("login", "-u", "dev", "-p", "wrong", reg.host); err == nil || !strings.Contains(out, "unauthorized") {
		t.Errorf("docker login with a wrong password: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		user, pass, what string
		args             []string
		wantFail         bool
	}{
		{"outsider", rolePassword, "an outsider pulls a private repository", []string{"pull", app}, true},
		{"guest", rolePassword, "a guest pulls", []string{"pull", app}, false},
		{"guest", rolePassword, "tag", []string{"tag", app, mine}, false},
		{"guest", rolePassword, "a guest pushes", []string{"push", mine}, true},
		{"lguest", rolePassword, "a limited guest pulls", []string{"pull", app}, false},
		{"dev", rolePassword, "a developer pushes", []string{"push", mine}, false},
		{robot, secret, "a robot with push only in team pushes", []string{"push", mine}, false},
		{robot, secret, "tag for another project", []string{"tag", app, reg.host + "/open/bydocker:v1"}, false},
		{robot, secret, "the robot pushes to another project", []string{"push", reg.host + "/open/bydocker:v1"}, true},
	} {
		login(tc.user, tc.pass)
		out, err := dk(tc.args...)
		switch {
		case (err != nil) != tc.wantFail:
			t.Errorf("docker %s (%s as %s): %v (want failure %v)\n%s", strings.Join(tc.args, " "), tc.what, tc.user, err, tc.wantFail, out)
		case tc.wantFail && !strings.Contains(out, "denied"):
			t.Errorf("docker %s (%s as %s) failed, but not as refused:\n%s", strings.Join(tc.args, " "), tc.what, tc.user, out)
		}
	}
	// The registry holds the repository docker pushed.
	d, err := reg.srv.Core.Artifacts.Repository(context.Background(), adminOf(t, reg), project.Ref{Name: "team"}, "bydocker")
	if err != nil || d.Name != "team/bydocker" {
		t.Errorf("the repository docker pushed: %+v %v", d, err)
	}
	// Logged out, docker is anonymous: a private pull is refused, a public
	// one allowed.
	if out, err := dk("logout", reg.host); err != nil {
		t.Fatalf("docker logout: %v\n%s", err, out)
	}
	if out, err := dk("pull", app); err == nil || !strings.Contains(out, "denied") {
		t.Errorf("docker: an anonymous pull of a private repository: %v\n%s", err, out)
	}
	if out, err := dk("pull", reg.host+"/open/app:v1"); err != nil {
		t.Errorf("docker: an anonymous pull of a public repository: %v\n%s", err, out)
	}
}

// adminOf logs the administrator in.
func adminOf(t *testing.T, reg *registry) access.Subject {
	t.Helper()
	adm, err := reg.srv.Core.Identity.Login(context.Background(), "admin", admin, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return adm
}
