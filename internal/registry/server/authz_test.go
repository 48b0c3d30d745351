package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-openapi/runtime"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry/server"
)

// subject is one kind of caller of the authorization test.
type subject struct {
	name     string
	user     string // login ("" anonymous)
	password string
	role     access.Role // in the test projects; 0 none
	admin    bool
	robot    int // 1: with every robot permission, 2: without any that matters
}

// scope says whose permission an endpoint needs.
type scope int

const (
	public        scope = iota // everyone
	authenticated              // any authenticated subject
	usersOnly                  // authenticated users; robots get 412
	system                     // a system permission (resource, action)
	inProject                  // a permission in the project (resource, action)
	createProject              // any user (creation restriction "everyone"); robots need the system permission
	registryToken              // a repository action through the token service: refused with 401
	registryBasic              // a repository action with basic credentials: refused with 403
	loginForm                  // users with their password (the login form); robots and anonymous callers get 401
)

// env is the world of the test: two projects (private and public) where
// every role user holds their role, and a third, "other", where nobody
// but the administrator is.
type env struct {
	srv     *harbortest.Server
	admin   access.Subject
	digests map[string]string // of each project's app:v1
	otherID map[string]int64
	n       atomic.Int64
	subs    []subject // the subjects of the test
	// newUser, when set, makes the users of setups (freshUser) where
	// the database cannot (an external auth mode).
	newUser func(t *testing.T, name string) int64
	// memberOf, when set, is how a role subject is a project member
	// (through a group).
	memberOf func(s subject) lproject.MemberCreate
}

type proj struct {
	name   string
	id     int64
	public bool
}

func (e *env) fresh(prefix string) string { return fmt.Sprintf("%s%d", prefix, e.n.Add(1)) }

// row is one endpoint.
type row struct {
	name  string
	scope scope
	res   access.Resource
	act   access.Action
	// other: the target belongs to another project, so that subjects
	// allowed in this project must still not reach it (404).
	other bool
	// inOther: the target is in the project "other" and the path names
	// no project (/robots/{id}), so the subject's rights there decide:
	// only the administrator and the non-member (a guest there) are
	// members of "other". The row runs once.
	inOther bool
	// always, when set, is every subject's status (what nobody may do).
	always int
	// allowed, when set, is the status of the subjects the permission
	// lets through, where the test's world cannot serve them (an
	// external identity source it does not have).
	allowed int
	// setup prepares a fresh target for one call, as the administrator.
	setup func(t *testing.T, e *env, p proj) any
	call  func(ctx context.Context, c *v2.HarborAPI, e *env, p proj, s subject, target any) error
}

const password = "Passw0rd-for-tests"

var subjects = []subject{
	{name: "sysadmin", user: "admin", password: harbortest.AdminPassword, admin: true},
	{name: "projectAdmin", user: "u-padmin", password: password, role: access.ProjectAdmin},
	{name: "maintainer", user: "u-maint", password: password, role: access.Maintainer},
	{name: "developer", user: "u-dev", password: password, role: access.Developer},
	{name: "guest", user: "u-guest", password: password, role: access.Guest},
	{name: "limitedGuest", user: "u-lguest", password: password, role: access.LimitedGuest},
	{name: "non-member", user: "u-outsider", password: password},
	{name: "robot-with", user: "robot$with", robot: 1},
	{name: "robot-without", user: "robot$without", robot: 2},
	{name: "anonymous"},
}

// otherRoles are the members of the project "other" besides the
// administrator: the non-member of the test projects is a guest there.
var otherRoles = map[string]access.Role{"u-outsider": access.Guest}

// allPolicies is every permission of a kind robots may be given.
func allPolicies(p access.Policies) []access.Policy {
	var out []access.Policy
	for r, acts := range p {
		for _, a := range acts {
			out = append(out, access.Policy{Resource: r, Action: a})
		}
	}
	return out
}

// expected is the status a subject gets: ok when allowed (404 for
// another project's resource), else 401 or 403. It is derived from the
// role matrix and the robot permission lists of package access, which
// transcribe Harbor's.
func expected(r row, s subject, p proj) (allowed bool, status int) {
	if r.always != 0 {
		return false, r.always
	}
	anon := s.user == ""
	if r.inOther {
		p, s.role = proj{name: "other"}, otherRoles[s.user]
	}
	switch r.scope {
	case public:
		allowed = true
	case authenticated:
		allowed = !anon
	case usersOnly:
		if s.robot != 0 {
			return false, http.StatusPreconditionFailed
		}
		allowed = !anon
	case system:
		allowed = s.admin || (s.robot == 1 && access.RobotSystemPolicies.Has(r.res, r.act))
	case createProject:
		allowed = !anon && (s.robot == 0 || s.robot == 1)
	case loginForm:
		if anon || s.robot != 0 {
			return false, http.StatusUnauthorized
		}
		allowed = true
	case inProject, registryToken, registryBasic:
		res := r.res
		robotRes := res
		if res == access.Self {
			robotRes = access.Project
		}
		allowed = s.admin ||
			(s.role != 0 && access.Matrix[s.role].Has(res, r.act)) ||
			(p.public && access.PublicProject.Has(res, r.act)) ||
			(s.robot == 1 && (access.RobotProjectPolicies.Has(robotRes, r.act) || (r.act == access.Pull && access.RobotProjectPolicies.Has(robotRes, access.Push))))
	}
	switch {
	case allowed && r.other:
		return true, http.StatusNotFound
	case allowed && r.allowed != 0:
		return true, r.allowed
	case allowed:
		return true, 0
	case anon || r.scope == registryToken:
		return false, http.StatusUnauthorized
	}
	return false, http.StatusForbidden
}

