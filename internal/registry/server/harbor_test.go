package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-openapi/runtime"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/configure"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/health"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
)

// httpResult is a raw API answer.
type httpResult struct {
	status int
	header http.Header
	body   string
}

// do sends a raw request (headers as "Name: value").
func do(t *testing.T, srv *harbortest.Server, method, path, body, user, pass string, headers ...string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// harborError reads Harbor's error document.
func harborError(t *testing.T, r httpResult) (string, string) {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || len(e.Errors) != 1 {
		t.Fatalf("not Harbor's error shape (%d): %q", r.status, r.body)
	}
	return e.Errors[0].Code, e.Errors[0].Message
}

const admin = "admin"

var adminPW = harbortest.AdminPassword

func TestConventions(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()

	// ping, health, systeminfo.
	if r := do(t, srv, "GET", "/api/v2.0/ping", "", "", ""); r.status != 200 || r.body != "Pong" {
		t.Errorf("ping: %d %q", r.status, r.body)
	}
	h, err := srv.API("", "").Health.GetHealth(ctx, health.NewGetHealthParams())
	if err != nil || h.Payload.Status != "healthy" || len(h.Payload.Components) != 3 {
		t.Errorf("health: %+v %v", h, err)
	}
	info, err := srv.Admin().Systeminfo.GetSystemInfo(ctx, systeminfo.NewGetSystemInfoParams())
	if err != nil || info.Payload.AuthMode == nil || *info.Payload.AuthMode != "db_auth" || *info.Payload.ProjectCreationRestriction != "everyone" || *info.Payload.HarborVersion != "test" {
		t.Errorf("systeminfo: %+v %v", info, err)
	}

	// Every response carries X-Request-Id; the client's own is kept.
	for _, p := range []string{"/api/v2.0/projects", "/v2/", "/service/token", "/api/v2.0/nope"} {
		if r := do(t, srv, "GET", p, "", "", ""); len(r.header.Get("X-Request-Id")) < 16 {
			t.Errorf("%s: X-Request-Id %q", p, r.header.Get("X-Request-Id"))
		}
	}
	if r := do(t, srv, "GET", "/api/v2.0/projects", "", "", "", "X-Request-Id: my-req-1"); r.header.Get("X-Request-Id") != "my-req-1" {
		t.Errorf("client request id not kept: %q", r.header.Get("X-Request-Id"))
	}

	// Harbor's error shapes and codes.
	for _, tc := range []struct {
		method, path, body, user, pass string
		status                         int
		code                           string
	}{
		{"GET", "/api/v2.0/projects/nope", "", admin, adminPW, 404, "NOT_FOUND"},
		{"GET", "/api/v2.0/users", "", "", "", 401, "UNAUTHORIZED"},
		{"GET", "/api/v2.0/users", "", admin, "wrong", 401, "UNAUTHORIZED"},
		{"GET", "/api/v2.0/projects?q=name", "", "", "", 400, "BAD_REQUEST"},
		{"GET", "/api/v2.0/projects?page=0", "", "", "", 400, "BAD_REQUEST"},
		{"POST", "/api/v2.0/projects", `{"project_name": "Bad Name"}`, admin, adminPW, 400, "BAD_REQUEST"},
		{"POST", "/api/v2.0/projects", `{"project_name": "library"}`, admin, adminPW, 409, "CONFLICT"},
		{"POST", "/api/v2.0/projects", `{not json`, admin, adminPW, 400, "BAD_REQUEST"},
		{"POST", "/api/v2.0/projects", `{"project_name": "` + strings.Repeat("a", 2<<20) + `"}`, admin, adminPW, 413, "REQUEST_ENTITY_TOO_LARGE"},
		{"GET", "/api/v2.0/nope", "", "", "", 404, "NOT_FOUND"},
		{"GET", "/api/v2.0/users/abc", "", admin, adminPW, 400, "BAD_REQUEST"},
	} {
		r := do(t, srv, tc.method, tc.path, tc.body, tc.user, tc.pass)
		if r.status != tc.status {
			t.Errorf("%s %.60s: status %d, want %d (%s)", tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		if code, msg := harborError(t, r); code != tc.code || msg == "" {
			t.Errorf("%s %.60s: code %s %q, want %s", tc.method, tc.path, code, msg, tc.code)
		}
	}

	// Creation answers 201 with Location; unknown fields are ignored.
	r := do(t, srv, "POST", "/api/v2.0/projects", `{"project_name": "loc", "bogus": {"x": 1}, "metadata": {"public": "true"}}`, admin, adminPW)
	if r.status != 201 || !strings.HasPrefix(r.header.Get("Location"), "/api/v2.0/projects/") {
		t.Errorf("create: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	if r := do(t, srv, "GET", r.header.Get("Location"), "", admin, adminPW); r.status != 200 || !strings.Contains(r.body, `"name":"loc"`) {
		t.Errorf("GET Location: %d %s", r.status, r.body)
	}

	// X-Is-Resource-Name makes a numeric path parameter a name.
	if _, err := srv.Admin().Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "123"})); err != nil {
		t.Fatal(err)
	}
	yes := true
	got, err := srv.Admin().Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("123").WithXIsResourceName(&yes))
	if err != nil || got.Payload.Name != "123" {
		t.Errorf("X-Is-Resource-Name: %+v %v", got, err)
	}

	// Paging: X-Total-Count and Link, page_size capped at 100.
	for i := range 25 {
		if _, err := srv.Admin().Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "page" + strconv.Itoa(i)})); err != nil {
			t.Fatal(err)
		}
	}
	r = do(t, srv, "GET", "/api/v2.0/projects?page=2&page_size=10&q=name%3D~page&sort=-name", "", admin, adminPW)
	if r.header.Get("X-Total-Count") != "25" {
		t.Errorf("X-Total-Count %q", r.header.Get("X-Total-Count"))
	}
	link := r.header.Get("Link")
	if !strings.Contains(link, `page=1&page_size=10`) || !strings.Contains(link, `rel="prev"`) || !strings.Contains(link, `page=3&page_size=10`) || !strings.Contains(link, `rel="next"`) || !strings.Contains(link, "q=name=~page") {
		t.Errorf("Link %q", link)
	}
	var page []struct{ Name string }
	json.Unmarshal([]byte(r.body), &page)
	if len(page) != 10 || page[0].Name != "page21" {
		t.Errorf("page 2 sorted by -name: %+v", page)
	}
	r = do(t, srv, "GET", "/api/v2.0/projects?page_size=100000", "", admin, adminPW)
	json.Unmarshal([]byte(r.body), &page)
	if r.status != 200 || len(page) != 28 {
		t.Errorf("page_size abuse: %d, %d projects", r.status, len(page))
	}
	// q and sort never reach SQL as text.
	for _, q := range []string{"name=' OR '1'='1", "name=~%27;DROP TABLE projects;--", "project_id=1 OR 1=1", "name={a') OR (1=1}", "owner=admin'--"} {
		r := do(t, srv, "GET", "/api/v2.0/projects?q="+url.QueryEscape(q)+"&sort="+url.QueryEscape("name;DROP TABLE users"), "", admin, adminPW)
		if r.status != 200 && r.status != 400 {
			t.Errorf("q=%q: %d %s", q, r.status, r.body)
		}
		if r.status == 200 && r.header.Get("X-Total-Count") != "0" {
			t.Errorf("q=%q matched %s projects", q, r.header.Get("X-Total-Count"))
		}
	}
	if n, _ := srv.Core.Identity.CountUsers(ctx); n != 1 {
		t.Errorf("users after injection attempts: %d", n)
	}
}

