package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"golang.org/x/net/html"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/ui"
)

// xss is a stored cross-site scripting payload: every place a user can
// type or push text gets it, and no page may run it.
const xss = `<script>alert("xss")</script><img src=x onerror=alert(1)>"'><svg onload=alert(2)>`

// world is a project with users in each role and a pushed image.
type world struct {
	s       *testServer
	project string
	digest  v1.Hash
	repo    string
}

var roleUsers = []struct {
	name string
	role access.Role
}{
	{"owner", access.ProjectAdmin},
	{"maint", access.Maintainer},
	{"dev", access.Developer},
	{"guest", access.Guest},
	{"limited", access.LimitedGuest},
}

const userPassword = "Passw0rd!"

func newWorld(t *testing.T) *world {
	t.Helper()
	s := start(t, nil)
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range append(roleUsers, struct {
		name string
		role access.Role
	}{"outsider", 0}) {
		if _, err := s.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: u.name, Email: u.name + "@example.com", Realname: u.name, Password: userPassword}); err != nil {
			t.Fatal(err)
		}
		if u.role == 0 {
			continue
		}
		if _, err := s.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: u.name, Role: u.role}); err != nil {
			t.Fatal(err)
		}
	}
	img := labeled(t, map[string]string{"org.example.note": xss})
	d := s.push(t, img, "acme/app", "v1", "admin", "Harbor12345")
	if err := s.Core.Artifacts.UpdateRepository(ctx, admin, project.Ref{Name: "acme"}, "app", "About this image: "+xss); err != nil {
		t.Fatal(err)
	}
	return &world{s: s, project: "acme", digest: d, repo: "app"}
}

// labeled is a small random image whose config carries labels.
func labeled(t testing.TB, labels map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Labels = labels
	cfg.Env = []string{"PATH=/usr/bin", "NOTE=" + xss}
	cfg.Cmd = []string{"/bin/app", "--serve"}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRolesSeeOnlyWhatTheyMayDo logs in as each role and checks the
// controls each page offers against Harbor's role table (delete for
// system and project admins and maintainers; the Administration menu for
// system admins), then has each role use the delete control: the service
// refuses those who were not offered it.
func TestRolesSeeOnlyWhatTheyMayDo(t *testing.T) {
	w := newWorld(t)
	repoPage := "/projects/acme/r/app"
	artPage := repoPage + "/-/" + w.digest.String()
	tests := []struct {
		user, password string
		adminMenu      bool
		deleteArtifact bool
		deleteRepo     bool
		addMember      bool
		editDesc       bool
		// immutable and labels: the forms of the immutability and
		// labels tabs (Harbor: maintainers and up).
		immutable, labels bool
	}{
		{"admin", "Harbor12345", true, true, true, true, true, true, true},
		{"owner", userPassword, false, true, true, true, true, true, true},
		{"maint", userPassword, false, true, true, false, true, true, true},
		{"dev", userPassword, false, false, false, false, true, false, false},
		{"guest", userPassword, false, false, false, false, false, false, false},
		{"limited", userPassword, false, false, false, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			b := newBrowser(t, w.s.URL)
			b.login(tt.user, tt.password)
			st, body := b.get(repoPage)
			if st != http.StatusOK {
				t.Fatalf("repository page: %d", st)
			}
			check := func(what string, want bool, got bool) {
				t.Helper()
				if got != want {
					t.Errorf("%s: shown %v, want %v", what, got, want)
				}
			}
			check("Administration menu", tt.adminMenu, strings.Contains(body, `id="admin-menu"`))
			check("artifact delete button", tt.deleteArtifact, strings.Contains(body, `name="action" value="delete" class="danger">Delete</button>`))
			check("repository delete button", tt.deleteRepo, strings.Contains(body, "Delete repository"))
			check("description editor", tt.editDesc, strings.Contains(body, "Edit the description"))
			_, members := b.get("/projects/acme/members")
			check("add member form", tt.addMember, strings.Contains(members, "Add a member"))
			_, imm := b.get("/projects/acme/immutability")
			check("new immutable tag rule form", tt.immutable, strings.Contains(imm, `id="immutable-form"`))
			_, labels := b.get("/projects/acme/labels")
			check("new label form", tt.labels, strings.Contains(labels, `id="label-form"`))
			// Every tab the user is offered opens.
			for _, m := range regexp.MustCompile(`<a href="(/projects/acme/[a-z]+)"`).FindAllStringSubmatch(members, -1) {
				if st, _ := b.get(m[1]); st != http.StatusOK {
					t.Errorf("tab %s offered but answers %d", m[1], st)
				}
			}
			if tt.user == "admin" || tt.user == "owner" {
				check("policies tab", true, strings.Contains(members, `href="/projects/acme/policies"`))
			}
			if tt.adminMenu {
				if st, _ := b.get("/admin/users"); st != http.StatusOK {
					t.Errorf("admin page: %d", st)
				}
			} else if st, _ := b.get("/admin/users"); st != http.StatusForbidden {
				t.Errorf("admin page for %s: %d, want 403", tt.user, st)
			}
			if tt.deleteArtifact {
				return // deleting is tried by those who may not, below
			}
			b.get(artPage)
			st, _ = b.post(artPage, url.Values{"action": {"delete"}})
			if st != http.StatusForbidden {
				t.Errorf("delete posted by %s: %d, want 403 from the service", tt.user, st)
			}
			st, _ = b.post("/projects/acme/members", url.Values{"name": {"outsider"}, "role": {"1"}})
			if !tt.addMember && st != http.StatusForbidden {
				t.Errorf("add member posted by %s: %d, want 403", tt.user, st)
			}
		})
	}
	// The artifact survived every refused attempt; a maintainer, who was
	// offered the button, deletes it.
	b := newBrowser(t, w.s.URL)
	b.login("maint", userPassword)
	if st, _ := b.get(artPage); st != http.StatusOK {
		t.Fatalf("artifact page after refused deletes: %d", st)
	}
	if st, loc := b.post(artPage, url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Fatalf("maintainer's delete: %d %s", st, loc)
	}
	if st, _ := b.get(artPage); st != http.StatusNotFound {
		t.Errorf("artifact page after delete: %d, want 404", st)
	}
}