// statusOf reads the HTTP status from a go-client error (0 for success).
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var api *runtime.APIError
	if errors.As(err, &api) {
		return api.Code
	}
	var coded interface{ IsCode(int) bool }
	if errors.As(err, &coded) {
		for _, c := range []int{200, 201, 400, 401, 403, 404, 405, 409, 412, 413, 429, 500, 503} {
			if coded.IsCode(c) {
				if c < 300 {
					return 0
				}
				return c
			}
		}
	}
	return -1
}

func setupEnv(t *testing.T) (*env, []proj) {
	ctx := context.Background()
	// Registries point at the server itself, on loopback.
	srv := harbortest.Start(t, harbortest.WithConfig(func(c *server.Config) { c.Outbound.Allow = []string{"127.0.0.0/8"} }))
	e := &env{srv: srv, admin: srv.AdminSubject(t), otherID: map[string]int64{}, digests: map[string]string{}}
	for _, s := range subjects {
		if s.user == "" || s.admin || s.robot != 0 {
			continue
		}
		if _, err := srv.Core.Identity.CreateUser(ctx, e.admin, identity.UserCreate{Username: s.user, Email: s.user + "@example.com", Realname: s.user, Password: password}); err != nil {
			t.Fatal(err)
		}
	}
	return e, e.populate(t, subjects, "u-outsider")
}

