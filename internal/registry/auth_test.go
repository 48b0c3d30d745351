package registry_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/registry"
)

func htpasswd(t testing.TB, users ...string) []byte {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(users); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(users[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(users[i] + ":" + string(h) + "\n")
	}
	return []byte(b.String())
}

func authRegistry(t *testing.T, c registry.AuthConfig) *testRegistry {
	t.Helper()
	if c.Htpasswd == nil {
		c.Htpasswd = htpasswd(t, "alice", "alice-pw", "bob", "bob-pw")
	}
	a, err := registry.NewAuth(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newRegistry(t, registry.WithAuth(a))
}

func TestBasicAuth(t *testing.T) {
	tr := authRegistry(t, registry.AuthConfig{})
	r := tr.do(t, "GET", "/v2/", nil)
	want(t, "anonymous /v2/", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="lading"` {
		t.Errorf("challenge %q", got)
	}
	want(t, "anonymous pull", tr.do(t, "GET", "/v2/a/tags/list", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "alice", "wrong"
	want(t, "wrong password", tr.do(t, "GET", "/v2/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "nobody", "alice-pw"
	want(t, "unknown user", tr.do(t, "GET", "/v2/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "alice", "alice-pw"
	want(t, "good password", tr.do(t, "GET", "/v2/", nil), http.StatusOK, "")
	d := tr.pushBlob(t, "a", []byte("hi"))
	want(t, "pull", tr.do(t, "GET", "/v2/a/blobs/"+d, nil), http.StatusOK, "")
	if !strings.Contains(tr.logs.String(), `"user":"alice"`) {
		t.Error("access log lacks the user")
	}
}

func TestAnonymousReadAndRules(t *testing.T) {
	tr := authRegistry(t, registry.AuthConfig{
		AnonymousRead: true,
		Rules: []registry.AccessRule{
			{Users: []string{"alice"}, Repositories: []string{"alice/**"}, Actions: []string{"pull", "push", "delete"}},
			{Users: []string{"*"}, Repositories: []string{"**"}, Actions: []string{"pull"}},
		},
	})
	tr.user, tr.pass = "alice", "alice-pw"
	d := tr.pushBlob(t, "alice/app", []byte("hi"))
	tr.user = ""
	want(t, "anonymous pull", tr.do(t, "GET", "/v2/alice/app/blobs/"+d, nil), http.StatusOK, "")
	want(t, "anonymous catalog", tr.do(t, "GET", "/v2/_catalog", nil), http.StatusOK, "")
	r := tr.do(t, "POST", "/v2/alice/app/blobs/uploads/", nil)
	want(t, "anonymous push", r, http.StatusUnauthorized, "UNAUTHORIZED")
	want(t, "anonymous delete", tr.do(t, "DELETE", "/v2/alice/app/blobs/"+d, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "bob", "bob-pw"
	want(t, "bob pulls", tr.do(t, "GET", "/v2/alice/app/blobs/"+d, nil), http.StatusOK, "")
	want(t, "bob pushes elsewhere's", tr.do(t, "POST", "/v2/alice/app/blobs/uploads/", nil), http.StatusForbidden, "DENIED")
	want(t, "bob pushes anywhere", tr.do(t, "POST", "/v2/bob/app/blobs/uploads/", nil), http.StatusForbidden, "DENIED")
	// Mounting needs pull on the source: bob may pull alice/app but not
	// push to alice/other.
	tr.user, tr.pass = "alice", "alice-pw"
	want(t, "alice mounts", tr.do(t, "POST", "/v2/alice/other/blobs/uploads/?mount="+d+"&from=alice/app", nil), http.StatusCreated, "")
}

// token fetches a token the way Docker clients do, following the challenge.
func token(t *testing.T, tr *testRegistry, user, pass string, challenge string) (string, int) {
	t.Helper()
	params := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		params[m[1]] = m[2]
	}
	u, err := url.Parse(params["realm"])
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"service": {params["service"]}}
	if params["scope"] != "" {
		q.Set("scope", params["scope"])
	}
	u.RawQuery = q.Encode()
	req, _ := http.NewRequest("GET", u.String(), nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode == http.StatusOK && (tok.Token == "" || tok.Token != tok.AccessToken || tok.ExpiresIn <= 0) {
		t.Errorf("token response %+v", tok)
	}
	return tok.Token, resp.StatusCode
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

func TestTokenFlow(t *testing.T) {
	tr := authRegistry(t, registry.AuthConfig{Token: &registry.TokenConfig{}, AnonymousRead: true})
	r := tr.do(t, "GET", "/v2/", nil)
	want(t, "anonymous /v2/", r, http.StatusUnauthorized, "")
	ch := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, `Bearer realm="`+tr.url+`/auth/token",service="lading"`) {
		t.Fatalf("challenge %q", ch)
	}
	// A push: the challenge names the scope.
	r = tr.do(t, "POST", "/v2/team/app/blobs/uploads/", nil)
	want(t, "anonymous push", r, http.StatusUnauthorized, "UNAUTHORIZED")
	ch = r.header.Get("WWW-Authenticate")
	if !strings.Contains(ch, `scope="repository:team/app:pull,push"`) {
		t.Fatalf("push challenge %q", ch)
	}
	if _, status := token(t, tr, "alice", "wrong", ch); status != http.StatusUnauthorized {
		t.Errorf("token with a wrong password: %d", status)
	}
	tok, status := token(t, tr, "alice", "alice-pw", ch)
	if status != http.StatusOK {
		t.Fatalf("token: %d", status)
	}
	tr.bearer = tok
	d := tr.pushBlob(t, "team/app", []byte("data"))
	want(t, "pull with the push token", tr.do(t, "GET", "/v2/team/app/blobs/"+d, nil), http.StatusOK, "")
	// The token is scoped: another repository needs another token.
	r = tr.do(t, "POST", "/v2/team/other/blobs/uploads/", nil)
	want(t, "push elsewhere", r, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("challenge %q", r.header.Get("WWW-Authenticate"))
	}
	want(t, "delete without a delete scope", tr.do(t, "DELETE", "/v2/team/app/blobs/"+d, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	// Anonymous token: pull only.
	tr.bearer = ""
	anon, status := token(t, tr, "", "", `Bearer realm="`+tr.url+`/auth/token",service="lading",scope="repository:team/app:pull,push"`)
	if status != http.StatusOK {
		t.Fatalf("anonymous token: %d", status)
	}
	tr.bearer = anon
	want(t, "anonymous token pulls", tr.do(t, "GET", "/v2/team/app/blobs/"+d, nil), http.StatusOK, "")
	want(t, "anonymous token pushes", tr.do(t, "POST", "/v2/team/app/blobs/uploads/", nil), http.StatusUnauthorized, "")
	// A forged token.
	tr.bearer = tok[:len(tok)-4] + "AAAA"
	want(t, "forged token", tr.do(t, "GET", "/v2/team/app/blobs/"+d, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	// In token mode the API takes tokens only: basic credentials, even
	// good ones, get the challenge that sends the client to the token
	// endpoint (without an error, so it follows it).
	tr.bearer = ""
	tr.user, tr.pass = "bob", "bob-pw"
	for _, path := range []string{"/v2/", "/v2/team/app/blobs/" + d, "/v2/_catalog"} {
		r := tr.do(t, "GET", path, nil)
		want(t, "basic in token mode: "+path, r, http.StatusUnauthorized, "UNAUTHORIZED")
		ch := r.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, `Bearer realm="`+tr.url+`/auth/token"`) || strings.Contains(ch, "error=") {
			t.Errorf("basic in token mode: %s: challenge %q", path, ch)
		}
	}
	// Catalog scope.
	tr.user = ""
	tok, _ = token(t, tr, "alice", "alice-pw", `Bearer realm="`+tr.url+`/auth/token",service="lading",scope="registry:catalog:*"`)
	tr.bearer = tok
	want(t, "catalog with a catalog token", tr.do(t, "GET", "/v2/_catalog", nil), http.StatusOK, "")
}

func TestTokenEndpoint(t *testing.T) {
	tr := authRegistry(t, registry.AuthConfig{Token: &registry.TokenConfig{Service: "reg"}})
	get := func(q string, user, pass string) int {
		req, _ := http.NewRequest("GET", tr.url+"/auth/token"+q, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := tr.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for q, st := range map[string]int{
		"?service=reg&scope=repository:a:pull":                            200,
		"?service=reg&scope=repository:a:pull&scope=repository:b:push":    200,
		"?service=reg&scope=repository:a:pull%20repository:b:pull":        200,
		"?service=other&scope=repository:a:pull":                          400,
		"?service=reg&scope=nonsense":                                     400,
		"?service=reg&scope=repository:..%2Fetc:pull":                     200, // granted nothing
		"?service=reg" + strings.Repeat("&scope=repository:a:pull", 100):  200,
		"?service=reg&scope=" + strings.Repeat("repository:a:pull,", 100): 400, // one scope, too long
	} {
		if got := get(q, "alice", "alice-pw"); got != st {
			t.Errorf("GET %s: %d, want %d", q, got, st)
		}
	}
	// OAuth2 password grant.
	resp, err := tr.client.PostForm(tr.url+"/auth/token", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"},
		"service": {"reg"}, "scope": {"repository:a:pull"}, "client_id": {"test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.AccessToken == "" || body.Scope != "repository:a:pull" {
		t.Errorf("password grant: %d %+v", resp.StatusCode, body)
	}
	resp, _ = tr.client.PostForm(tr.url+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("refresh grant: %d", resp.StatusCode)
	}
	resp, _ = tr.client.PostForm(tr.url+"/auth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}})
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("bad password grant: %d", resp.StatusCode)
	}
}

// Reloading the htpasswd file takes effect at the next request, also for a
// user whose good login was remembered; a file that does not parse changes
// nothing.
func TestReloadHtpasswd(t *testing.T) {
	a, err := registry.NewAuth(registry.AuthConfig{Htpasswd: htpasswd(t, "alice", "alice-pw", "carol", "carol-pw")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := newRegistry(t, registry.WithAuth(a))
	tr.user, tr.pass = "alice", "alice-pw"
	want(t, "alice", tr.do(t, "GET", "/v2/", nil), http.StatusOK, "")
	ch, err := a.ReloadHtpasswd(htpasswd(t, "bob", "bob-pw", "carol", "new-pw"))
	if err != nil {
		t.Fatal(err)
	}
	if got, wantCh := ch, (registry.HtpasswdChange{Users: 2, Added: 1, Removed: 1, Changed: 1}); got != wantCh {
		t.Errorf("change %+v, want %+v", got, wantCh)
	}
	if s := ch.String(); s != "2 users (+1 -1, 1 changed)" {
		t.Errorf("change reads %q", s)
	}
	want(t, "alice, remembered, after her removal", tr.do(t, "GET", "/v2/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "carol", "carol-pw"
	want(t, "carol's old password", tr.do(t, "GET", "/v2/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	tr.user, tr.pass = "bob", "bob-pw"
	want(t, "bob", tr.do(t, "GET", "/v2/", nil), http.StatusOK, "")
	if _, err := a.ReloadHtpasswd([]byte("no hash here\n")); err == nil {
		t.Error("a bad file reloaded")
	}
	if a.Users() != 2 {
		t.Errorf("%d users after a bad reload", a.Users())
	}
	want(t, "bob after a bad reload", tr.do(t, "GET", "/v2/", nil), http.StatusOK, "")
}