// TestOutsiderAndAnonymous: a private project is invisible to users
// outside it, and anonymous visitors are sent to the login form.
func TestOutsiderAndAnonymous(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.login("outsider", userPassword)
	_, body := b.get("/projects")
	if strings.Contains(body, "acme") {
		t.Error("an outsider's project list shows the private project")
	}
	if st, _ := b.get("/projects/acme/r/app"); st != http.StatusForbidden {
		t.Errorf("outsider on the repository: %d, want 403", st)
	}
	anon := newBrowser(t, w.s.URL)
	st, loc := anon.get("/projects/acme/r/app")
	if st != http.StatusSeeOther {
		t.Fatalf("anonymous on a private repository: %d %q", st, loc)
	}
	_, body = anon.get("/projects")
	if !strings.Contains(body, "library") || strings.Contains(body, "acme") {
		t.Errorf("anonymous project list should show the public library only")
	}
}

// TestStoredXSSIsInert puts a script payload in a repository description,
// an image label, an environment variable and a tag filter, and checks
// that every page renders it as text.
func TestStoredXSSIsInert(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.login("admin", "Harbor12345")
	for _, p := range []string{
		"/projects/acme/r/app",
		"/projects/acme/r/app/-/" + w.digest.String(),
		"/projects/acme/r/app?tag=" + url.QueryEscape(xss),
		"/projects?q=" + url.QueryEscape(xss),
	} {
		st, body := b.get(p)
		if st != http.StatusOK {
			t.Fatalf("%s: %d", p, st)
		}
		if strings.Contains(body, xss) || strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: the payload is in the page unescaped", p)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;") {
			t.Errorf("%s: the payload is not shown as text", p)
		}
		checkNoInline(t, p, body)
	}
}