// TestSession logs in with the form, uses the cookie with and without the
// CSRF token, and logs out.
func TestSession(t *testing.T) {
	srv := harbortest.Start(t)
	form := url.Values{"principal": {admin}, "password": {adminPW}}
	resp, err := http.PostForm(srv.URL+"/c/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csrf := resp.Header.Get("X-Harbor-CSRF-Token")
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == "sid" {
			sid = c.Value
			if !c.HttpOnly {
				t.Error("session cookie not HttpOnly")
			}
		}
	}
	if resp.StatusCode != 200 || sid == "" || csrf == "" {
		t.Fatalf("login: %d sid %q csrf %q", resp.StatusCode, sid, csrf)
	}
	cookie := "Cookie: sid=" + sid
	if r := do(t, srv, "GET", "/api/v2.0/users/current", "", "", "", cookie); r.status != 200 || !strings.Contains(r.body, `"username":"admin"`) {
		t.Errorf("current user with the session: %d %s", r.status, r.body)
	}
	body := `{"project_name": "viasession"}`
	r := do(t, srv, "POST", "/api/v2.0/projects", body, "", "", cookie)
	if code, _ := harborError(t, r); r.status != 403 || code != "FORBIDDEN" {
		t.Errorf("unsafe request without CSRF: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/api/v2.0/projects", body, "", "", cookie, "X-Harbor-CSRF-Token: "+csrf); r.status != 201 {
		t.Errorf("with CSRF: %d %s", r.status, r.body)
	}
	// Basic authentication needs no CSRF token.
	if r := do(t, srv, "POST", "/api/v2.0/projects", `{"project_name": "viabasic"}`, admin, adminPW); r.status != 201 {
		t.Errorf("basic: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/c/log_out", "", "", "", cookie); r.status != 200 {
		t.Errorf("logout: %d", r.status)
	}
	if r := do(t, srv, "GET", "/api/v2.0/users/current", "", "", "", cookie); r.status != 401 {
		t.Errorf("after logout: %d %s", r.status, r.body)
	}
	// A wrong password is a 401 and no cookie.
	resp, _ = http.PostForm(srv.URL+"/c/login", url.Values{"principal": {admin}, "password": {"nope"}})
	resp.Body.Close()
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("bad login: %d %v", resp.StatusCode, resp.Cookies())
	}
}

// TestFirstStart: without a configured password the administrator's is
// random, in a 0600 file the log names (never the password itself); the
// library project is public; a second start changes nothing.
func TestFirstStart(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LADING_ADMIN_PASSWORD", "")
	noPassword := harbortest.WithConfig(func(c *server.Config) { c.Auth.AdminPassword = "" })
	srv := harbortest.Start(t, harbortest.WithRoot(root), noPassword)
	file := filepath.Join(root, core.AdminPasswordFile)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", st.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	pw := strings.TrimSpace(string(b))
	logs := srv.Logs.String()
	if !strings.Contains(logs, file) || strings.Contains(logs, pw) {
		t.Errorf("the log should name the file and not the password:\n%s", logs)
	}
	ctx := context.Background()
	lib, err := srv.API(admin, pw).Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("library"))
	if err != nil || lib.Payload.Metadata.Public != "true" {
		t.Fatalf("library: %+v %v", lib, err)
	}
	// Anyone pulls from library; pushing to a project that does not
	// exist is refused naming it; a repository must be in a project.
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/app", "v1", admin, pw); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Pull(ctx, "library/app:v1", "", ""); err != nil {
		t.Errorf("anonymous pull from library: %v", err)
	}
	err = srv.Push(ctx, img, "nope/app", "v1", admin, pw)
	if err == nil || !strings.Contains(err.Error(), "project nope not found") {
		t.Errorf("push to an unknown project: %v", err)
	}
	r := do(t, srv, "POST", "/v2/app/blobs/uploads/", "", admin, pw)
	if r.status != 400 || !strings.Contains(r.body, `"NAME_INVALID"`) || !strings.Contains(r.body, "not in a project") {
		t.Errorf("push outside a project: %d %s", r.status, r.body)
	}
}

