package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/oidctest"
)

// oidcWorld is a lading serve in oidc_auth with a real OpenID Provider.
type oidcWorld struct {
	op    *oidctest.Server
	srv   *harbortest.Server
	admin *client
}

const (
	clientID     = "lading"
	clientSecret = "lading-client-secret"
)

func startOIDCWorld(t testing.TB) *oidcWorld {
	return startOIDCServer(t, oidctest.Start(t,
		oidctest.User{ID: "u-alice", Username: "alice", Password: "alice-pw", Name: "Alice", Email: "alice@example.org", Groups: []string{"devs", "admins"}},
		oidctest.User{ID: "u-bob", Username: "bob", Password: "bob-pw", Name: "Bob", Email: "bob@example.org", Groups: []string{"devs"}},
		oidctest.User{ID: "u-carol", Username: "carol", Password: "carol-pw", Name: "Carol", Email: "carol@example.org"},
		oidctest.User{ID: "u-dave", Username: "dave", Password: "dave-pw", Name: "Dave", Email: "dave@example.org"},
	))
}

// startOIDCServer starts lading in oidc_auth with op.
func startOIDCServer(t testing.TB, op *oidctest.Server) *oidcWorld {
	srv := harbortest.Start(t, harbortest.WithCAFile(writeCA(t, op.CA.PEM)))
	op.Client(clientID, clientSecret, srv.URL+"/c/oidc/callback")
	w := &oidcWorld{op: op, srv: srv, admin: newClient(t, srv, "admin", harbortest.AdminPassword)}
	w.admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{
		"auth_mode": "oidc_auth", "oidc_name": "test", "oidc_endpoint": op.URL, "oidc_client_id": clientID, "oidc_client_secret": clientSecret,
		"oidc_scope": "openid,profile,email,offline_access", "oidc_groups_claim": "groups", "oidc_admin_group": "admins",
		"oidc_user_claim": "preferred_username", "oidc_verify_cert": true, "oidc_auto_onboard": true,
	})
	return w
}

// login goes through the provider as user and follows the callback; it
// returns the callback's response and a client with the session.
func (w *oidcWorld) login(t testing.TB, user, pass string) (*http.Response, *client) {
	b := w.op.Browser()
	cb := w.op.Authorize(t, b, w.srv.URL+"/c/oidc/login?redirect_url=/harbor/projects", user, pass)
	resp := browse(t, b, cb.String())
	c := newClient(t, w.srv, "", "")
	c.hc = b
	return resp, c
}