// checkNoInline fails on inline scripts, inline styles and event handler
// attributes, which the Content-Security-Policy would block.
func checkNoInline(t *testing.T, page, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script":
				if attr(n, "src") == "" {
					t.Errorf("%s: inline <script>", page)
				}
			case "style":
				t.Errorf("%s: inline <style>", page)
			}
			for _, a := range n.Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
					t.Errorf("%s: <%s %s=...> is inline code or style", page, n.Data, a.Key)
				}
				if (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Errorf("%s: javascript: URL", page)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestSessionsAndCSRF: the session cookie's flags, a form posted without
// (or with a wrong, or another session's) CSRF token refused, a
// cross-origin post refused, logout ending the session on the server, a
// changed password ending every session.
func TestSessionsAndCSRF(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.get("/login")
	resp, err := b.c.PostForm(w.s.URL+"/login", url.Values{"_csrf": {b.csrf}, "principal": {"admin"}, "password": {"Harbor12345"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sid *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == ui.SessionCookie {
			sid = c
		}
	}
	if sid == nil || !sid.HttpOnly || sid.SameSite != http.SameSiteLaxMode || sid.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", sid)
	}
	b.get("/projects")
	good := b.csrf
	wrong := "x" + good[1:]
	if good[0] == 'x' {
		wrong = "y" + good[1:]
	}
	for _, tt := range []struct {
		name  string
		token string
	}{{"no token", ""}, {"wrong token", wrong}, {"pre-login token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}} {
		st, _ := b.post("/projects", url.Values{"_csrf": {tt.token}, "name": {"csrf-" + strings.ReplaceAll(tt.name, " ", "-")}})
		if st != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tt.name, st)
		}
	}
	// Another user's token does not open this session's forms.
	other := newBrowser(t, w.s.URL)
	other.login("dev", userPassword)
	other.get("/projects")
	if st, _ := b.post("/projects", url.Values{"_csrf": {other.csrf}, "name": {"csrf-other"}}); st != http.StatusForbidden {
		t.Errorf("another session's token: %d, want 403", st)
	}
	// A cross-origin post with the right token is still refused.
	req, _ := http.NewRequest(http.MethodPost, w.s.URL+"/projects", strings.NewReader(url.Values{"_csrf": {good}, "name": {"csrf-origin"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := b.c.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin post: %d, want 403", resp.StatusCode)
	}
	list, _, err := w.s.Core.Projects.List(context.Background(), w.s.admin(t), query.Query{}, query.Page{Number: 1, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if strings.HasPrefix(p.Name, "csrf-") {
			t.Errorf("project %s was created by a refused post", p.Name)
		}
	}
	// A script may send the token in the API's header instead.
	req, _ = http.NewRequest(http.MethodPost, w.s.URL+"/projects", strings.NewReader(url.Values{"name": {"by-header"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(ui.CSRFHeader, good)
	if resp, err := b.c.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("post with the header: %d, want 303", resp.StatusCode)
	}
	// Logout ends the session on the server: the old cookie opens nothing.
	if st, loc := b.post("/logout", nil); st != http.StatusSeeOther || loc != "/login" {
		t.Fatalf("logout: %d %s", st, loc)
	}
	replay := newBrowser(t, w.s.URL)
	u, _ := url.Parse(w.s.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: ui.SessionCookie, Value: sid.Value}})
	if st, _ := replay.get("/admin/users"); st != http.StatusSeeOther {
		t.Errorf("old session cookie after logout: %d, want a redirect to the login form", st)
	}
	// The API does not take it either.
	req, _ = http.NewRequest(http.MethodGet, w.s.URL+"/api/v2.0/users/current", nil)
	req.AddCookie(&http.Cookie{Name: ui.SessionCookie, Value: sid.Value})
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with the ended session: %d, want 401", resp.StatusCode)
	}
}

// TestLoginFailures: wrong passwords are refused with the form shown
// again, and the destination after login stays on the site.
func TestLoginFailures(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.get("/login")
	st, body := b.post("/login", url.Values{"principal": {"admin"}, "password": {"wrong"}})
	if st != http.StatusUnauthorized || !strings.Contains(body, "Invalid user name or password") {
		t.Errorf("wrong password: %d", st)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		b := newBrowser(t, w.s.URL)
		b.get("/login")
		st, loc := b.post("/login", url.Values{"principal": {"admin"}, "password": {"Harbor12345"}, "next": {next}})
		if st != http.StatusSeeOther || loc != "/projects" {
			t.Errorf("next=%s: %d %s, want /projects", next, st, loc)
		}
	}
}

// TestSecurityHeaders checks every page's headers and markup.
func TestSecurityHeaders(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.login("admin", "Harbor12345")
	for _, p := range []string{"/login", "/projects", "/projects/acme", "/projects/acme/repositories", "/projects/acme/members",
		"/projects/acme/robots", "/projects/acme/policies", "/projects/acme/webhooks", "/projects/acme/logs", "/projects/acme/r/app",
		"/projects/acme/r/app/-/" + w.digest.String(), "/admin/users", "/admin/robots", "/admin/configuration", "/admin/audit", "/admin/jobs", "/profile", "/projects/acme/no-such-tab/x"} {
		resp, err := b.c.Get(w.s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			body.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP {
			t.Errorf("%s: CSP %q", p, got)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", p, h, got, want)
			}
		}
		checkNoInline(t, p, body.String())
	}
	for _, csp := range []string{"'unsafe-inline'", "'unsafe-eval'"} {
		if strings.Contains(ui.CSP, csp) {
			t.Errorf("the CSP allows %s", csp)
		}
	}
}

// TestNoRulesOfItsOwn reads the UI's code: only perms.go asks the access
// checker anything, and nothing compares roles or reads the system
// administrator flag, so that every decision is the services'.
func TestNoRulesOfItsOwn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]string{
		"Matrix": "the role matrix", "PublicProject": "public-project policies", "RobotSystemPolicies": "robot policies",
		"RobotProjectPolicies": "robot policies", "SysAdmin": "the administrator flag", "Require": "an access check",
		"Roles": "role lookups", "ProjectsWhere": "an access check", "Grantable": "robot rules", "Covers": "robot rules",
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			name := sel.Sel.Name
			if what, bad := forbidden[name]; bad {
				// The --no-auth subject is built, not decided on.
				if name == "SysAdmin" && f == "session.go" {
					return true
				}
				t.Errorf("%s: uses %s (%s): the UI must leave decisions to the services", fset.Position(sel.Pos()), name, what)
			}
			if name == "Can" && f != "perms.go" {
				if id, ok := sel.X.(*ast.SelectorExpr); ok && id.Sel.Name == "Permissions" {
					t.Errorf("%s: asks the access checker outside perms.go", fset.Position(sel.Pos()))
				}
			}
			return true
		})
	}
}

// TestAssetsOwn: every asset the UI serves is one of its own, listed in
// assets/NOTICE.md, and the NOTICE lists no file that is not there.
func TestAssetsOwn(t *testing.T) {
	notice, err := os.ReadFile("assets/NOTICE.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllSubmatch(notice, -1) {
		listed[string(m[1])] = true
	}
	entries, err := os.ReadDir("assets")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.Name() == "NOTICE.md" {
			continue
		}
		files = append(files, e.Name())
		if !listed[e.Name()] {
			t.Errorf("assets/%s is not listed in assets/NOTICE.md", e.Name())
		}
	}
	for name := range listed {
		if !slices.Contains(files, name) {
			t.Errorf("assets/NOTICE.md lists %s, which is not in assets/", name)
		}
	}
}

