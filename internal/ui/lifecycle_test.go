package ui_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/retention"
)

// pushErr pushes a random image to repo:tag as user with
// go-containerregistry's client and returns its error.
func (s *testServer) pushErr(t *testing.T, repo, tag, user, password string) error {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
}

// TestImmutabilityTab: rules made, disabled and deleted through the tab
// protect tags from a real registry client's push; a guest is offered
// none of it, and its posts are refused by the service.
func TestImmutabilityTab(t *testing.T) {
	w := newWorld(t)
	b := newBrowser(t, w.s.URL)
	b.login("owner", userPassword)
	st, body := b.get("/projects/acme/immutability")
	if st != http.StatusOK || !strings.Contains(body, "New immutable tag rule") {
		t.Fatalf("immutability tab: %d %.2000s", st, body)
	}
	checkNoInline(t, "immutability", body)
	if st, loc := b.post("/projects/acme/immutability", url.Values{"repo_decoration": {"repoMatches"}, "repo_pattern": {"app"},
		"tag_decoration": {"matches"}, "tag_pattern": {"v*"}}); st != http.StatusSeeOther {
		t.Fatalf("create rule: %d %s", st, loc)
	}
	_, body = b.get("/projects/acme/immutability")
	if !strings.Contains(body, "<code>app</code>") || !strings.Contains(body, "<code>v*</code>") || !strings.Contains(body, ">enabled<") {
		t.Errorf("rule not listed: %.3000s", body)
	}
	var te *transport.Error
	if err := w.s.pushErr(t, "acme/app", "v1", "owner", userPassword); !errors.As(err, &te) || te.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("push over the immutable tag v1: %v, want 412", err)
	}
	rules, _, err := w.s.Core.Immutable.List(context.Background(), w.s.admin(t), project.Ref{Name: "acme"}, query.Query{}, query.Page{Number: 1, Size: 20})
	if err != nil || len(rules) != 1 {
		t.Fatalf("rules: %v %v", rules, err)
	}
	path := "/projects/acme/immutability/" + itoa(rules[0].ID)

	// The guest sees the rule and no control; its posts are refused.
	g := newBrowser(t, w.s.URL)
	g.login("guest", userPassword)
	if st, body := g.get("/projects/acme/immutability"); st == http.StatusOK && (strings.Contains(body, "New immutable tag rule") || strings.Contains(body, `value="disable"`)) {
		t.Errorf("a guest is offered immutability controls")
	}
	g.get("/projects/acme")
	if st, _ := g.post(path, url.Values{"action": {"delete"}}); st != http.StatusForbidden {
		t.Errorf("guest's delete: %d, want 403", st)
	}

	if st, _ := b.post(path, url.Values{"action": {"disable"}}); st != http.StatusSeeOther {
		t.Fatalf("disable: %d", st)
	}
	if _, body := b.get("/projects/acme/immutability"); !strings.Contains(body, ">disabled<") {
		t.Errorf("rule not shown disabled")
	}
	if err := w.s.pushErr(t, "acme/app", "v1", "owner", userPassword); err != nil {
		t.Errorf("push over v1 with the rule disabled: %v", err)
	}
	if st, _ := b.post(path, url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Fatalf("delete: %d", st)
	}
	if _, body := b.get("/projects/acme/immutability"); !strings.Contains(body, "No immutable tag rules.") {
		t.Errorf("rule still listed after delete")
	}
	// A bad pattern is the user's to fix: said on the page, nothing made.
	if st, loc := b.post("/projects/acme/immutability", url.Values{"repo_decoration": {"repoMatches"}, "repo_pattern": {"{a,"},
		"tag_decoration": {"matches"}, "tag_pattern": {"x"}}); st != http.StatusSeeOther {
		t.Fatalf("bad rule: %d %s", st, loc)
	}
	if _, body := b.get("/projects/acme/immutability"); !strings.Contains(body, `class="flash"`) || !strings.Contains(body, "No immutable tag rules.") {
		t.Errorf("bad pattern: no message, or a rule made: %.2000s", body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

// TestProjectLabels: a project's labels are made, edited and deleted in
// its tab, attached to and detached from an artifact on its page; names
// and descriptions are shown as text; a guest is offered none of it.
func TestProjectLabels(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	b := newBrowser(t, w.s.URL)
	b.login("owner", userPassword)
	b.get("/projects/acme/labels")
	if st, loc := b.post("/projects/acme/labels", url.Values{"name": {"qa" + xss}, "description": {xss}, "color": {"#1D5100"}}); st != http.StatusSeeOther {
		t.Fatalf("create label: %d %s", st, loc)
	}
	st, body := b.get("/projects/acme/labels")
	if st != http.StatusOK || !strings.Contains(body, `<span class="label">qa&lt;script&gt;`) {
		t.Fatalf("labels tab: %d, label not shown escaped: %.3000s", st, body)
	}
	checkNoInline(t, "labels", body)
	p, err := w.s.Core.Projects.Get(ctx, w.s.admin(t), project.Ref{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ls, _, err := w.s.Core.Labels.List(ctx, w.s.admin(t), label.Project, p.ID, "", query.Query{}, query.Page{Number: 1, Size: 10})
	if err != nil || len(ls) != 1 {
		t.Fatalf("labels: %v %v", ls, err)
	}
	id := itoa(ls[0].ID)
	if st, _ := b.post("/projects/acme/labels/"+id, url.Values{"action": {"update"}, "name": {"qa-passed"}, "description": {"passed QA"}}); st != http.StatusSeeOther {
		t.Fatalf("edit label: %d", st)
	}
	artPage := "/projects/acme/r/app/-/" + w.digest.String()
	_, body = b.get(artPage)
	if !strings.Contains(body, `<option value="`+id+`">qa-passed</option>`) {
		t.Fatalf("artifact page does not offer the label: %.4000s", body)
	}
	if st, _ := b.post(artPage, url.Values{"action": {"attach-label"}, "label": {id}}); st != http.StatusSeeOther {
		t.Fatalf("attach: %d", st)
	}
	of, err := w.s.Core.Labels.Of(ctx, []int64{artifactID(t, w)})
	if err != nil || len(of) != 1 {
		t.Fatalf("labels of the artifact after attaching: %v %v", of, err)
	}
	if _, body := b.get("/projects/acme/r/app"); !strings.Contains(body, `<span class="label" title="passed QA">qa-passed</span>`) {
		t.Errorf("repository list does not show the label")
	}

	g := newBrowser(t, w.s.URL)
	g.login("guest", userPassword)
	_, body = g.get(artPage)
	if strings.Contains(body, `value="detach-label"`) || strings.Contains(body, `id="attach-label"`) {
		t.Errorf("a guest is offered label controls on the artifact page")
	}
	if st, _ := g.post(artPage, url.Values{"action": {"detach-label"}, "label": {id}}); st != http.StatusForbidden {
		t.Errorf("guest's detach: %d, want 403", st)
	}
	if st, body := g.get("/projects/acme/labels"); st == http.StatusOK && strings.Contains(body, "New label") {
		t.Errorf("a guest is offered the new label form")
	}

	if st, _ := b.post(artPage, url.Values{"action": {"detach-label"}, "label": {id}}); st != http.StatusSeeOther {
		t.Fatalf("detach: %d", st)
	}
	if of, _ := w.s.Core.Labels.Of(ctx, []int64{artifactID(t, w)}); len(of) != 0 {
		t.Errorf("labels after detaching: %v", of)
	}
	if st, _ := b.post("/projects/acme/labels/"+id, url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Fatalf("delete label: %d", st)
	}
	if _, body := b.get("/projects/acme/labels"); !strings.Contains(body, "No labels in this project.") {
		t.Errorf("label still listed after delete")
	}
}

// artifactID is the id of the world's artifact.
func artifactID(t *testing.T, w *world) int64 {
	t.Helper()
	a, err := w.s.Core.Artifacts.Artifact(context.Background(), w.s.admin(t), project.Ref{Name: w.project}, w.repo, w.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// TestRetentionTab: a rule and a schedule set through the tab; a dry run
// deletes nothing and its task log says what a run would do; a run keeps
// the newest artifact alone, which a real registry client sees.
func TestRetentionTab(t *testing.T) {
	s := start(t, nil, func(c *server.Config) { c.Jobs.Poll = 50 * time.Millisecond })
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		if err := s.pushErr(t, "acme/app", tag, "admin", "Harbor12345"); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, s.URL)
	b.login("admin", "Harbor12345")
	st, body := b.get("/projects/acme/retention")
	if st != http.StatusOK || !strings.Contains(body, "New retention rule") || strings.Contains(body, "Run now") {
		t.Fatalf("retention tab without a policy: %d %.2000s", st, body)
	}
	checkNoInline(t, "retention", body)
	if st, loc := b.post("/projects/acme/retention", url.Values{"action": {"add-rule"}, "template": {"latestPushedK"}, "n": {"1"},
		"repo_decoration": {"repoMatches"}, "repo_pattern": {"**"}, "tag_decoration": {"matches"}, "tag_pattern": {"**"},
		"untagged_field": {"1"}, "untagged": {"on"}}); st != http.StatusSeeOther {
		t.Fatalf("add rule: %d %s", st, loc)
	}
	if st, _ := b.post("/projects/acme/retention", url.Values{"action": {"schedule"}, "schedule": {"daily"}}); st != http.StatusSeeOther {
		t.Fatalf("schedule: %d", st)
	}
	_, body = b.get("/projects/acme/retention")
	if !strings.Contains(body, "retain the most recently pushed 1 artifacts") || !strings.Contains(body, `<option value="daily" selected>`) {
		t.Fatalf("rule or schedule not shown: %.4000s", body)
	}
	p, _ := s.Core.Projects.Get(ctx, admin, project.Ref{Name: "acme"})
	pol, err := s.Core.Retention.Get(ctx, admin, mustID(t, p.Metadata["retention_id"]))
	if err != nil || len(pol.Rules) != 1 || pol.Trigger.Cron() != "0 0 0 * * *" {
		t.Fatalf("policy after the forms: %+v %v", pol, err)
	}

	run := func(dry string) string {
		t.Helper()
		st, loc := b.post("/projects/acme/retention/run", url.Values{"dry_run": {dry}})
		if st != http.StatusSeeOther || !strings.Contains(loc, "?exec=") {
			t.Fatalf("run (dry %s): %d %s", dry, st, loc)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, body := b.get(loc)
			if strings.Contains(body, "log of app") && !regexp.MustCompile(`<td>\d+</td><td>(Running|Pending)`).MatchString(body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("run did not finish: %.4000s", body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	body = run("true")
	if !strings.Contains(body, "dry run") {
		t.Errorf("the run is not listed as a dry run")
	}
	logURL := regexp.MustCompile(`href="(/projects/acme/retention/runs/\d+/tasks/\d+/log)"`).FindStringSubmatch(body)
	if logURL == nil {
		t.Fatalf("no task log link: %.4000s", body)
	}
	st, log := b.get(logURL[1])
	if st != http.StatusOK || !strings.Contains(log, "v3") || !strings.Contains(log, "v1") {
		t.Errorf("task log: %d %q", st, log)
	}
	if tags := listTags(t, s); len(tags) != 3 {
		t.Errorf("after the dry run: tags %v, want all three", tags)
	}
	// With retention's queue paused, a run waits: Stop is offered and
	// stops it, and nothing is deleted.
	if err := s.Core.Jobs.SetPaused(ctx, retention.Kind, true); err != nil {
		t.Fatal(err)
	}
	st, loc := b.post("/projects/acme/retention/run", url.Values{"dry_run": {"false"}})
	if st != http.StatusSeeOther {
		t.Fatalf("run with the queue paused: %d %s", st, loc)
	}
	_, body = b.get(loc)
	stop := regexp.MustCompile(`action="(/projects/acme/retention/runs/\d+/stop)"`).FindStringSubmatch(body)
	if stop == nil {
		t.Fatalf("no Stop for the waiting run: %.4000s", body)
	}
	if st, _ := b.post(stop[1], nil); st != http.StatusSeeOther {
		t.Fatalf("stop: %d", st)
	}
	if err := s.Core.Jobs.SetPaused(ctx, retention.Kind, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		_, body = b.get(loc)
		if regexp.MustCompile(`<td>\d+</td><td>Stopped`).MatchString(body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run was not stopped: %.4000s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tags := listTags(t, s); len(tags) != 3 {
		t.Errorf("after the stopped run: tags %v, want all three", tags)
	}

	run("false")
	if diff := cmp.Diff([]string{"v3"}, listTags(t, s)); diff != "" {
		t.Errorf("after the run, tags (-want +got):\n%s", diff)
	}

	// Disabling and deleting the rule.
	if st, _ := b.post("/projects/acme/retention/rules/0", url.Values{"action": {"disable"}}); st != http.StatusSeeOther {
		t.Fatalf("disable rule: %d", st)
	}
	if pol, _ := s.Core.Retention.Get(ctx, admin, pol.ID); !pol.Rules[0].Disabled {
		t.Errorf("rule not disabled")
	}
	if st, _ := b.post("/projects/acme/retention/rules/0", url.Values{"action": {"delete"}}); st != http.StatusSeeOther {
		t.Fatalf("delete rule: %d", st)
	}
	if pol, _ := s.Core.Retention.Get(ctx, admin, pol.ID); len(pol.Rules) != 0 {
		t.Errorf("rules after delete: %v", pol.Rules)
	}
}

// listTags lists acme/app's tags with go-containerregistry's client.
func listTags(t *testing.T, s *testServer) []string {
	t.Helper()
	repo, err := name.NewRepository(s.Host+"/acme/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo, remote.WithAuth(&authn.Basic{Username: "admin", Password: "Harbor12345"}))
	if err != nil {
		t.Fatal(err)
	}
	return tags
}
