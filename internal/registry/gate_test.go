package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry"
)

// testGate is a Gate written as data: users and their passwords, tokens
// and what they carry, grants per user and repository, the projects that
// exist, and policy refusals. It checks that the registry does what its
// Gate says (challenges, 401 against 403, token scopes, naming unknown
// projects); the real Gate is tested with the real services in
// registry/server and interop.
type testGate struct {
	passwords map[string]string
	tokens    map[string]registry.Subject
	grants    map[string][]string // "user repo" -> actions ("" user: anonymous)
	projects  []string
	throttled bool
	refuse    map[string]error // "blob", "push", "pull", "delete"
}

func (g *testGate) Basic(_ context.Context, user, password, _ string) (registry.Subject, error) {
	if g.throttled {
		return registry.Subject{}, &throttled{}
	}
	if p, ok := g.passwords[user]; !ok || p != password {
		return registry.Subject{}, errdefs.Unauthorized(errors.New("invalid username or password"))
	}
	return registry.Subject{Name: user}, nil
}

type throttled struct{}

func (throttled) Error() string          { return "too many failed logins" }
func (throttled) Unwrap() error          { return errdefs.ErrThrottled }
func (throttled) RetryAfterSeconds() int { return 7 }

func (g *testGate) Bearer(_ context.Context, tok string) (registry.Subject, error) {
	s, ok := g.tokens[tok]
	if !ok {
		return registry.Subject{}, errdefs.Unauthorized(errors.New("token signature invalid"))
	}
	return s, nil
}

func (g *testGate) Challenge(r *http.Request) (string, string) {
	return "http://" + r.Host + "/service/token", "harbor-registry"
}