// TestNoAuth: the throwaway registry (--no-auth) opens every page as the
// administrator, and forms still need the (double-submit) CSRF token.
func TestNoAuth(t *testing.T) {
	s := start(t, nil, func(c *server.Config) { c.Auth.Mode = "none" })
	b := newBrowser(t, s.URL)
	st, body := b.get("/projects")
	if st != http.StatusOK || !strings.Contains(body, `id="admin-menu"`) {
		t.Fatalf("projects without auth: %d, admin menu %v", st, strings.Contains(body, `id="admin-menu"`))
	}
	if st, _ := b.post("/projects", url.Values{"_csrf": {"wrong"}, "name": {"nope"}}); st != http.StatusForbidden {
		t.Errorf("post with a wrong token: %d, want 403", st)
	}
	if st, loc := b.post("/projects", url.Values{"name": {"open"}}); st != http.StatusSeeOther || loc != "/projects/open" {
		t.Errorf("post with the token: %d %s", st, loc)
	}
}

// TestFragments: a request from the UI's script naming a fragment the
// page has (ui.FragmentHeader) gets that element alone; a name the page
// has no fragment for, or a template that is not a fragment, gets the
// whole page, from which the script picks the element.
func TestFragments(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.login("admin", "Harbor12345")
	for _, tc := range []struct {
		path, fragment string
		alone          bool
	}{
		{"/projects/acme/r/app?tag=v", "artifact-list", true},
		{"/projects?q=ac", "project-list", true},
		{"/projects/acme/repositories?q=app", "repo-list", false},
		{"/admin/users?q=dev", "user-list", false},
		{"/projects/acme/r/app", "layout", false},
		{"/projects/acme/r/app", "csrf", false},
		{"/projects/acme/r/app", "", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, w.s.URL+tc.path, nil)
		if tc.fragment != "" {
			req.Header.Set(ui.FragmentHeader, tc.fragment)
		}
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s as %q: %d", tc.path, tc.fragment, resp.StatusCode)
			continue
		}
		page := bytes.HasPrefix(body, []byte("<!doctype html>"))
		if page == tc.alone {
			t.Errorf("%s as %q: whole page %v, want %v: %.200s", tc.path, tc.fragment, page, !tc.alone, body)
		}
		if tc.alone && !bytes.HasPrefix(body, []byte(`<div id="`+tc.fragment+`">`)) {
			t.Errorf("%s as %q: the fragment is not the element: %.200s", tc.path, tc.fragment, body)
		}
		if id := tc.fragment; id != "" && id != "layout" && id != "csrf" && !bytes.Contains(body, []byte(`id="`+id+`"`)) {
			t.Errorf("%s as %q: no element with that id", tc.path, tc.fragment)
		}
		checkNoInline(t, tc.path, string(body))
	}
}

