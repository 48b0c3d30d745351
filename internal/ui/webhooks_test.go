package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/server"
)

// receiver is a real HTTP endpoint that records what webhooks deliver.
type receiver struct {
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	auth, ctype, body string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, delivery{req.Header.Get("Authorization"), req.Header.Get("Content-Type"), string(b)})
	r.mu.Unlock()
}

func (r *receiver) wait(t *testing.T) delivery {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		if len(r.got) > 0 {
			d := r.got[0]
			r.mu.Unlock()
			return d
		}
		r.mu.Unlock()
	}
	t.Fatal("no delivery reached the receiver")
	return delivery{}
}

// TestWebhooks: a project admin creates a webhook through the tab's form
// (a bad address is refused in the form, with what was typed kept but
// the auth header never sent back); a push is delivered to a real
// receiver in the chosen format with the auth header; a maintainer sees
// the webhooks but no form and no delete control, and a post of either
// is refused by the service; the admin deletes it.
func TestWebhooks(t *testing.T) {
	s := start(t, nil, func(c *server.Config) { c.Outbound.Allow = []string{"127.0.0.0/8"} })
	ctx := context.Background()
	admin := s.admin(t)
	if _, err := s.Core.Projects.Create(ctx, admin, project.Create{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		role access.Role
	}{{"owner", access.ProjectAdmin}, {"maint", access.Maintainer}} {
		if _, err := s.Core.Identity.CreateUser(ctx, admin, identity.UserCreate{Username: u.name, Email: u.name + "@example.com", Realname: u.name, Password: userPassword}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Core.Projects.AddMember(ctx, admin, project.Ref{Name: "acme"}, project.MemberCreate{Username: u.name, Role: u.role}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &receiver{}
	hook := httptest.NewServer(rec)
	defer hook.Close()

	owner := newBrowser(t, s.URL)
	owner.login("owner", userPassword)
	st, body := owner.get("/projects/acme/webhooks")
	if st != http.StatusOK || !strings.Contains(body, "New webhook") || !strings.Contains(body, "No webhooks.") {
		t.Fatalf("webhooks tab: %d, form %v", st, strings.Contains(body, "New webhook"))
	}
	const secret = "Bearer s3cret-token"
	st, body = owner.post("/projects/acme/webhooks", url.Values{"name": {"ci <b>hook</b>"}, "address": {"ftp://example.com/x"},
		"auth_header": {secret}, "payload_format": {"CloudEvents"}, "event_type": {"PUSH_ARTIFACT"}})
	if st != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "http or https") {
		t.Errorf("bad address: %d, want 400 with the reason in the form: %.300s", st, body)
	}
	if !strings.Contains(body, `value="ci &lt;b&gt;hook&lt;/b&gt;"`) || strings.Contains(body, "s3cret") {
		t.Errorf("the refused form keeps the name %v and drops the auth header %v", strings.Contains(body, `value="ci &lt;b&gt;hook&lt;/b&gt;"`), !strings.Contains(body, "s3cret"))
	}
	checkNoInline(t, "webhooks form error", body)
	st, loc := owner.post("/projects/acme/webhooks", url.Values{"name": {"ci <b>hook</b>"}, "address": {hook.URL + "/in"},
		"auth_header": {secret}, "payload_format": {"CloudEvents"}, "event_type": {"PUSH_ARTIFACT", "NOT_AN_EVENT"}})
	if st != http.StatusSeeOther || loc != "/projects/acme/webhooks" {
		t.Fatalf("create: %d %.300s", st, loc)
	}
	pols, _, err := s.Core.Webhooks.Policies(ctx, admin, project.Ref{Name: "acme"}, query.Query{}, query.Page{Number: 1, Size: 10})
	if err != nil || len(pols) != 1 {
		t.Fatalf("policies after the form: %v %v", pols, err)
	}
	p := pols[0]
	if p.Name != "ci <b>hook</b>" || len(p.Targets) != 1 || p.Targets[0].Address != hook.URL+"/in" || p.Targets[0].PayloadFormat != "CloudEvents" ||
		p.Targets[0].AuthHeader != secret || strings.Join(p.EventTypes, ",") != "PUSH_ARTIFACT" || !p.Enabled {
		t.Errorf("policy made by the form: %+v", p)
	}
	_, body = owner.get("/projects/acme/webhooks")
	if !strings.Contains(body, "ci &lt;b&gt;hook&lt;/b&gt;") || !strings.Contains(body, hook.URL+"/in") || strings.Contains(body, "s3cret") {
		t.Errorf("the tab lists the policy escaped, with its target and without its auth header: %.600s", body)
	}
	checkNoInline(t, "webhooks", body)

	s.push(t, labeled(t, map[string]string{"n": "1"}), "acme/app", "v1", "owner", userPassword)
	d := rec.wait(t)
	if d.auth != secret || d.ctype != "application/cloudevents+json" || !strings.Contains(d.body, "acme/app") {
		t.Errorf("delivery: auth %q, type %q, body %.300s", d.auth, d.ctype, d.body)
	}

	// The tab shows the delivery.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = owner.get("/projects/acme/webhooks")
		if strings.Contains(body, "<td>Success, ") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(body, "<td>Success, ") {
		t.Errorf("the tab does not show the last delivery as a success: %.1500s", body)
	}

	maint := newBrowser(t, s.URL)
	maint.login("maint", userPassword)
	_, body = maint.get("/projects/acme/webhooks")
	if !strings.Contains(body, hook.URL+"/in") || strings.Contains(body, "New webhook") || strings.Contains(body, "Delete webhook") {
		t.Errorf("a maintainer's tab: policy listed %v, form %v, delete %v", strings.Contains(body, hook.URL+"/in"),
			strings.Contains(body, "New webhook"), strings.Contains(body, "Delete webhook"))
	}
	del := "/projects/acme/webhooks/" + strconv.FormatInt(p.ID, 10) + "/delete"
	if st, _ := maint.post(del, nil); st != http.StatusForbidden {
		t.Errorf("a maintainer's delete: %d, want 403", st)
	}
	if st, _ := maint.post("/projects/acme/webhooks", url.Values{"name": {"m"}, "address": {hook.URL}, "event_type": {"PUSH_ARTIFACT"}}); st != http.StatusForbidden {
		t.Errorf("a maintainer's create: %d, want 403", st)
	}
	if st, loc := owner.post(del, nil); st != http.StatusSeeOther || loc != "/projects/acme/webhooks" {
		t.Errorf("owner's delete: %d %s", st, loc)
	}
	if pols, _, _ := s.Core.Webhooks.Policies(ctx, admin, project.Ref{Name: "acme"}, query.Query{}, query.Page{Number: 1, Size: 10}); len(pols) != 0 {
		t.Errorf("after delete: %d policies", len(pols))
	}
}