// TestPasswordFromEnvironment: $LADING_ADMIN_PASSWORD sets the first
// password, and no file is written.
func TestPasswordFromEnvironment(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LADING_ADMIN_PASSWORD", "From-Env-1234")
	srv := harbortest.Start(t, harbortest.WithRoot(root), harbortest.WithConfig(func(c *server.Config) { c.Auth.AdminPassword = "" }))
	if _, err := os.Stat(filepath.Join(root, core.AdminPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("password file written: %v", err)
	}
	if _, err := srv.API(admin, "From-Env-1234").User.GetCurrentUserInfo(context.Background(), user.NewGetCurrentUserInfoParams()); err != nil {
		t.Errorf("login with the environment's password: %v", err)
	}
}

// TestUsers: Harbor's password rule, self-registration, password change
// and reset, and the users' hashes.
func TestUsers(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()
	a := srv.Admin()
	for _, pw := range []string{"short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", strings.Repeat("Aa1", 43)} {
		_, err := a.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "u", Email: "u@example.com", Realname: "U", Password: pw}))
		if statusOf(err) != 400 {
			t.Errorf("password %q: %v", pw, err)
		}
	}
	for _, name := range []string{"a,b", "a$b", `a"b`, "a#b", strings.Repeat("x", 256)} {
		_, err := a.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: name, Email: "v@example.com", Realname: "V", Password: "Passw0rd-ok"}))
		if statusOf(err) != 400 {
			t.Errorf("username %.20q: %v", name, err)
		}
	}
	// Self-registration is off by default.
	anon := srv.API("", "")
	req := &models.UserCreationReq{Username: "self", Email: "self@example.com", Realname: "Self", Password: "Passw0rd-self"}
	if _, err := anon.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(req)); statusOf(err) != 401 {
		t.Errorf("self-registration while off: %v", err)
	}
	on := true
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{SelfRegistration: &on})); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(req)); err != nil {
		t.Errorf("self-registration while on: %v", err)
	}
	self := srv.API("self", "Passw0rd-self")
	me, err := self.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	if err != nil || me.Payload.SysadminFlag {
		t.Fatalf("current user: %+v %v", me, err)
	}
	// Changing one's password needs the old one; an admin resets it.
	id := me.Payload.UserID
	if _, err := self.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(id).WithPassword(&models.PasswordReq{OldPassword: "wrong", NewPassword: "Passw0rd-new"})); statusOf(err) != 403 {
		t.Errorf("wrong old password: %v", err)
	}
	if _, err := self.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(id).WithPassword(&models.PasswordReq{OldPassword: "Passw0rd-self", NewPassword: "Passw0rd-self"})); statusOf(err) != 400 {
		t.Errorf("same password: %v", err)
	}
	if _, err := self.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(id).WithPassword(&models.PasswordReq{OldPassword: "Passw0rd-self", NewPassword: "Passw0rd-new"})); err != nil {
		t.Errorf("change: %v", err)
	}
	if _, err := a.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(id).WithPassword(&models.PasswordReq{NewPassword: "Passw0rd-reset"})); err != nil {
		t.Errorf("reset: %v", err)
	}
	if _, err := srv.API("self", "Passw0rd-reset").User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams()); err != nil {
		t.Errorf("login after reset: %v", err)
	}
	var hash string
	srv.DB.QueryRow(ctx, `SELECT password FROM users WHERE username = ?`, "self").Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$") {
		t.Errorf("stored hash %q", hash)
	}
	// The administrator cannot be deleted.
	if _, err := a.User.DeleteUser(ctx, user.NewDeleteUserParams().WithUserID(1)); statusOf(err) != 403 {
		t.Errorf("delete admin: %v", err)
	}
	_ = runtime.APIError{}
}

func configUpdate(c *models.Configurations) *configure.UpdateConfigurationsParams {
	return configure.NewUpdateConfigurationsParams().WithConfigurations(c)
}
