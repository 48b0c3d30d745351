package registry

import (
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/errdefs"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
		ok   bool
	}{
		{"repository:library/alpine:pull", Scope{"repository", "library/alpine", []string{"pull"}}, true},
		{"repository:a/b:pull,push", Scope{"repository", "a/b", []string{"pull", "push"}}, true},
		{"repository:a:pull,pull,,push", Scope{"repository", "a", []string{"pull", "push"}}, true},
		{"registry:catalog:*", Scope{"registry", "catalog", []string{"*"}}, true},
		{"repository:localhost:5000/a:pull", Scope{"repository", "localhost:5000/a", []string{"pull"}}, true},
		{"repository:a:", Scope{"repository", "a", nil}, true},
		{"repository:a", Scope{}, false},
		{"repository", Scope{}, false},
		{":a:pull", Scope{}, false},
		{"repository::pull", Scope{}, false},
		{"", Scope{}, false},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseScope(%q) error %v", tt.in, err)
			continue
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseScope(%q): error of no class", tt.in)
		}
		if diff := cmp.Diff(tt.want, got); tt.ok && diff != "" {
			t.Errorf("ParseScope(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:a/b:pull,push", "registry:catalog:*", "a:b:c:d", ":::", "repository:x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		if sc.Type == "" || sc.Name == "" || strings.Contains(sc.Type, ":") {
			t.Fatalf("ParseScope(%q) = %+v", s, sc)
		}
		again, err := ParseScope(sc.String())
		if err != nil || again.Type != sc.Type || again.Name != sc.Name || len(again.Actions) != len(sc.Actions) {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func testIssuer(t testing.TB) *tokenIssuer {
	t.Helper()
	ti, err := newTokenIssuer(TokenConfig{Key: []byte(strings.Repeat("k", 32)), TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func TestTokens(t *testing.T) {
	ti := testIssuer(t)
	access := []Scope{{Type: "repository", Name: "a/b", Actions: []string{"pull"}}}
	tok, _ := ti.issue("alice", access)
	cl, err := ti.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "alice" || cl.Audience != "lading" || !cmp.Equal(cl.Access, access) {
		t.Errorf("claims %+v", cl)
	}
	parts := strings.Split(tok, ".")
	forged := func(header, payload string) string {
		in := header + "." + payload
		return in + "." + ti.sign(in)
	}
	otherKey, _ := newTokenIssuer(TokenConfig{Key: []byte(strings.Repeat("x", 32))})
	otherTok, _ := otherKey.issue("alice", access)
	otherService, _ := newTokenIssuer(TokenConfig{Key: ti.key, Service: "other"})
	otherSvcTok, _ := otherService.issue("alice", access)
	b64 := base64.RawURLEncoding.EncodeToString
	bad := map[string]string{
		"empty":               "",
		"two parts":           parts[0] + "." + parts[1],
		"tampered payload":    parts[0] + "." + b64([]byte(`{"iss":"lading","sub":"root","aud":"lading","exp":9999999999,"access":[{"type":"repository","name":"a/b","actions":["push"]}]}`)) + "." + parts[2],
		"alg none":            b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"other header signed": forged(b64([]byte(`{"alg":"HS512"}`)), parts[1]),
		"other key":           otherTok,
		"other service":       otherSvcTok,
		"garbage payload":     forged(tokenHeader, "!!!"),
		"not JSON":            forged(tokenHeader, b64([]byte("nope"))),
		"wrong issuer":        forged(tokenHeader, b64([]byte(`{"iss":"x","aud":"lading","exp":9999999999}`))),
	}
	for name, tok := range bad {
		if _, err := ti.verify(tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Expiry, with the leeway.
	ti.now = func() time.Time { return time.Now().Add(time.Minute + 2*tokenLeeway) }
	if _, err := ti.verify(tok); err == nil {
		t.Error("expired token accepted")
	}
	if _, err := newTokenIssuer(TokenConfig{Key: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
}

func FuzzVerifyToken(f *testing.F) {
	ti := testIssuer(f)
	tok, _ := ti.issue("u", []Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}})
	f.Add(tok)
	f.Add("a.b.c")
	f.Add(tokenHeader + "..")
	f.Fuzz(func(t *testing.T, s string) {
		cl, err := ti.verify(s)
		if err == nil && s != tok {
			// Only tokens signed with the key can pass; a fuzzer
			// cannot forge HMAC-SHA256, so anything else that
			// passes is a bug.
			t.Fatalf("accepted %q: %+v", s, cl)
		}
	})
}

func TestHtpasswd(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	file := "# comment\n\nalice:" + string(h) + "\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\ncarol:$apr1$abc$def\n"
	users, err := parseHtpasswd([]byte(file), nil2log())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users["alice"] == nil {
		t.Errorf("users %v: only the bcrypt entry should be kept", users)
	}
	for _, bad := range []string{"nocolon\n", ":" + string(h) + "\n", "dave:$2y$10$short\n"} {
		if _, err := parseHtpasswd([]byte(bad), nil2log()); err == nil {
			t.Errorf("parseHtpasswd(%q) accepted", bad)
		}
	}
	a, err := NewAuth(AuthConfig{Htpasswd: []byte(file)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.login("alice", "secret") || !a.login("alice", "secret") {
		t.Error("good password refused")
	}
	if a.login("alice", "wrong") || a.login("bob", "password") || a.login("nobody", "secret") {
		t.Error("bad login accepted")
	}
}

// An htpasswd file from Apache's own tool ($2y$ bcrypt, and an MD5 entry
// that is refused).
func TestApacheHtpasswd(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "htpasswd"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuth(AuthConfig{Htpasswd: b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.login("alice", "secret") || a.login("alice", "Secret") || a.login("bob", "secret") {
		t.Error("logins with Apache's htpasswd entries")
	}
}

func TestAccessRules(t *testing.T) {
	a, err := NewAuth(AuthConfig{Rules: []AccessRule{
		{Users: []string{"*"}, Repositories: []string{"public/*"}, Actions: []string{"pull"}},
		{Users: []string{"ci"}, Repositories: []string{"team/**"}, Actions: []string{"pull", "push"}},
		{Users: []string{"admin"}, Repositories: []string{"**"}, Actions: []string{"*"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, repo, action string
		want               bool
	}{
		{"someone", "public/app", "pull", true},
		{"someone", "public/app", "push", false},
		{"someone", "public/a/b", "pull", false},
		{"ci", "team/app", "push", true},
		{"ci", "team/x/y", "pull", true},
		{"ci", "team", "pull", true},
		{"ci", "teamx/app", "pull", false},
		{"ci", "team/app", "delete", false},
		{"admin", "any/thing", "delete", true},
	}
	for _, tt := range tests {
		if got := a.may(principal{user: tt.user}, tt.repo, tt.action); got != tt.want {
			t.Errorf("%s %s %s = %v", tt.user, tt.action, tt.repo, got)
		}
	}
	if a.may(principal{anonymous: true}, "public/app", "pull") {
		t.Error("anonymous pull without anonymous_read")
	}
	if _, err := NewAuth(AuthConfig{Rules: []AccessRule{{Actions: []string{"write"}}}}, nil); err == nil {
		t.Error("unknown action accepted")
	}
	if _, err := NewAuth(AuthConfig{Rules: []AccessRule{{Repositories: []string{"["}, Actions: []string{"pull"}}}}, nil); err == nil {
		t.Error("bad pattern accepted")
	}
}

func nil2log() *slog.Logger { return slog.New(slog.DiscardHandler) }