// populate makes the projects (with the role subjects of subs as
// members, through e.addMember), their images, the other project's
// resources (outsider a guest there) and the robots of subs.
func (e *env) populate(t *testing.T, subs []subject, outsider string) []proj {
	ctx := context.Background()
	srv, c := e.srv, e.srv.Core
	e.subs = subs
	var projects []proj
	for _, spec := range []proj{{name: "priv"}, {name: "pub", public: true}, {name: "other"}} {
		pub := spec.public
		p, err := c.Projects.Create(ctx, e.admin, lproject.Create{Name: spec.name, Public: &pub})
		if err != nil {
			t.Fatal(err)
		}
		spec.id = p.ID
		if spec.name != "other" {
			e.addMembers(t, spec.name)
			projects = append(projects, spec)
		}
		img := harbortest.Image(t)
		if err := srv.Push(ctx, img, spec.name+"/app", "v1", "admin", harbortest.AdminPassword); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		e.digests[spec.name] = d.String()
		if spec.name == "other" {
			e.otherID["project"] = p.ID
			m, err := c.Projects.AddMember(ctx, e.admin, lproject.Ref{Name: "other"}, lproject.MemberCreate{Role: access.Guest, Username: outsider})
			if err != nil {
				t.Fatal(err)
			}
			e.otherID["member"] = m.ID
			r, _, err := c.Identity.CreateRobot(ctx, e.admin, identity.RobotCreate{Name: "other", Level: access.LevelProject, Duration: -1,
				Permissions: []access.Permission{{Kind: "project", Namespace: "other", Access: []access.Policy{{Resource: access.Repository, Action: access.Pull}}}}})
			if err != nil {
				t.Fatal(err)
			}
			e.otherID["robot"] = r.ID
			if err := c.Artifacts.CreateTag(ctx, e.admin, lproject.Ref{Name: "other"}, "app", "v1", "othertag"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The robots: every permission on every project and at system level,
	// or one that no endpoint asks for.
	with := []access.Permission{
		{Kind: "project", Namespace: "*", Access: allPolicies(access.RobotProjectPolicies)},
		{Kind: "system", Namespace: "/", Access: allPolicies(access.RobotSystemPolicies)},
	}
	without := []access.Permission{{Kind: "project", Namespace: "*", Access: []access.Policy{{Resource: access.Scan, Action: access.Read}}}}
	for i, perms := range [][]access.Permission{with, without} {
		name := []string{"with", "without"}[i]
		_, secret, err := c.Identity.CreateRobot(ctx, e.admin, identity.RobotCreate{Name: name, Level: access.LevelSystem, Duration: -1, Permissions: perms})
		if err != nil {
			t.Fatal(err)
		}
		for j := range subs {
			if subs[j].user == "robot$"+name {
				subs[j].password = secret
			}
		}
	}
	return projects
}

// addMembers gives every role subject of e.subs their role in a project:
// the user, or with e.memberOf their group.
func (e *env) addMembers(t *testing.T, project string) {
	for _, s := range e.subs {
		if s.role == 0 {
			continue
		}
		m := lproject.MemberCreate{Role: s.role, Username: s.user}
		if e.memberOf != nil {
			m = e.memberOf(s)
		}
		if _, err := e.srv.Core.Projects.AddMember(context.Background(), e.admin, lproject.Ref{Name: project}, m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthorization is the one table of who may call what: every endpoint
// of the API, and the registry's pull, push and delete, for the system
// administrator, each project role, a non-member, a robot with and one
// without the permission, and an anonymous caller, in a private and a
// public project, including ids of another project's resources. Every
// row's every cell is asserted.
func TestAuthorization(t *testing.T) {
	e, projects := setupEnv(t)
	rows := authzRows()
	cells := 0
	for _, r := range rows {
		ps := projects
		if r.inOther || (r.scope != inProject && r.scope != registryToken && r.scope != registryBasic) {
			ps = projects[:1]
		}
		for _, p := range ps {
			for _, s := range subjects {
				name := fmt.Sprintf("%s/%s/%s", r.name, p.name, s.name)
				var target any
				if r.setup != nil {
					target = r.setup(t, e, p)
				}
				ctx := context.Background()
				_, want := expected(r, s, p)
				got := statusOf(r.call(ctx, e.srv.API(s.user, s.password), e, p, s, target))
				if got != want {
					t.Errorf("%s: status %d, want %d", name, got, want)
				}
				cells++
			}
		}
	}
	t.Logf("%d endpoints, %d cells asserted", len(rows), cells)
}

func ptr[T any](v T) *T { return &v }

type testingT = testing.T

func projectRef(p proj) lproject.Ref { return lproject.Ref{Name: p.name} }

// freshUser creates a user for one call.
func freshUser(t *testing.T, e *env, _ proj) any {
	name := e.fresh("fresh")
	if e.newUser != nil {
		return e.newUser(t, name)
	}
	u, err := e.srv.Core.Identity.CreateUser(context.Background(), e.admin, identity.UserCreate{Username: name, Email: name + "@example.com", Realname: name, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// freshMember adds a fresh user to p and returns the member id.
func freshMember(t *testing.T, e *env, p proj) any {
	id := freshUser(t, e, p).(int64)
	m, err := e.srv.Core.Projects.AddMember(context.Background(), e.admin, lproject.Ref{Name: p.name}, lproject.MemberCreate{Role: access.Guest, UserID: id})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// freshRobot creates a robot: at system level when p.name is "", else in p.
func freshRobot(t *testing.T, e *env, p proj) any {
	c := identity.RobotCreate{Name: e.fresh("r"), Level: access.LevelSystem, Duration: -1,
		Permissions: []access.Permission{{Kind: "project", Namespace: "*", Access: []access.Policy{{Resource: access.Repository, Action: access.Pull}}}}}
	if p.name != "" {
		c.Level = access.LevelProject
		c.Permissions[0].Namespace = p.name
	}
	r, _, err := e.srv.Core.Identity.CreateRobot(context.Background(), e.admin, c)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// otherRobot creates a robot in the project "other".
func otherRobot(t *testing.T, e *env, _ proj) any { return freshRobot(t, e, proj{name: "other"}) }

// freshRepo copies p/app:v1 into a new repository of p.
func freshRepo(t *testing.T, e *env, p proj) any {
	name := e.fresh("copy")
	if _, err := e.srv.Core.Artifacts.CopyArtifact(context.Background(), e.admin, lproject.Ref{Name: p.name}, name, p.name+"/app:v1"); err != nil {
		t.Fatal(err)
	}
	return name
}

// freshTag tags p/app:v1 anew.
func freshTag(t *testing.T, e *env, p proj) any {
	tag := e.fresh("t")
	if err := e.srv.Core.Artifacts.CreateTag(context.Background(), e.admin, lproject.Ref{Name: p.name}, "app", "v1", tag); err != nil {
		t.Fatal(err)
	}
	return tag
}

// freshProject creates a project like p (visibility, members).
func freshProject(t *testing.T, e *env, p proj) any {
	name := e.fresh("del")
	if _, err := e.srv.Core.Projects.Create(context.Background(), e.admin, lproject.Create{Name: name, Public: &p.public}); err != nil {
		t.Fatal(err)
	}
	e.addMembers(t, name)
	return name
}

// httpCall calls a path of the server with basic credentials (none when
// user is ""), for what Harbor's client has no operation for; a status
// of 300 or more is returned as an API error.
func httpCall(e *env, user, pass, method, path, contentType, body string) error {
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &runtime.APIError{Code: resp.StatusCode, OperationName: method + " " + path}
	}
	return nil
}

// registry calls the registry the way a client does: through the token
// service (token) or with basic credentials on every request.
func registryCall(e *env, user, pass, method, path, scope string, token bool) error {
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	if token {
		treq, _ := http.NewRequest("GET", e.srv.URL+"/service/token?service=harbor-registry&scope="+scope, nil)
		if user != "" {
			treq.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(treq)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return &runtime.APIError{Code: resp.StatusCode, OperationName: "token: " + string(b)}
		}
		tok := strings.Split(strings.Split(string(b), `"token":"`)[1], `"`)[0]
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &runtime.APIError{Code: resp.StatusCode, OperationName: method + " " + path}
	}
	return nil
}
