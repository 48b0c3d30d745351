package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/scanning"
)

// TestBrowserAdministration drives the system's Administration pages in
// headless chromium: the administrator tests and creates a registry on
// Debian's docker-registry, makes a replication policy and runs it to the
// end, opens the execution and a scanner's metadata, starts a dry-run
// garbage collection, makes a group, tests an LDAP server that is not
// there, and makes a proxy-cache project with the project form; a
// project developer then sees no Administration menu and is refused each
// page with no control on it. Every page is screenshotted and passes
// axe-core's WCAG A and AA rules.
func TestBrowserAdministration(t *testing.T) {
	if testing.Short() {
		t.Skip("drives chromium through the administration pages; not in -short mode")
	}
	dist := registrytest.Start(t, registrytest.None)
	dbFile := vulnDBFile(t)
	srv := startFull(t, harbortest.WithScanning(func(o *scanning.Options) { o.DBFile = dbFile }))
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	if _, err := srv.Core.Projects.Create(ctx, admin, project.Create{Name: "lib"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: "nora", Email: "nora@example.com", Realname: "Nora", Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "lib"}, project.MemberCreate{Username: "nora", Role: access.Developer}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Push(ctx, harbortest.Image(t), "lib/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, srv.URL)
	s.login("admin", harbortest.AdminPassword)

	// Registries: test the typed endpoint, then create it.
	s.open("/admin/registries")
	s.run("type a registry", chromedp.SetValue(chromedp.CSS("#reg-name"), "dist"), chromedp.SetValue(chromedp.CSS("#reg-url"), "http://"+dist.Host),
		chromedp.SetValue(chromedp.CSS("#reg-type"), "docker-registry"))
	s.run("test the connection", chromedp.Click(chromedp.CSS(`button[formaction="/admin/registries/ping"]`)), chromedp.WaitVisible(chromedp.CSS(".ping")))
	if got := s.text(".ping"); !strings.Contains(got, "the connection works") {
		t.Errorf("testing the registry: %q", got)
	}
	if v, _ := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.querySelector("#reg-name").value`)); v != "dist" {
		t.Errorf("after the test the form holds %q, want what was typed", v)
	}
	s.page("admin-registries-tested")
	s.run("create the registry", chromedp.Click(chromedp.CSS(`form[action="/admin/registries"] button.primary`)), chromedp.WaitVisible(chromedp.CSS("table.registries")))
	s.page("admin-registries")

	// Replication: a push policy, run now, to the end.
	s.open("/admin/replication")
	s.submit(map[string]string{"#rp-name": "to-dist", "#rp-nf": "lib/**", "#rp-ns": "mirror"}, `form[action="/admin/replication"] button.primary`, ".flash")
	s.page("admin-replication")
	s.run("replicate now", chromedp.Click(chromedp.CSS(`button[value=run]`)), chromedp.WaitVisible(chromedp.CSS("dl.facts")))
	exec := mustLocation(s)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if got := s.text("dl.facts dd"); got != "Running" && got != "Pending" {
			break
		}
		s.open(exec)
	}
	if got := s.text("dl.facts dd"); !strings.HasPrefix(got, "Success") {
		t.Errorf("replication execution: %q", got)
	}
	if n := s.count(`table.tasks a[href$="/log"]`); n == 0 {
		t.Error("the execution lists no task with a log")
	}
	s.page("admin-replication-execution")

	// Interrogation services: the database's age, a scanner's metadata.
	s.open("/admin/interrogation")
	if got := s.text("#vulndb"); !strings.Contains(got, "ago") {
		t.Errorf("vulnerability database: %q", got)
	}
	s.page("admin-interrogation")
	s.run("open the metadata", chromedp.Click(chromedp.CSS(`a[href^="/admin/interrogation?metadata="]`)), chromedp.WaitVisible(chromedp.CSS("#metadata")))
	s.page("admin-interrogation-metadata")

	// Garbage collection: a dry run.
	s.open("/admin/gc")
	s.run("dry run", chromedp.Click(chromedp.CSS("#gc-dry")), chromedp.Click(chromedp.CSS(`button[value=run]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := s.text(".flash"); !strings.Contains(got, "Dry run") {
		t.Errorf("after starting a dry run: %q", got)
	}
	s.page("admin-gc")

	// Groups, and the LDAP test against no server.
	s.open("/admin/groups")
	s.submit(map[string]string{"#g-name": "ops", "#g-type": "2"}, `form[action="/admin/groups"] button.primary`, ".flash, .error")
	s.page("admin-groups")
	s.open("/admin/configuration")
	s.run("test LDAP", chromedp.SetValue(chromedp.CSS("#c-ldap_url"), "ldap://127.0.0.1:1"),
		chromedp.Click(chromedp.CSS(`button[formaction="/admin/configuration/ldap-ping"]`)), chromedp.WaitVisible(chromedp.CSS(".ping")))
	if got := s.text(".ping"); !strings.HasPrefix(got, "error:") {
		t.Errorf("LDAP test against no server: %q", got)
	}
	s.page("admin-configuration-ldap-test")

	// A proxy cache from the project form.
	s.open("/projects")
	s.run("make a proxy cache", chromedp.SetValue(chromedp.CSS("#np-name"), "cache"), chromedp.SetValue(chromedp.CSS("#np-registry"), "1"),
		chromedp.Click(chromedp.CSS(`form[method=post][action="/projects"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("p.upstream")))
	if got := s.text("p.upstream"); !strings.Contains(got, "A proxy cache of dist") {
		t.Errorf("proxy-cache project: %q", got)
	}
	s.page("project-proxy-cache")
	s.logout()

	// A project developer: no menu, each page refused, no controls.
	s.login("nora", userPassword)
	if n := s.count("#admin-menu"); n != 0 {
		t.Error("a developer sees the Administration menu")
	}
	for _, p := range systemPages {
		s.open(p)
		if h := s.text("h1"); !strings.Contains(h, "403") {
			t.Errorf("%s for a developer: %q, want 403", p, h)
		}
		if n := s.count(`form[action^="/admin"], button.danger`); n != 0 {
			t.Errorf("%s: a developer is offered %d controls", p, n)
		}
	}
	s.page("admin-refused")
}

// mustLocation is the page's address, as a path.
func mustLocation(s *session) string {
	s.t.Helper()
	loc, err := chromedp.Run(s.ctx, chromedp.Location())
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, s.base)
}
