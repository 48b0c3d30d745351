package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/ui"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// systemPages are the Administration pages of the system's services.
var systemPages = []string{"/admin/groups", "/admin/registries", "/admin/replication", "/admin/interrogation", "/admin/gc"}

// startFull starts lading serve with registry-side scanning (a second
// process may stand in for an external scanner) and outbound requests
// to loopback allowed, so that a registry or scanner on 127.0.0.1 may be
// registered.
func startFull(t testing.TB, opts ...harbortest.Option) *harbortest.Server {
	t.Helper()
	return harbortest.Start(t, append([]harbortest.Option{harbortest.WithConfig(func(c *server.Config) {
		c.Outbound.Allow = []string{"127.0.0.0/8"}
		c.Jobs.Poll = 50 * time.Millisecond
	})}, opts...)...)
}

// roleServer is startFull with a project "acme" holding a user in each
// role, and a user outside it.
func roleServer(t *testing.T) *harbortest.Server {
	t.Helper()
	srv := startFull(t)
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	if _, err := srv.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range append(roleUsers, struct {
		name string
		role access.Role
	}{"outsider", 0}) {
		if _, err := srv.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: u.name, Email: u.name + "@example.com", Realname: u.name, Password: userPassword}); err != nil {
			t.Fatal(err)
		}
		if u.role != 0 {
			if _, err := srv.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: u.name, Role: u.role}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return srv
}

// TestSystemPagesByRole: the system's Administration pages open for the
// system administrator with their controls, and every other user, project
// admins included, is refused them by the services (403), offered no
// link to them, and refused each of their forms.
func TestSystemPagesByRole(t *testing.T) {
	srv := roleServer(t)
	posts := []struct {
		path string
		form url.Values
	}{
		{"/admin/groups", url.Values{"name": {"g"}, "type": {"3"}}},
		{"/admin/groups/1/delete", nil},
		{"/admin/registries", url.Values{"name": {"r"}, "type": {"docker-registry"}, "url": {"http://127.0.0.1:1"}}},
		{"/admin/registries/ping", url.Values{"type": {"docker-registry"}, "url": {"http://127.0.0.1:1"}}},
		{"/admin/registries/1", url.Values{"action": {"delete"}}},
		{"/admin/replication", url.Values{"name": {"p"}, "registry": {"1"}}},
		{"/admin/replication/policies/1", url.Values{"action": {"run"}}},
		{"/admin/replication/executions/1/stop", nil},
		{"/admin/scanners", url.Values{"name": {"s"}, "url": {"http://127.0.0.1:1"}}},
		{"/admin/scan-all", url.Values{"action": {"now"}}},
		{"/admin/gc", url.Values{"action": {"run"}, "dry_run": {"on"}}},
		{"/admin/configuration/ldap-ping", url.Values{"ldap_url": {"ldap://127.0.0.1:1"}}},
	}
	for _, user := range []string{"admin", "owner", "maint", "dev", "guest", "limited", "outsider"} {
		t.Run(user, func(t *testing.T) {
			b := newBrowser(t, srv.URL)
			if user == "admin" {
				b.login("admin", harbortest.AdminPassword)
			} else {
				b.login(user, userPassword)
			}
			_, home := b.get("/projects")
			for _, p := range systemPages {
				st, body := b.get(p)
				if user == "admin" {
					if st != http.StatusOK {
						t.Errorf("%s: %d, want 200", p, st)
					}
					if !strings.Contains(home, `href="/admin/users"`) || !strings.Contains(body, `href="`+p+`"`) {
						t.Errorf("%s: not in the Administration menu", p)
					}
					if !strings.Contains(body, `<form method="post"`) {
						t.Errorf("%s: no form for the administrator", p)
					}
					checkNoInline(t, p, body)
					resp, err := b.c.Get(srv.URL + p)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP || resp.Header.Get("X-Frame-Options") != "DENY" {
						t.Errorf("%s: CSP %q, X-Frame-Options %q", p, got, resp.Header.Get("X-Frame-Options"))
					}
					continue
				}
				if st != http.StatusForbidden {
					t.Errorf("%s: %d, want 403 from the service", p, st)
				}
				if strings.Contains(body, `method="post" action="/admin`) || strings.Contains(body, `id="admin-menu"`) {
					t.Errorf("%s: a refused page offers administration controls", p)
				}
			}
			if user == "admin" {
				// Even the administrator's forms need the session's token.
				for _, p := range posts {
					if st, _ := b.post(p.path, withForm(p.form, "_csrf", "")); st != http.StatusForbidden {
						t.Errorf("POST %s without the CSRF token: %d, want 403", p.path, st)
					}
				}
				return
			}
			if strings.Contains(home, `id="admin-menu"`) || strings.Contains(home, "/admin/") {
				t.Error("a non-administrator is offered the Administration menu")
			}
			for _, p := range posts {
				if st, body := b.post(p.path, p.form); st != http.StatusForbidden && st != http.StatusNotFound {
					t.Errorf("POST %s by %s: %d %.200s, want 403", p.path, user, st, body)
				}
			}
		})
	}
	// Nothing the refused posts asked for happened.
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	if regs, _, err := srv.Core.Replication.Registries(ctx, admin, emptyQuery, firstPage); err != nil || len(regs) != 0 {
		t.Errorf("registries after refused posts: %v %v", regs, err)
	}
	if runs, _, err := srv.Core.GC.History(ctx, admin, emptyQuery, firstPage); err != nil || len(runs) != 0 {
		t.Errorf("gc runs after refused posts: %v %v", runs, err)
	}
}

