package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/inspect/compute"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// chrome starts Debian's chromium headless with a fresh profile and
// nothing that reaches out to the network on its own, and returns a
// browser tab's context.
func chrome(t *testing.T) context.Context {
	t.Helper()
	bin := testenv.Tool(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// session drives one browser through the UI and checks every page it
// opens: screenshots, no JavaScript dialog (a stored payload that ran
// would open one), the accessibility check.
type session struct {
	t       *testing.T
	ctx     context.Context
	base    string
	shots   string
	docs    string
	axe     string
	mu      sync.Mutex
	dialogs []string
	bytes   int64
	checked map[string]bool
}

// axeVersion is the axe-core release the accessibility check expects:
// .ci/setup.d/70-ui.sh installs it from the npm registry.
const axeVersion = "4.14.1"

// axeScript reads axe-core's axe.min.js from $LADING_AXE, by default
// where .ci/setup.d/70-ui.sh installs it. It is never in the repository.
func axeScript(t *testing.T) string {
	t.Helper()
	p := os.Getenv("LADING_AXE")
	if p == "" {
		p = "/opt/lading-axe/node_modules/axe-core/axe.min.js"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		testenv.Skip(t, "axe-core %s not found (%v): run .ci/setup.d/70-ui.sh or set LADING_AXE to an axe.min.js", axeVersion, err)
	}
	return string(b)
}

func newSession(t *testing.T, base string) *session {
	axe := axeScript(t)
	s := &session{t: t, ctx: chrome(t), base: base, shots: t.ArtifactDir(), docs: os.Getenv("LADING_UI_DOCS"), axe: axe, checked: map[string]bool{}}
	if _, err := chromedp.Call(s.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Listen(s.ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			s.mu.Lock()
			s.dialogs = append(s.dialogs, e.Message)
			s.mu.Unlock()
			go chromedp.Call(s.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		case *network.EventLoadingFinished:
			s.mu.Lock()
			s.bytes += int64(e.EncodedDataLength)
			s.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *session) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(s.ctx, chromedp.Location())
		s.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		s.t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// open navigates to path and waits for the main landmark.
func (s *session) open(path string) {
	s.t.Helper()
	s.run("open "+path, chromedp.Navigate(s.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// shot writes a screenshot of the whole page, and one of the window
// (LADING_UI_DOCS gets the latter, for the README).
func (s *session) shot(name string) {
	full, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(s.shots, name+".png"), full, 0o644)
	if a, ok := anchors[name]; ok {
		chromedp.Do(s.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView()`, a)))
	}
	view, err := chromedp.Run(s.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(s.shots, name+"-window.png"), view, 0o644)
	if s.docs != "" {
		os.WriteFile(filepath.Join(s.docs, "ui-"+name+".png"), view, 0o644)
	}
}

// axeResult is what the test reads of axe.run's results.
type axeResult struct {
	Version    string      `json:"version"`
	Passes     []string    `json:"passes"`
	Violations []violation `json:"violations"`
}

// anchors are where the window screenshot of a page scrolls to.
var anchors = map[string]string{
	"artifact-vulnerabilities": "#inside-h",
	"artifact-packages":        "#inside-h",
	"artifact-labeled":         "#cfg-h",
	"artifact-scanned":         "#scan-h",
	"artifact-labels":          "#labels-h",
	"project-retention":        "#retention-runs",
}

// violation is one axe-core finding.
type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// page checks the page on screen: screenshot, accessibility (axe-core's
// WCAG 2.x A and AA rules, which include labels, contrast and keyboard
// focus), no dialog.
func (s *session) page(name string) {
	s.t.Helper()
	s.shot(name)
	if s.checked[name] {
		return
	}
	s.checked[name] = true
	s.run("inject axe on "+name, chromedp.Evaluate[chromedp.Void](s.axe))
	res, err := chromedp.Run(s.ctx, chromedp.Evaluate[axeResult](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}})
			.then(r => ({version: axe.version, passes: r.passes.map(p => p.id),
				violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))}))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		s.t.Fatalf("axe on %s: %v", name, err)
	}
	if res.Version != axeVersion || !slices.Contains(res.Passes, "color-contrast") {
		s.t.Errorf("%s: axe-core %s did not check contrast (passes: %v)", name, res.Version, res.Passes)
	}
	for _, v := range res.Violations {
		s.t.Errorf("%s: accessibility: %s (%s, %s): %v", name, v.ID, v.Impact, v.Help, v.Nodes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.dialogs) > 0 {
		s.t.Errorf("%s: a JavaScript dialog opened: %q", name, s.dialogs)
		s.dialogs = nil
	}
}

func (s *session) text(sel string) string {
	s.t.Helper()
	out, err := chromedp.Run(s.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		s.shot("failed-read")
		s.t.Fatalf("read %s: %v", sel, err)
	}
	return out
}

func (s *session) count(sel string) int {
	s.t.Helper()
	n, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		s.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func (s *session) login(user, password string) {
	s.t.Helper()
	s.open("/login")
	s.run("log in as "+user,
		chromedp.SendKeys(chromedp.CSS("#principal"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/profile"]`)))
}

func (s *session) logout() {
	s.t.Helper()
	s.run("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#principal")))
}

// submit fills a form's fields (selector -> value) and submits it with
// its button, then waits for sel.
func (s *session) submit(fields map[string]string, button, waitFor string) {
	s.t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		acts = append(acts, chromedp.SetValue(chromedp.CSS(sel), v))
	}
	acts = append(acts, chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS(waitFor)))
	s.run("submit "+button, acts...)
}

// alpineDBFile builds, in a file of the test's own, a vulnerability
// database from the corpus feeds the alpine-3.20-app image needs
// (Alpine's secdb, npm, Go).
func alpineDBFile(t *testing.T) string {
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	path := filepath.Join(t.TempDir(), vulndb.FileName)
	if _, err := feed.Build(context.Background(), nil, path, []string{
		filepath.Join(feeds, "alpine-secdb"), filepath.Join(feeds, "npm"), filepath.Join(feeds, "osv", "Go.zip")}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrowser drives the UI in headless chromium as its users would: the
// administrator creates a project and a user, adds the user as a
// developer; the developer pushes an image with skopeo; the image is
// listed; the administrator presses Scan (registry-side scanning, as
// lading serve runs it), opens the vulnerabilities and packages shown
// with the layers that brought them, labels the artifact, sets an
// immutable tag rule and a retention rule and dry-runs it, turns on
// vulnerability prevention, and the developer's skopeo pull is refused
// (412); stored script payloads stay inert; a post without the CSRF
// token is refused; a guest sees no administration and no delete
// controls. Every page is screenshotted (t.ArtifactDir; with
// LADING_UI_DOCS=DIR also there) and checked with axe-core.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives chromium through the whole UI; not in -short mode")
	}
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	img := corpustest.Image(t, "alpine-3.20-app.oci.tar")
	// As lading serve: the artifact pages' analyzer finds packages, the
	// registry's scanning finds vulnerabilities when asked.
	srv := start(t, compute.New(), withScanning(alpineDBFile(t)))
	ctx := context.Background()
	admin := srv.admin(t)
	if _, err := srv.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: "gail", Email: "gail@example.com", Realname: "Gail Guest", Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, srv.URL)
	metrics := map[string]any{}

	// First load, cold cache: what the login page costs.
	bytes, tti := s.measure("/login")
	metrics["login_transfer_bytes"], metrics["login_dom_interactive_ms"] = bytes, tti
	s.page("login")

	s.login("admin", "Harbor12345")
	s.page("projects")
	// Keyboard: the first Tab reaches the skip link.
	s.open("/projects")
	s.run("tab to the skip link", chromedp.KeyEvent("\t"))
	focused, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.activeElement.className`))
	if err != nil {
		t.Fatal(err)
	}
	if focused != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}

	// Create a project.
	s.submit(map[string]string{"#np-name": "demo"}, `form[method=post][action="/projects"] button[type=submit]`, "nav.tabs")
	if h := s.text("h1"); !strings.HasPrefix(h, "demo") {
		t.Fatalf("after creating the project: h1 %q", h)
	}
	s.page("project-summary")

	// Create a user, then add them as developer.
	s.open("/admin/users")
	s.submit(map[string]string{"#u-name": "devon", "#u-email": "devon@example.com", "#u-real": "Devon Developer", "#u-pass": userPassword},
		`form[method=post][action="/admin/users"] button[type=submit]`, ".flash")
	if f := s.text(".flash"); !strings.Contains(f, "devon created") {
		t.Fatalf("creating a user: %q", f)
	}
	s.page("admin-users")
	s.open("/projects/demo/members")
	s.submit(map[string]string{"#m-name": "devon", "#m-role": "2"}, `form[method=post][action="/projects/demo/members"] button[type=submit]`, ".flash")
	s.open("/projects/demo/members")
	if body := s.text("#member-list"); !strings.Contains(body, "devon") || !strings.Contains(body, "Developer") {
		t.Fatalf("members: %q", body)
	}
	s.page("project-members")
	if _, err := srv.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "demo"}, project.MemberCreate{Username: "gail", Role: access.Guest}); err != nil {
		t.Fatal(err)
	}

	// The developer pushes with a real client.
	out, err := exec.Command(skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "devon:"+userPassword,
		"oci-archive:"+img+":latest", "docker://"+srv.Host+"/demo/app:1.0").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	// A second image carries a script payload in a label.
	srv.push(t, labeled(t, map[string]string{"org.opencontainers.image.description": xss}), "demo/labeled", "1", "devon", userPassword)

	s.open("/projects/demo/repositories")
	if body := s.text("#repo-list"); !strings.Contains(body, "demo/app") {
		t.Fatalf("repositories: %q", body)
	}
	s.page("project-repositories")
	s.run("open the repository", chromedp.Click(chromedp.CSS(`#repo-list a[href="/projects/demo/r/app"]`)), chromedp.WaitVisible(chromedp.CSS("#artifact-list")))
	if tags := s.text("#artifact-list"); !strings.Contains(tags, "1.0") {
		t.Fatalf("artifact list: %q", tags)
	}
	s.liveTagFilter()
	s.confirmBeforeDelete()
	bytes, tti = s.measure("/projects/demo/r/app")
	metrics["repository_transfer_bytes_warm"], metrics["repository_dom_interactive_ms"] = bytes, tti

	// Store a payload in the description through the form.
	s.run("edit the description", chromedp.Click(chromedp.CSS("details summary")),
		chromedp.SetValue(chromedp.CSS("#desc"), "Line one\n"+xss),
		chromedp.Click(chromedp.CSS(`button[value=description]`)), chromedp.WaitVisible(chromedp.CSS(".description")))
	if d := s.text(".description"); !strings.Contains(d, `<script>alert("xss")</script>`) {
		t.Errorf("description shown as %q, want the payload as text", d)
	}
	if n := s.count(".description img, .description script, .description svg"); n != 0 {
		t.Errorf("the description made %d elements", n)
	}
	s.page("repository")

	// The artifact page: config, history; not scanned until Scan is
	// pressed.
	s.run("open the artifact", chromedp.Click(chromedp.CSS("#artifact-list a.digest")), chromedp.WaitVisible(chromedp.CSS("#hist-h")))
	if st := s.text("#scan-status"); st != "Not scanned." {
		t.Errorf("scan status before the scan: %q", st)
	}
	artURL, err := chromedp.Run(s.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	artPath := strings.TrimPrefix(artURL, s.base)
	s.run("press Scan", chromedp.Click(chromedp.CSS("#scan-btn")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	s.waitScan(artPath)
	s.page("artifact-scanned")
	// Then what is inside, by layer, with the scan's findings.
	s.run("wait for the analysis", chromedp.WaitVisible(chromedp.CSS("table.origin")))
	s.run("wait for vulnerabilities", chromedp.WaitVisible(chromedp.CSS("table.vulns")))
	if n := s.count("table.vulns tbody tr"); n == 0 {
		t.Error("no vulnerabilities listed for alpine-3.20-app")
	}
	if n := s.count("table.origin tbody.own tr[id^=layer-]"); n == 0 {
		t.Error("no layers of the image's own")
	}
	s.page("artifact-vulnerabilities")
	s.mark()
	// Set the severity and submit the form as its button would (a submit
	// event), in one step: the panel is replaced under the test's feet.
	s.run("filter critical", chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector("#analysis form");
		f.querySelector("#f-sev").value = "CRITICAL"; f.requestSubmit(f.querySelector("button[type=submit]")); })()`))
	s.until("the critical findings alone", `(document.querySelector("#analysis:not(.loading) #f-sev") || {}).value === "CRITICAL" &&
		document.querySelectorAll("table.vulns tbody tr").length + document.querySelectorAll("#analysis p.empty").length > 0 &&
		document.querySelectorAll("table.vulns tbody .sev:not(.sev-critical)").length === 0`)
	s.stayed("filtering the vulnerabilities")
	s.run("packages by layer", chromedp.Click(chromedp.CSS(`a[href$="/packages"]`)), chromedp.WaitVisible(chromedp.CSS("table.packages")))
	if n := s.count("table.packages tbody tr"); n < 50 {
		t.Errorf("%d packages listed, want the image's apk, npm and Go packages", n)
	}
	s.page("artifact-packages")
	s.lifecycle(artPath)

	// The label payload is inert on its artifact page.
	s.open("/projects/demo/r/labeled")
	s.run("open the labeled artifact", chromedp.Click(chromedp.CSS("#artifact-list a.digest")), chromedp.WaitVisible(chromedp.CSS("#cfg-h")))
	if n := s.count("main script, main img, main svg:not([aria-hidden])"); n != 0 {
		t.Errorf("the label made %d elements", n)
	}
	s.page("artifact-labeled")

	// Policies: turn on vulnerability prevention; the developer's pull
	// with skopeo is refused.
	s.open("/projects/demo/policies")
	s.run("prevent vulnerable pulls", chromedp.Click(chromedp.CSS(`input[name=prevent_vul]`)),
		chromedp.SetValue(chromedp.CSS("#severity"), "low"), chromedp.Click(chromedp.CSS(`form.policies button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	md, err := srv.Core.Projects.Metadata(ctx, admin, project.Ref{Name: "demo"}, "")
	if err != nil || md["prevent_vul"] != "true" || md["severity"] != "low" {
		t.Errorf("policies after the form: %v %v", md, err)
	}
	s.page("project-policies")
	out, err = exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "--src-creds", "devon:"+userPassword,
		"docker://"+srv.Host+"/demo/app:1.0", "oci:"+filepath.Join(t.TempDir(), "pulled")+":1.0").CombinedOutput()
	// skopeo prints the registry's message, not the status (412, which
	// TestScanAllowlistAccessories reads with go-containerregistry).
	if err == nil || !strings.Contains(string(out), "cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of") ||
		!strings.Contains(string(out), "Low") {
		t.Errorf("skopeo pull with prevention on: %v\n%s\nwant refused with Harbor's message", err, out)
	}

	// A form post without the CSRF token, from the page itself.
	status, err := chromedp.Run(s.ctx, chromedp.Evaluate[int](`fetch("/projects", {method: "POST", body: new URLSearchParams({name: "no-token"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Errorf("post without the CSRF token: %d, want 403", status)
	}

	for _, p := range []struct{ path, name string }{{"/admin/configuration", "admin-configuration"}, {"/admin/audit", "admin-audit"}, {"/admin/jobs", "admin-jobs"},
		{"/admin/robots", "admin-robots"}, {"/projects/demo/logs", "project-logs"}, {"/projects/demo/robots", "project-robots"}, {"/projects/demo/webhooks", "project-webhooks"}, {"/profile", "profile"}} {
		s.open(p.path)
		s.page(p.name)
	}
	s.logout()

	// A guest: no administration, no delete controls.
	s.login("gail", userPassword)
	if n := s.count("#admin-menu"); n != 0 {
		t.Error("a guest sees the Administration menu")
	}
	for _, p := range []string{"/projects/demo", "/projects/demo/r/app", "/projects/demo/members", "/projects/demo/immutability",
		"/projects/demo/labels", "/projects/demo/retention", artPath} {
		s.open(p)
		if n := s.count("button.danger"); n != 0 {
			t.Errorf("%s: a guest is offered %d delete controls", p, n)
		}
	}
	s.open("/projects/demo/r/app")
	s.page("repository-guest")

	b, _ := json.MarshalIndent(metrics, "", "  ")
	os.WriteFile(filepath.Join(s.shots, "metrics.json"), b, 0o644)
	t.Logf("browser metrics: %s", b)
}

// waitScan reloads the artifact page at path until its scan has ended,
// and wants it a success.
func (s *session) waitScan(path string) {
	s.t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; {
		s.open(path)
		st := s.text("#scan-status")
		if st == "Success" {
			return
		}
		if st != "Pending" && st != "Running" || time.Now().After(deadline) {
			s.shot("failed-scan")
			s.t.Fatalf("scan status %q, want Success", st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// lifecycle uses the project's lifecycle tabs: a label made and put on
// the artifact at artPath, an immutable tag rule, a retention rule and a
// dry run whose task is listed.
func (s *session) lifecycle(artPath string) {
	s.t.Helper()
	s.open("/projects/demo/labels")
	s.submit(map[string]string{"#l-name": "release" + xss, "#l-desc": "released builds"}, `#label-form button[type=submit]`, ".flash")
	s.open("/projects/demo/labels")
	if body := s.text("table.labels"); !strings.Contains(body, `release<script>`) {
		s.t.Errorf("labels tab: %q", body)
	}
	s.page("project-labels")
	s.open(artPath)
	s.run("attach the label", chromedp.Click(chromedp.CSS(`#attach-label button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#labels ul.labels")))
	if l := s.text("#labels ul.labels"); !strings.Contains(l, "release<script>") {
		s.t.Errorf("artifact labels: %q", l)
	}
	if n := s.count("main script, main img, main svg:not([aria-hidden])"); n != 0 {
		s.t.Errorf("the label made %d elements", n)
	}
	s.page("artifact-labels")

	s.open("/projects/demo/immutability")
	s.submit(map[string]string{"#im-repo-pat": "app", "#im-tag-pat": "1.*"}, `#immutable-form button[type=submit]`, ".flash")
	s.open("/projects/demo/immutability")
	if body := s.text("table.rules"); !strings.Contains(body, "1.*") || !strings.Contains(body, "enabled") {
		s.t.Errorf("immutability tab: %q", body)
	}
	s.page("project-immutability")

	s.open("/projects/demo/retention")
	s.submit(map[string]string{"#rt-template": "latestPushedK", "#rt-n": "5"}, `#retention-form button[type=submit]`, ".flash")
	s.open("/projects/demo/retention")
	s.run("dry run", chromedp.Click(chromedp.CSS(`#retention-dry-run button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	loc, err := chromedp.Run(s.ctx, chromedp.Location())
	if err != nil {
		s.t.Fatal(err)
	}
	path := strings.TrimPrefix(loc, s.base)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		s.open(path)
		if s.count(`#retention-tasks a[href$="/log"]`) > 0 && s.count(`#retention-runs td:nth-child(2) button`) == 0 {
			break
		}
		if time.Now().After(deadline) {
			s.shot("failed-retention")
			s.t.Fatal("the dry run's task did not finish")
		}
		time.Sleep(300 * time.Millisecond)
	}
	if body := s.text("#retention-runs"); !strings.Contains(body, "dry run") {
		s.t.Errorf("retention runs: %q", body)
	}
	s.page("project-retention")
}

// measure loads path in the browser and returns the bytes transferred
// (compressed, headers included) for the page and its assets, and the
// time until the document was interactive (deferred scripts run:
// domContentLoadedEventEnd), in milliseconds.
func (s *session) measure(path string) (int64, float64) {
	s.t.Helper()
	s.mu.Lock()
	s.bytes = 0
	s.mu.Unlock()
	s.run("measure "+path, chromedp.Navigate(s.base+path), chromedp.WaitReady(chromedp.CSS("main")))
	if _, err := chromedp.Run(s.ctx, chromedp.Poll[bool](`performance.getEntriesByType("navigation")[0].loadEventEnd > 0`)); err != nil {
		s.t.Fatal(err)
	}
	tti, err := chromedp.Run(s.ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd`))
	if err != nil {
		s.t.Fatal(err)
	}
	// Let the last loadingFinished events arrive.
	chromedp.Do(s.ctx, chromedp.Sleep(200*time.Millisecond))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, tti
}

// mark leaves a mark on the page's window, which a navigation would
// clear; stayed checks it is still there (the page was updated in place).
func (s *session) mark() {
	s.t.Helper()
	s.run("mark the window", chromedp.Evaluate[chromedp.Void](`window.ladingTestMark = true`))
}

func (s *session) stayed(what string) {
	s.t.Helper()
	ok, err := chromedp.Run(s.ctx, chromedp.Evaluate[bool](`window.ladingTestMark === true`))
	if err != nil {
		s.t.Fatal(err)
	}
	if !ok {
		s.t.Errorf("%s loaded a new page, want the page updated in place", what)
	}
}

// until waits for a JavaScript condition to hold.
func (s *session) until(what, cond string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
		s.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// liveTagFilter types in the repository page's tag filter: the artifact
// list is replaced in place as the typing settles, the field keeps the
// focus, and the address records the filter; back to no filter, the
// artifact is there again.
func (s *session) liveTagFilter() {
	s.t.Helper()
	s.mark()
	s.run("type a tag filter", chromedp.Click(chromedp.CSS("#tag-filter")), chromedp.SendKeys(chromedp.CSS("#tag-filter"), "zz"))
	s.until("the filtered list", `(document.querySelector("#artifact-list p.empty") || {}).textContent === "No artifacts with a tag containing “zz”."`)
	s.stayed("the tag filter")
	got, err := chromedp.Run(s.ctx, chromedp.Evaluate[[]string](`[document.activeElement.id, location.search]`))
	if err != nil {
		s.t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tag-filter", "?tag=zz&sort="}, got); diff != "" {
		s.t.Errorf("after filtering, focus and query (-want +got):\n%s", diff)
	}
	s.run("clear the tag filter", chromedp.KeyEvent(kb.Backspace+kb.Backspace))
	s.until("the whole list", `document.querySelectorAll("#artifact-list a.digest").length === 1`)
}

// confirmBeforeDelete: a delete control asks first, and refusing deletes
// nothing.
func (s *session) confirmBeforeDelete() {
	s.t.Helper()
	s.run("delete, then refuse", chromedp.Click(chromedp.CSS(`#artifact-list button.danger`)))
	var dialogs []string
	for deadline := time.Now().Add(20 * time.Second); len(dialogs) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		s.mu.Lock()
		dialogs = s.dialogs
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.dialogs = nil
	s.mu.Unlock()
	if len(dialogs) != 1 || !strings.HasPrefix(dialogs[0], "Delete sha256:") {
		s.t.Errorf("deleting an artifact asked %q, want one question", dialogs)
	}
	s.open("/projects/demo/r/app")
	if n := s.count("#artifact-list a.digest"); n != 1 {
		s.t.Errorf("after refusing the deletion, %d artifacts listed, want 1", n)
	}
}