func (g *testGate) Allowed(_ context.Context, s registry.Subject, repo string, want []string) ([]string, error) {
	p, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, errdefs.InvalidArgument(fmt.Errorf("repository %s is not in a project", repo))
	}
	if !slices.Contains(g.projects, p) {
		return nil, errdefs.NotFound(fmt.Errorf("project %s not found", p))
	}
	var out []string
	for _, a := range g.grants[s.Name+" "+repo] {
		if slices.Contains(want, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (g *testGate) Catalog(_ context.Context, s registry.Subject) (bool, error) {
	return s.Name == "admin", nil
}

func (g *testGate) CheckBlob(context.Context, registry.Subject, string, int64) error {
	return g.refuse["blob"]
}
func (g *testGate) CheckPush(context.Context, registry.Subject, registry.PushCheck) error {
	return g.refuse["push"]
}
func (g *testGate) CheckPull(context.Context, registry.Subject, string, string, string) error {
	return g.refuse["pull"]
}
func (g *testGate) CheckDelete(context.Context, registry.Subject, string, string, string) error {
	return g.refuse["delete"]
}

func gated(t *testing.T) (*testRegistry, *testGate) {
	g := &testGate{
		passwords: map[string]string{"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"},
		tokens:    map[string]registry.Subject{},
		grants: map[string][]string{
			"alice p/app":   {"pull", "push", "delete"},
			"admin p/app":   {"pull", "push", "delete"},
			"bob p/app":     {"pull"},
			" pub/app":      {"pull"},
			"alice pub/app": {"pull", "push"},
		},
		projects: []string{"p", "pub"},
		refuse:   map[string]error{},
	}
	return newRegistry(t, registry.WithGate(g)), g
}

func TestGateAuthentication(t *testing.T) {
	tr, g := gated(t)
	r := tr.do(t, "GET", "/v2/", nil)
	want(t, "anonymous /v2/", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if got, wantCh := r.header.Get("WWW-Authenticate"), `Bearer realm="`+tr.url+`/service/token",service="harbor-registry"`; got != wantCh {
		t.Errorf("challenge %q, want %q", got, wantCh)
	}
	tr.user, tr.pass = "alice", "wrong"
	r = tr.do(t, "GET", "/v2/", nil)
	want(t, "wrong password", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if strings.Contains(r.header.Get("WWW-Authenticate"), `error=`) {
		t.Errorf("challenge after bad basic credentials: %q", r.header.Get("WWW-Authenticate"))
	}
	tr.pass = "alice-pw"
	want(t, "basic /v2/", tr.do(t, "GET", "/v2/", nil), http.StatusOK, "")
	g.throttled = true
	r = tr.do(t, "GET", "/v2/", nil)
	want(t, "throttled", r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	if r.header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	g.throttled = false
	tr.user = ""
	tr.bearer = "forged"
	r = tr.do(t, "GET", "/v2/p/app/tags/list", nil)
	want(t, "bad token", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("challenge after a bad token: %q", r.header.Get("WWW-Authenticate"))
	}
}

func TestGateAuthorization(t *testing.T) {
	tr, g := gated(t)
	tr.user, tr.pass = "alice", "alice-pw"
	d := tr.pushBlob(t, "p/app", []byte("layer"))
	body, _ := tr.image(t, "p/app", []byte("layer2"))
	want(t, "alice pushes", tr.putManifest(t, "p/app", "v1", body, registry.MediaTypeOCIManifest), http.StatusCreated, "")
	tr.pushBlob(t, "pub/app", []byte("public layer"))
	if ev := tr.notices.list("pushed"); len(ev) != 1 || ev[0].User != "alice" || ev[0].Repository != "p/app" {
		t.Errorf("pushed events: %+v", ev)
	}

	tr.user, tr.pass = "bob", "bob-pw"
	want(t, "bob pulls", tr.do(t, "GET", "/v2/p/app/blobs/"+d, nil), http.StatusOK, "")
	want(t, "bob pushes", tr.do(t, "POST", "/v2/p/app/blobs/uploads/", nil), http.StatusForbidden, "DENIED")
	want(t, "bob deletes", tr.do(t, "DELETE", "/v2/p/app/manifests/v1", nil), http.StatusForbidden, "DENIED")
	want(t, "bob's catalog", tr.do(t, "GET", "/v2/_catalog", nil), http.StatusForbidden, "DENIED")

	tr.user = ""
	r := tr.do(t, "POST", "/v2/p/app/blobs/uploads/", nil)
	want(t, "anonymous push", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="repository:p/app:pull,push"`) {
		t.Errorf("challenge %q", ch)
	}
	want(t, "anonymous pull of a public project", tr.do(t, "GET", "/v2/pub/app/tags/list", nil), http.StatusOK, "")
	want(t, "anonymous pull of a private project", tr.do(t, "GET", "/v2/p/app/blobs/"+d, nil), http.StatusUnauthorized, "UNAUTHORIZED")

	// A repository outside any project, or in a project that does not
	// exist, is named in the answer.
	tr.user, tr.pass = "alice", "alice-pw"
	r = tr.do(t, "POST", "/v2/alpine/blobs/uploads/", nil)
	want(t, "no project", r, http.StatusBadRequest, "NAME_INVALID")
	r = tr.do(t, "POST", "/v2/nope/app/blobs/uploads/", nil)
	want(t, "unknown project", r, http.StatusNotFound, "NAME_UNKNOWN")
	if !strings.Contains(string(r.body), "project nope not found") {
		t.Errorf("unknown project answer: %s", r.body)
	}

	// A token carries exactly its scopes: one repository's never opens
	// another's.
	tr.user = ""
	g.tokens["tok"] = registry.Subject{Name: "alice", Token: true, Access: []registry.Scope{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}}}
	tr.bearer = "tok"
	want(t, "token's repository", tr.do(t, "GET", "/v2/pub/app/tags/list", nil), http.StatusOK, "")
	r = tr.do(t, "GET", "/v2/p/app/blobs/"+d, nil)
	want(t, "another repository with the token", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
		t.Errorf("challenge %q", ch)
	}
	want(t, "push with a pull token", tr.do(t, "POST", "/v2/pub/app/blobs/uploads/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	want(t, "token for an unknown project", tr.do(t, "GET", "/v2/nope/app/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")

	// The catalog lists what the caller may pull.
	tr.bearer = ""
	tr.user, tr.pass = "admin", "admin-pw"
	r = tr.do(t, "GET", "/v2/_catalog", nil)
	want(t, "admin's catalog", r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"p/app"`) || strings.Contains(string(r.body), `"pub/app"`) {
		t.Errorf("catalog %s", r.body)
	}
}

func TestGatePolicies(t *testing.T) {
	tr, g := gated(t)
	tr.user, tr.pass = "alice", "alice-pw"
	body, _ := tr.image(t, "p/app", []byte("layer"))
	want(t, "push", tr.putManifest(t, "p/app", "v1", body, registry.MediaTypeOCIManifest), http.StatusCreated, "")

	g.refuse["blob"] = errdefs.Denied(errors.New("quota exceeded in project p"))
	r := tr.do(t, "POST", "/v2/p/app/blobs/uploads/?digest="+digestOf([]byte("x")), []byte("x"))
	want(t, "blob over quota", r, http.StatusForbidden, "DENIED")
	if !strings.Contains(string(r.body), "quota exceeded") {
		t.Errorf("quota refusal: %s", r.body)
	}
	g.refuse["push"] = errdefs.Denied(errors.New("tag v1 is immutable"))
	want(t, "push refused", tr.putManifest(t, "p/app", "v1", body, registry.MediaTypeOCIManifest), http.StatusForbidden, "DENIED")
	g.refuse["pull"] = errdefs.Denied(errors.New("not signed"))
	r = tr.do(t, "GET", "/v2/p/app/manifests/v1", nil)
	want(t, "pull refused", r, http.StatusForbidden, "DENIED")
	if r.header.Get("Docker-Content-Digest") != "" {
		t.Error("a refused pull answers the digest")
	}
	g.refuse["pull"] = nil
	want(t, "pull", tr.do(t, "GET", "/v2/p/app/manifests/v1", nil), http.StatusOK, "")
	if ev := tr.notices.list("pulled"); len(ev) != 1 || ev[0].Tags[0] != "v1" || ev[0].User != "alice" {
		t.Errorf("pulled events: %+v", ev)
	}
	g.refuse["delete"] = errdefs.Denied(errors.New("immutable"))
	want(t, "delete refused", tr.do(t, "DELETE", "/v2/p/app/manifests/v1", nil), http.StatusForbidden, "DENIED")
	g.refuse["delete"] = nil
	want(t, "delete tag", tr.do(t, "DELETE", "/v2/p/app/manifests/v1", nil), http.StatusAccepted, "")
	if ev := tr.notices.list("deleted"); len(ev) != 1 || ev[0].Tags[0] != "v1" {
		t.Errorf("deleted events: %+v", ev)
	}
}