func browse(t testing.TB, b *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

type userResp struct {
	UserID          int64  `json:"user_id"`
	Username        string `json:"username"`
	Email           string `json:"email"`
	SysadminFlag    bool   `json:"sysadmin_flag"`
	AdminRoleInAuth bool   `json:"admin_role_in_auth"`
	OIDCUserMeta    *struct {
		SubIss string `json:"subiss"`
		Secret string `json:"secret"`
	} `json:"oidc_user_meta"`
}

func (w *oidcWorld) userCount(t testing.TB) int {
	n, err := w.srv.Core.Identity.CountUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestOIDCEndToEnd: the authorization-code flow through a real provider,
// groups and the admin group, the CLI secret as a password for the token
// service, registry clients and the API, the provider's changes at the
// next token.
func TestOIDCEndToEnd(t *testing.T) {
	w := startOIDCWorld(t)
	srv, admin := w.srv, w.admin
	cfg := decode[map[string]any](t, admin.must(200, "GET", "/api/v2.0/configurations", nil))
	if _, ok := cfg["oidc_client_secret"]; ok {
		t.Error("GET /configurations returns oidc_client_secret")
	}

	resp, alice := w.login(t, "alice", "alice-pw")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/harbor/projects" {
		t.Fatalf("callback: %s to %q", resp.Status, loc)
	}
	me := decode[userResp](t, alice.must(200, "GET", "/api/v2.0/users/current", nil))
	if me.Username != "alice" || me.Email != "alice@example.org" || !me.AdminRoleInAuth || me.OIDCUserMeta == nil || me.OIDCUserMeta.Secret == "" ||
		me.OIDCUserMeta.SubIss != "u-alice"+w.op.URL {
		t.Fatalf("alice: %+v %+v", me, me.OIDCUserMeta)
	}
	secret := me.OIDCUserMeta.Secret
	// Others do not see the secret, not even an administrator.
	if u := decode[userResp](t, admin.must(200, "GET", "/api/v2.0/users/"+strconv.FormatInt(me.UserID, 10), nil)); u.OIDCUserMeta == nil || u.OIDCUserMeta.Secret != "" {
		t.Errorf("alice seen by the administrator: %+v", u.OIDCUserMeta)
	}

	// Bob: a developer through the OIDC group devs, a project member.
	_, bobWeb := w.login(t, "bob", "bob-pw")
	bob := decode[userResp](t, bobWeb.must(200, "GET", "/api/v2.0/users/current", nil))
	admin.must(201, "POST", "/api/v2.0/projects", map[string]any{"project_name": "team", "metadata": map[string]string{"public": "false"}})
	admin.must(201, "POST", "/api/v2.0/projects/team/members", map[string]any{"role_id": 2, "member_group": map[string]any{"group_name": "devs", "group_type": 3}})
	bobSecret := bob.OIDCUserMeta.Secret
	for _, tc := range []struct {
		user, pass string
		status     int
		want       []string
	}{
		{"bob", bobSecret, 200, []string{"pull", "push"}},
		{"alice", secret, 200, []string{"pull", "push"}},
		{"bob", "bob-pw", 401, nil}, // the provider's password is not lading's
		{"bob", secret, 401, nil},
		{"bob", "", 401, nil},
	} {
		st, acts, msg := token(t, srv, tc.user, tc.pass, "repository:team/app:pull,push")
		slices.Sort(acts)
		if st != tc.status || !slices.Equal(acts, tc.want) {
			t.Errorf("token for %s: %d %v %s, want %d %v", tc.user, st, acts, msg, tc.status, tc.want)
		}
	}
	if err := srv.Push(context.Background(), harbortest.Image(t), "team/app", "v1", "bob", bobSecret); err != nil {
		t.Errorf("bob pushes with his CLI secret: %v", err)
	}
	newClient(t, srv, "bob", bobSecret).must(200, "GET", "/api/v2.0/projects/team", nil)

	// The CLI secret: set by its owner (session + CSRF), by an
	// administrator; not by others; only the password rule's secrets.
	bobID := strconv.FormatInt(bob.UserID, 10)
	bobWeb.must(200, "GET", "/api/v2.0/users/current", nil) // the CSRF token
	bobWeb.must(200, "PUT", "/api/v2.0/users/"+bobID+"/cli_secret", map[string]string{"secret": "Bob-New-Secret1"})
	bobWeb.must(400, "PUT", "/api/v2.0/users/"+bobID+"/cli_secret", map[string]string{"secret": "weak"})
	if st, _, _ := token(t, srv, "bob", bobSecret, "repository:team/app:pull"); st != 401 {
		t.Errorf("bob's old secret: %d", st)
	}
	if st, _, _ := token(t, srv, "bob", "Bob-New-Secret1", "repository:team/app:pull"); st != 200 {
		t.Errorf("bob's new secret: %d", st)
	}
	_, carolWeb := w.login(t, "carol", "carol-pw")
	carolWeb.must(200, "GET", "/api/v2.0/users/current", nil)
	carolWeb.must(403, "PUT", "/api/v2.0/users/"+bobID+"/cli_secret", map[string]string{"secret": "Carol-Sets-Bob1"})
	admin.must(200, "PUT", "/api/v2.0/users/"+bobID+"/cli_secret", map[string]string{"secret": "Admin-Sets-Bob1"})
	bobSecret = "Admin-Sets-Bob1"

	// The provider changes bob's groups: the next token follows.
	w.op.SetGroups("u-bob")
	if st, acts, _ := token(t, srv, "bob", bobSecret, "repository:team/app:pull,push"); st != 200 || len(acts) != 0 {
		t.Errorf("bob out of devs: %d %v", st, acts)
	}
	// Expired tokens are refreshed with the provider.
	srv.Core.OIDC.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	if st, acts, msg := token(t, srv, "alice", secret, "repository:team/app:push"); st != 200 || len(acts) != 1 {
		t.Errorf("alice after her tokens expired: %d %v %s", st, acts, msg)
	}
	srv.Core.OIDC.SetClock(time.Now)
	// The provider disables bob: the next token is refused, his groups go.
	w.op.SetGroups("u-bob", "devs")
	w.op.Disable("u-bob")
	if st, _, msg := token(t, srv, "bob", bobSecret, "repository:team/app:pull"); st != 401 {
		t.Errorf("bob disabled at the provider: %d %s", st, msg)
	}
	if s, _ := srv.Core.Identity.SubjectByName(context.Background(), "bob"); len(s.Groups) != 0 {
		t.Errorf("bob, disabled, keeps groups %v", s.Groups)
	}

	// The auth mode is fixed now.
	admin.must(400, "PUT", "/api/v2.0/configurations", map[string]any{"auth_mode": "db_auth"})
}

// TestOIDCBadCallbacks: a wrong state, a replayed callback, a replayed
// code, ID tokens for another audience, signed by another key, with
// another nonce, expired: each refused with a clear error, no account
// created.
func TestOIDCBadCallbacks(t *testing.T) {
	w := startOIDCWorld(t)
	users := w.userCount(t)
	start := w.srv.URL + "/c/oidc/login?redirect_url=/"
	refused := func(name string, resp *http.Response, want int, say string, body string) {
		t.Helper()
		if resp.StatusCode != want || !strings.Contains(body, say) {
			t.Errorf("%s: %s %s, want %d saying %q", name, resp.Status, body, want, say)
		}
		if n := w.userCount(t); n != users {
			t.Errorf("%s: %d users, want %d: an account was created", name, n, users)
		}
	}
	call := func(b *http.Client, u string) (*http.Response, string) {
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	b := w.op.Browser()
	cb := w.op.Authorize(t, b, start, "carol", "carol-pw")
	bad := *cb
	q := bad.Query()
	q.Set("state", "forged")
	bad.RawQuery = q.Encode()
	resp, body := call(b, bad.String())
	refused("wrong state", resp, 400, "state mismatch", body)
	resp, body = call(b, cb.String())
	refused("the callback replayed after its state was burnt", resp, 400, "no OIDC login in progress", body)
	resp, body = call(w.op.Browser(), cb.String())
	refused("a callback from another browser", resp, 400, "login cookie is missing", body)

	// The code replayed in a fresh login: the provider refuses it.
	b2 := w.op.Browser()
	cb2 := w.op.Authorize(t, b2, start, "carol", "carol-pw")
	resp, _ = call(b2, cb2.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a good login: %s", resp.Status)
	}
	users = w.userCount(t)
	b3 := w.op.Browser()
	loginResp := browse(t, b3, start)
	authz, _ := url.Parse(loginResp.Header.Get("Location"))
	replay := *cb2
	q = replay.Query()
	q.Set("state", authz.Query().Get("state"))
	replay.RawQuery = q.Encode()
	resp, body = call(b3, replay.String())
	refused("a replayed code", resp, 401, "refused the code", body)

	for _, tc := range []struct {
		name   string
		tamper func(map[string]any) bool
		want   int
		say    string
		user   string
	}{
		{"another audience", func(c map[string]any) bool { c["aud"] = []string{"someone-else"}; return false }, 401, "audience", "dave"},
		{"another key", func(map[string]any) bool { return true }, 401, "signature", "dave"},
		{"another nonce", func(c map[string]any) bool { c["nonce"] = "replayed-nonce"; return false }, 401, "nonce", "dave"},
		{"expired", func(c map[string]any) bool {
			c["exp"] = json.Number(strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
			return false
		}, 401, "expired", "dave"},
		{"another issuer", func(c map[string]any) bool { c["iss"] = "https://evil.example"; return false }, 401, "issued by a different provider", "dave"},
	} {
		w.op.Tamper(tc.tamper)
		b := w.op.Browser()
		cb := w.op.Authorize(t, b, start, tc.user, tc.user+"-pw")
		resp, body := call(b, cb.String())
		refused(tc.name, resp, tc.want, tc.say, body)
		w.op.Tamper(nil)
	}

	// /system/oidc/ping names what is wrong.
	admin := w.admin
	admin.must(200, "POST", "/api/v2.0/system/oidc/ping", map[string]any{"url": w.op.URL, "verify_cert": true})
	other := httptest.NewTLSServer(http.NotFoundHandler())
	defer other.Close()
	for _, tc := range []struct {
		url    string
		verify bool
		say    string
	}{
		{other.URL, true, "unknown authority"},
		{other.URL, false, "OIDC discovery"},
		{"https://127.0.0.1:1", true, "connection refused"},
	} {
		st, out := admin.do("POST", "/api/v2.0/system/oidc/ping", map[string]any{"url": tc.url, "verify_cert": tc.verify})
		if st != 400 || !strings.Contains(string(out), tc.say) {
			t.Errorf("ping %s verify=%v: %d %s, want 400 saying %q", tc.url, tc.verify, st, out, tc.say)
		}
	}
}

// TestOIDCOnboard: without auto-onboarding, the user chooses a name.
func TestOIDCOnboard(t *testing.T) {
	w := startOIDCWorld(t)
	w.admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{"oidc_auto_onboard": false})
	b := w.op.Browser()
	cb := w.op.Authorize(t, b, w.srv.URL+"/c/oidc/login?redirect_url=/harbor", "dave", "dave-pw")
	resp := browse(t, b, cb.String())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/oidc-onboard" || loc.Query().Get("username") != "dave" {
		t.Fatalf("callback of a new user: %s %s", resp.Status, loc)
	}
	c := newClient(t, w.srv, "", "")
	c.hc = b
	c.must(400, "POST", "/c/oidc/onboard", map[string]string{"username": "bad,name"})
	// The pending login was used by the refused attempt: log in again.
	cb = w.op.Authorize(t, b, w.srv.URL+"/c/oidc/login?redirect_url=/harbor", "dave", "dave-pw")
	browse(t, b, cb.String())
	c.must(200, "POST", "/c/oidc/onboard", map[string]string{"username": "david"})
	if me := decode[userResp](t, c.must(200, "GET", "/api/v2.0/users/current", nil)); me.Username != "david" || me.OIDCUserMeta == nil {
		t.Errorf("onboarded: %+v", me)
	}
	// Logging in again finds him by subject, whatever his name.
	resp, again := w.login(t, "dave", "dave-pw")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("dave again: %s", resp.Status)
	}
	if me := decode[userResp](t, again.must(200, "GET", "/api/v2.0/users/current", nil)); me.Username != "david" {
		t.Errorf("dave's second login: %+v", me)
	}
}