// TestRepositoryTags: an artifact with many tags shows its first tags by
// name and a count of the others in the repository's list (the list stays
// one row per artifact however many tags there are); a tag filter finds an
// artifact by a tag not shown; the artifact's page lists every tag, paged.
func TestRepositoryTags(t *testing.T) {
	s := start(t, nil)
	if _, err := s.Core.Projects.Create(context.Background(), s.admin(t), project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	many := labeled(t, map[string]string{"n": "many"})
	var want []string
	var d v1.Hash
	for i := range 30 {
		tag := fmt.Sprintf("t%02d", i)
		want = append(want, tag)
		d = s.push(t, many, "acme/app", tag, "admin", "Harbor12345")
	}
	solo := s.push(t, labeled(t, map[string]string{"n": "solo"}), "acme/app", "solo", "admin", "Harbor12345")
	b := newBrowser(t, s.URL)
	b.login("admin", "Harbor12345")

	type row struct {
		Tags []string
		More string
	}
	for _, tc := range []struct {
		path string
		want map[string]row
	}{
		{"/projects/acme/r/app", map[string]row{d.String(): {want[:5], "+25 more"}, solo.String(): {[]string{"solo"}, ""}}},
		{"/projects/acme/r/app?tag=t17", map[string]row{d.String(): {want[:5], "+25 more"}}},
		{"/projects/acme/r/app?tag=solo", map[string]row{solo.String(): {[]string{"solo"}, ""}}},
	} {
		st, body := b.get(tc.path)
		if st != http.StatusOK {
			t.Fatalf("%s: %d", tc.path, st)
		}
		got := map[string]row{}
		for _, tr := range findAll(parseHTML(t, body), func(n *html.Node) bool { return n.Data == "tr" && find(n, "a", "digest") != nil }) {
			var r row
			for _, sp := range findAll(tr, func(n *html.Node) bool { return n.Data == "span" && attr(n, "class") == "tag" }) {
				r.Tags = append(r.Tags, text(sp))
			}
			for _, a := range findAll(tr, func(n *html.Node) bool { return n.Data == "a" && strings.HasSuffix(text(n), " more") }) {
				r.More = text(a)
			}
			href := attr(find(tr, "a", "digest"), "href")
			got[href[strings.LastIndex(href, "/")+1:]] = r
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: rows (-want +got):\n%s", tc.path, diff)
		}
	}

	var all []string
	for page := 1; page <= 2; page++ {
		st, body := b.get(fmt.Sprintf("/projects/acme/r/app/-/%s?page=%d", d, page))
		if st != http.StatusOK {
			t.Fatalf("artifact page %d: %d", page, st)
		}
		list := find(parseHTML(t, body), "ul", "taglist")
		if list == nil {
			t.Fatalf("artifact page %d: no tag list", page)
		}
		for _, sp := range findAll(list, func(n *html.Node) bool { return n.Data == "span" && attr(n, "class") == "tag" }) {
			all = append(all, text(sp))
		}
	}
	slices.Sort(all)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("the artifact's pages list (-want +got):\n%s", diff)
	}
}

func parseHTML(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// findAll returns the elements under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
		out = append(out, findAll(c, match)...)
	}
	return out
}

// find returns the first element under n named tag with class cls.
func find(n *html.Node, tag, cls string) *html.Node {
	all := findAll(n, func(c *html.Node) bool {
		return c.Data == tag && slices.Contains(strings.Fields(attr(c, "class")), cls)
	})
	if len(all) == 0 {
		return nil
	}
	return all[0]
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(sb.String())
}