// waitFor polls a page until re matches, and returns the match.
func waitFor(t *testing.T, b *browser, path string, re *regexp.Regexp) []string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, body = b.get(path)
		if m := re.FindStringSubmatch(body); m != nil {
			return m
		}
	}
	t.Fatalf("%s never matched %s:\n%.3000s", path, re, body)
	return nil
}

// TestRegistriesReplicationProxyCache: a registry endpoint on Debian's
// docker-registry (CNCF Distribution) is tested, created and listed
// without its secret; a push policy made and changed through the form
// replicates an image, which docker-registry then serves; the execution
// lists its task and its log; a proxy-cache project made with the
// project form names its upstream.
func TestRegistriesReplicationProxyCache(t *testing.T) {
	dist := registrytest.Start(t, registrytest.Htpasswd)
	srv := startFull(t)
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	if _, err := srv.Core.Projects.Create(ctx, admin, project.Create{Name: "lib"}); err != nil {
		t.Fatal(err)
	}
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "lib/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)
	b.login("admin", harbortest.AdminPassword)
	b.get("/admin/registries")
	distURL := "http://" + dist.Host
	reg := url.Values{"name": {"dist"}, "type": {"docker-registry"}, "url": {distURL}, "access_key": {dist.User}, "access_secret": {dist.Password}, "insecure": {"on"}, "description": {xss}}

	// Test before saving: a wrong password is refused by docker-registry.
	bad := url.Values{}
	for k, v := range reg {
		bad[k] = v
	}
	bad.Set("access_secret", "wrong-password")
	if st, body := b.post("/admin/registries/ping", bad); st != http.StatusOK || !strings.Contains(body, `class="error ping"`) {
		t.Errorf("ping with a wrong password: %d %.500s", st, body)
	}
	if st, body := b.post("/admin/registries/ping", reg); st != http.StatusOK || !strings.Contains(body, "the connection works") {
		t.Fatalf("ping: %d %.2000s", st, body)
	}
	if st, loc := b.post("/admin/registries", reg); st != http.StatusSeeOther {
		t.Fatalf("create registry: %d %.2000s", st, loc)
	}
	_, body := b.get("/admin/registries")
	if !strings.Contains(body, distURL) || strings.Contains(body, dist.Password) {
		t.Errorf("registries page: listed %v, secret shown %v", strings.Contains(body, distURL), strings.Contains(body, dist.Password))
	}
	if strings.Contains(body, xss) || !strings.Contains(body, "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;") {
		t.Error("the registry's description is not escaped")
	}
	id := regexp.MustCompile(`action="/admin/registries/(\d+)"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("no registry row: %.2000s", body)
	}
	if st, body := b.post("/admin/registries/"+id[1], url.Values{"action": {"ping"}}); st != http.StatusOK || !strings.Contains(body, "dist: the connection works") {
		t.Errorf("ping the stored registry: %d %.1000s", st, body)
	}

	// A push policy, created, then changed, then run.
	b.get("/admin/replication")
	pol := url.Values{"name": {"to-dist"}, "mode": {"push"}, "registry": {id[1]}, "name_filter": {"lib/**"}, "tag_filter": {"v*"},
		"dest_namespace": {"mirror"}, "flatten": {"1"}, "trigger": {"manual"}, "override": {"on"}, "enabled": {"on"}}
	if st, loc := b.post("/admin/replication", pol); st != http.StatusSeeOther {
		t.Fatalf("create policy: %d %.2000s", st, loc)
	}
	_, body = b.get("/admin/replication")
	pid := regexp.MustCompile(`href="/admin/replication/policies/(\d+)"`).FindStringSubmatch(body)
	if pid == nil {
		t.Fatalf("no policy row: %.2000s", body)
	}
	if st, body := b.get("/admin/replication/policies/" + pid[1]); st != http.StatusOK || !strings.Contains(body, `value="lib/**"`) {
		t.Errorf("edit form: %d", st)
	}
	pol.Set("action", "save")
	pol.Set("description", "to the mirror "+xss)
	if st, loc := b.post("/admin/replication/policies/"+pid[1], pol); st != http.StatusSeeOther {
		t.Fatalf("save policy: %d %.2000s", st, loc)
	}
	_, body = b.get("/admin/replication")
	if !strings.Contains(body, "to the mirror &lt;script&gt;") {
		t.Errorf("the changed description is not shown escaped")
	}
	st, loc := b.post("/admin/replication/policies/"+pid[1], url.Values{"action": {"run"}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/replication/executions/") {
		t.Fatalf("run: %d %s", st, loc)
	}
	m := waitFor(t, b, loc, regexp.MustCompile(`<dt>Status</dt><dd>(Success|Error|Stopped)`))
	if m[1] != "Success" {
		_, body := b.get(loc)
		t.Fatalf("replication ended %s:\n%.3000s", m[1], body)
	}
	_, body = b.get(loc)
	logLink := regexp.MustCompile(`href="(/admin/replication/executions/\d+/tasks/\d+/log)"`).FindStringSubmatch(body)
	if logLink == nil || !strings.Contains(body, "lib/app") {
		t.Fatalf("execution page lists no task of lib/app:\n%.3000s", body)
	}
	resp, err := b.c.Get(srv.URL + logLink[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("task log: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// docker-registry has the image, where the flattened name says.
	want, _ := img.Digest()
	ref, _ := name.ParseReference(dist.Host+"/mirror/app:v1", name.Insecure)
	desc, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: dist.User, Password: dist.Password}))
	if err != nil || desc.Digest != want {
		t.Errorf("docker-registry's mirror/app:v1: %v %v, want %s", desc, err, want)
	}
	// Stopping a finished execution leaves it as it is.
	if st, _ := b.post(loc+"/stop", nil); st != http.StatusSeeOther {
		t.Errorf("stop: %d", st)
	}

	// A proxy-cache project through the project form.
	_, body = b.get("/projects")
	if !strings.Contains(body, `name="registry_id"`) {
		t.Fatal("the project form offers no proxy cache")
	}
	if st, loc := b.post("/projects", url.Values{"name": {"cache"}, "registry_id": {id[1]}}); st != http.StatusSeeOther {
		t.Fatalf("create proxy cache: %d %.1000s", st, loc)
	}
	p, err := srv.Core.Projects.Get(ctx, admin, project.Ref{Name: "cache"})
	if err != nil || strings.TrimSpace(id[1]) != idText(p.RegistryID) {
		t.Errorf("project cache: %+v %v", p, err)
	}
	_, body = b.get("/projects/cache")
	if !strings.Contains(body, "A proxy cache of <strong>dist</strong>") || !strings.Contains(body, distURL) {
		t.Errorf("proxy-cache project page does not name its upstream:\n%.2000s", body)
	}

	// Deleting: the registry is in use by the policy and the cache.
	if st, _ := b.post("/admin/registries/"+id[1], url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Errorf("delete registry in use: %d", st)
	}
	if _, err := srv.Core.Replication.Registry(ctx, admin, mustInt(t, id[1])); err != nil {
		t.Errorf("a registry in use was deleted: %v", err)
	}
	if st, _ := b.post("/admin/replication/policies/"+pid[1], url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Errorf("delete policy: %d", st)
	}
	if _, err := srv.Core.Replication.Policy(ctx, admin, mustInt(t, pid[1])); err == nil {
		t.Error("the policy survived its deletion")
	}
}

// vulnDBFile builds a vulnerability database from the corpus's Alpine
// feed, for the built-in scanner.
func vulnDBFile(t *testing.T) string {
	t.Helper()
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	path := filepath.Join(t.TempDir(), vulndb.FileName)
	if _, err := feed.Build(context.Background(), nil, path, []string{filepath.Join(feeds, "alpine-secdb")}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInterrogationServices: a second lading, through its Pluggable
// Scanner API, is tested, registered, made the default and deleted; the
// metadata of a scanner is shown; a scan of all artifacts starts and its
// schedule is saved; the vulnerability database's date is the one the
// built-in scanner's database was built with.
func TestInterrogationServices(t *testing.T) {
	dbFile := vulnDBFile(t)
	db, err := vulndb.Open(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	built := db.Metadata().BuiltAt.UTC().Format("2006-01-02 15:04")
	db.Close()
	ext := startFull(t, harbortest.WithScanning(func(o *scanning.Options) { o.DBFile = dbFile }))
	srv := startFull(t, harbortest.WithScanning(func(o *scanning.Options) { o.DBFile = dbFile }))
	b := newBrowser(t, srv.URL)
	b.login("admin", harbortest.AdminPassword)
	_, body := b.get("/admin/interrogation")
	if !strings.Contains(body, built) {
		t.Errorf("the database's date %s is not shown:\n%.3000s", built, body)
	}
	sc := url.Values{"name": {"other-lading"}, "url": {ext.URL}, "description": {"a second lading"}, "auth": {"Basic"}, "access_credential": {"admin:wrong"}}
	sc.Set("action", "ping")
	if st, body := b.post("/admin/scanners", sc); st != http.StatusOK || !strings.Contains(body, `class="error ping"`) {
		t.Errorf("ping scanner with a wrong password: %d %.2000s", st, body)
	}
	sc.Set("access_credential", "admin:"+harbortest.AdminPassword)
	sc.Set("action", "ping")
	if st, body := b.post("/admin/scanners", sc); st != http.StatusOK || !strings.Contains(body, "the connection works") {
		t.Fatalf("ping scanner: %d %.2000s", st, body)
	}
	sc.Set("action", "create")
	if st, loc := b.post("/admin/scanners", sc); st != http.StatusSeeOther {
		t.Fatalf("register: %d %.2000s", st, loc)
	}
	_, body = b.get("/admin/interrogation")
	uuid := regexp.MustCompile(`action="/admin/scanners/([^"]+)"[^>]*>[^<]*<input[^>]*><button type="submit" name="action" value="ping" aria-label="Test scanner other-lading"`).FindStringSubmatch(body)
	if uuid == nil {
		t.Fatalf("no row of other-lading:\n%.4000s", body)
	}
	if st, body := b.post("/admin/scanners/"+uuid[1], url.Values{"action": {"ping"}}); st != http.StatusOK || !strings.Contains(body, "other-lading: the connection works") {
		t.Errorf("test the registered scanner: %d %q", st, pingRe.FindString(body))
	}
	if st, body := b.get("/admin/interrogation?metadata=" + uuid[1]); st != http.StatusOK || !strings.Contains(body, "vulnerability-database-updated-at") {
		t.Errorf("metadata: %d %.3000s", st, body)
	}
	if st, _ := b.post("/admin/scanners/"+uuid[1], url.Values{"action": {"default"}}); st != http.StatusSeeOther {
		t.Errorf("set default: %d", st)
	}
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	r, err := srv.Scanning.Scanner(ctx, admin, uuid[1])
	if err != nil || !r.IsDefault {
		t.Errorf("after set default: %+v %v", r, err)
	}
	_, body = b.get("/admin/interrogation")
	if !regexp.MustCompile(`<dt>Default scanner</dt><dd>other-lading</dd>`).MatchString(body) {
		t.Errorf("the default scanner's database is not shown:\n%.3000s", body)
	}
	// Back to the built-in one, then delete the other.
	builtin := regexp.MustCompile(`action="/admin/scanners/([^"]+)"[^>]*>[^<]*<input[^>]*><button type="submit" name="action" value="ping" aria-label="Test scanner (?:[^o"][^"]*)"`).FindStringSubmatch(body)
	if builtin == nil {
		t.Fatal("no built-in scanner row")
	}
	b.post("/admin/scanners/"+builtin[1], url.Values{"action": {"default"}})
	if st, _ := b.post("/admin/scanners/"+uuid[1], url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Errorf("delete: %d", st)
	}
	if _, err := srv.Scanning.Scanner(ctx, admin, uuid[1]); err == nil {
		t.Error("the scanner survived its deletion")
	}

	// Scan all now, then a schedule.
	if err := srv.Push(ctx, harbortest.Image(t), "library/app", "1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.post("/admin/scan-all", url.Values{"action": {"now"}}); st != http.StatusSeeOther {
		t.Errorf("scan all: %d", st)
	}
	waitFor(t, b, "/admin/interrogation", regexp.MustCompile(`Last scan of all \(manual\): 1 of 1 artifacts done`))
	if st, _ := b.post("/admin/scan-all", url.Values{"action": {"schedule"}, "type": {"Daily"}}); st != http.StatusSeeOther {
		t.Errorf("schedule: %d", st)
	}
	sch, err := srv.Scanning.ScanAllSchedule(ctx, admin)
	if err != nil || sch.Type != "Daily" {
		t.Errorf("scan-all schedule: %+v %v", sch, err)
	}
	if st, body := b.post("/admin/scan-all", url.Values{"action": {"schedule"}, "type": {"Custom"}, "cron": {"not a cron"}}); st != http.StatusSeeOther {
		t.Errorf("bad schedule: %d %s", st, body)
	}
}