// TestOIDCVerifyCert: a provider whose certificate lading does not trust
// is refused with the certificate problem named while oidc_verify_cert
// is on (the default), and the whole login works with it off.
func TestOIDCVerifyCert(t *testing.T) {
	op := oidctest.Start(t, oidctest.User{ID: "u-erin", Username: "erin", Password: "erin-pw", Name: "Erin", Email: "erin@example.org", Groups: []string{"devs"}})
	srv := harbortest.Start(t) // without the provider's CA
	op.Client(clientID, clientSecret, srv.URL+"/c/oidc/callback")
	admin := newClient(t, srv, "admin", harbortest.AdminPassword)
	admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{
		"auth_mode": "oidc_auth", "oidc_name": "test", "oidc_endpoint": op.URL, "oidc_client_id": clientID, "oidc_client_secret": clientSecret,
		"oidc_scope": "openid,profile,email,offline_access", "oidc_groups_claim": "groups", "oidc_user_claim": "preferred_username", "oidc_auto_onboard": true,
	})
	b := op.Browser()
	resp, err := b.Get(srv.URL + "/c/oidc/login?redirect_url=/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unknown authority") {
		t.Errorf("login with an untrusted provider: %s %s, want 503 naming the unknown authority", resp.Status, body)
	}
	if n, _ := srv.Core.Identity.CountUsers(context.Background()); n != 1 {
		t.Errorf("%d users, want only admin", n)
	}

	admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{"oidc_verify_cert": false})
	w := &oidcWorld{op: op, srv: srv, admin: admin}
	resp, erin := w.login(t, "erin", "erin-pw")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login with verification off: %s", resp.Status)
	}
	me := decode[userResp](t, erin.must(200, "GET", "/api/v2.0/users/current", nil))
	if me.Username != "erin" || me.OIDCUserMeta == nil {
		t.Fatalf("erin: %+v", me)
	}
	// The CLI secret asks the provider too, over the same connection rules.
	if st, _, msg := token(t, srv, "erin", me.OIDCUserMeta.Secret, "repository:library/x:pull"); st != 200 {
		t.Errorf("erin's CLI secret with verification off: %d %s", st, msg)
	}
	admin.must(200, "PUT", "/api/v2.0/configurations", map[string]any{"oidc_verify_cert": true})
	if st, _, msg := token(t, srv, "erin", me.OIDCUserMeta.Secret, "repository:library/x:pull"); st == 200 || !strings.Contains(msg, "unknown authority") {
		t.Errorf("erin's CLI secret with verification back on: %d %s, want a refusal naming the unknown authority", st, msg)
	}
}