// TestGarbageCollection: a dry run started from the page ends with a log
// that says what it would delete and deletes nothing; a schedule is
// saved with its parameters.
func TestGarbageCollection(t *testing.T) {
	srv := startFull(t)
	ctx := context.Background()
	if err := srv.Push(ctx, harbortest.Image(t), "library/app", "1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)
	b.login("admin", harbortest.AdminPassword)
	b.get("/admin/gc")
	if st, loc := b.post("/admin/gc", url.Values{"action": {"run"}, "dry_run": {"on"}, "delete_untagged": {"on"}, "workers": {"2"}}); st != http.StatusSeeOther {
		t.Fatalf("run: %d %.1000s", st, loc)
	}
	m := waitFor(t, b, "/admin/gc", regexp.MustCompile(`<tr><td>(\d+)</td><td>manual</td><td>yes</td><td>yes</td><td>(Success|Error|Stopped)`))
	if m[2] != "Success" {
		t.Fatalf("dry run ended %s", m[2])
	}
	resp, err := b.c.Get(srv.URL + "/admin/gc/" + m[1] + "/log")
	if err != nil {
		t.Fatal(err)
	}
	log := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(log, "dry_run") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("log: %d %s %.1000s", resp.StatusCode, resp.Header.Get("Content-Type"), log)
	}
	if st, body := b.post("/admin/gc", url.Values{"action": {"run"}, "workers": {"11"}}); st != http.StatusBadRequest || !strings.Contains(body, "Workers must be") {
		t.Errorf("11 workers: %d %.300s", st, body)
	}
	if st, _ := b.post("/admin/gc", url.Values{"action": {"schedule"}, "type": {"Weekly"}, "delete_untagged": {"on"}}); st != http.StatusSeeOther {
		t.Errorf("schedule: %d", st)
	}
	sch, ok, err := srv.Core.GC.Schedule(ctx, srv.AdminSubject(t))
	if err != nil || !ok || sch.Type != "Weekly" || sch.Params["delete_untagged"] != true {
		t.Errorf("gc schedule: %+v %v %v", sch, ok, err)
	}
	_, body := b.get("/admin/gc")
	if !strings.Contains(body, "Every Weekly") {
		t.Errorf("the schedule is not shown")
	}
}

// withForm is a copy of f with k set to v.
func withForm(f url.Values, k, v string) url.Values {
	out := url.Values{}
	for key, vs := range f {
		out[key] = vs
	}
	out.Set(k, v)
	return out
}

// pingRe finds a test's result on a page.
var pingRe = regexp.MustCompile(`<p class="(?:flash|error) ping"[^>]*>[^<]*</p>`)

var (
	emptyQuery = query.Query{}
	firstPage  = query.Page{Number: 1, Size: 100}
)

func idText(n int64) string { return strconv.FormatInt(n, 10) }

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicationStop: an execution whose upload is held by the
// destination is stopped from its page; it ends Stopped, and its task
// too.
func TestReplicationStop(t *testing.T) {
	dist := registrytest.Start(t, registrytest.None)
	u, _ := url.Parse("http://" + dist.Host)
	proxy := httputil.NewSingleHostReverseProxy(u)
	release := make(chan struct{})
	var once sync.Once
	held := make(chan struct{}, 1)
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && strings.Contains(r.URL.Path, "/blobs/uploads") {
			select {
			case held <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); hold.Close() })
	srv := startFull(t)
	ctx := context.Background()
	admin := srv.AdminSubject(t)
	if err := srv.Push(ctx, harbortest.Image(t), "library/app", "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)
	b.login("admin", harbortest.AdminPassword)
	b.get("/admin/registries")
	if st, body := b.post("/admin/registries", url.Values{"name": {"slow"}, "type": {"docker-registry"}, "url": {hold.URL}}); st != http.StatusSeeOther {
		t.Fatalf("create registry: %d %.1000s", st, body)
	}
	regs, _, err := srv.Core.Replication.Registries(ctx, admin, emptyQuery, firstPage)
	if err != nil || len(regs) != 1 {
		t.Fatal(regs, err)
	}
	b.get("/admin/replication")
	if st, body := b.post("/admin/replication", url.Values{"name": {"held"}, "mode": {"push"}, "registry": {idText(regs[0].ID)}, "flatten": {"0"},
		"trigger": {"manual"}, "enabled": {"on"}, "override": {"on"}}); st != http.StatusSeeOther {
		t.Fatalf("create policy: %d %.1000s", st, body)
	}
	pols, _, err := srv.Core.Replication.Policies(ctx, admin, emptyQuery, firstPage)
	if err != nil || len(pols) != 1 {
		t.Fatal(pols, err)
	}
	st, loc := b.post("/admin/replication/policies/"+idText(pols[0].ID), url.Values{"action": {"run"}})
	if st != http.StatusSeeOther {
		t.Fatalf("run: %d %s", st, loc)
	}
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the replication never reached the destination's upload")
	}
	if _, body := b.get(loc); !strings.Contains(body, `action="`+loc+`/stop"`) {
		t.Fatalf("a running execution offers no Stop:\n%.3000s", body)
	}
	if st, _ := b.post(loc+"/stop", nil); st != http.StatusSeeOther {
		t.Fatalf("stop: %d", st)
	}
	once.Do(func() { close(release) })
	waitFor(t, b, loc, regexp.MustCompile(`<dt>Status</dt><dd>Stopped`))
	if _, body := b.get(loc); strings.Contains(body, `/stop"`) {
		t.Error("a stopped execution still offers Stop")
	}
}
