package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/scanning"
)

// testServer is a running lading serve with the web UI.
type testServer struct {
	*server.Server
	URL, Host string
	Logs      *harbortest.Buffer
}

// start starts lading serve (registry, API and UI on one loopback port)
// with an analyzer for artifact pages (nil: none).
func start(t testing.TB, an inspect.Analyzer, opts ...func(*server.Config)) *testServer {
	t.Helper()
	var cfg server.Config
	cfg.Auth.AdminPassword = harbortest.AdminPassword
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Defaults(t.TempDir())
	logs := &harbortest.Buffer{}
	srv, err := server.Open(context.Background(), cfg, server.Options{Log: slog.New(slog.NewJSONHandler(logs, nil)), AccessLog: logs, Version: "test", Analyzer: an})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	// Registry-side scanning, as lading serve attaches it, when the
	// configuration names a vulnerability database (withScanning).
	var sc *scanning.Service
	if cfg.Scan.DB != "" {
		sc, err = scanning.Attach(context.Background(), srv, scanning.Options{Log: slog.New(slog.NewJSONHandler(logs, nil)), Version: "test", RegistryURL: "http://" + l.Addr().String()})
		if err != nil {
			l.Close()
			srv.Close()
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if sc != nil {
			sc.Close()
		}
		srv.Close()
	})
	return &testServer{Server: srv, URL: "http://" + l.Addr().String(), Host: l.Addr().String(), Logs: logs}
}

// withScanning attaches registry-side scanning over the vulnerability
// database file db, with a quick job poll.
func withScanning(db string) func(*server.Config) {
	return func(c *server.Config) {
		c.Scan.DB = db
		c.Jobs.Poll = 50 * time.Millisecond
	}
}

// admin is the administrator as the services see them.
func (s *testServer) admin(t testing.TB) access.Subject {
	t.Helper()
	who, err := s.Core.Identity.Login(context.Background(), "admin", harbortest.AdminPassword, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return who
}

// push pushes img to repo:tag as user through the token flow.
func (s *testServer) push(t testing.TB, img v1.Image, repo, tag, user, password string) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(s.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// browser is an HTTP client with cookies that reads CSRF tokens from the
// pages it gets, as a browser without JavaScript would use the UI.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// get fetches path and returns the status and body; it remembers the
// page's CSRF token.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

// post submits a form with the remembered CSRF token (unless the form
// sets _csrf itself) and returns the status and the redirect target or
// body.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", b.csrf)
	}
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, string(body)
}

// login logs in through the form.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.get("/login")
	st, loc := b.post("/login", url.Values{"principal": {user}, "password": {password}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, "/") {
		b.t.Fatalf("login as %s: %d %.300s", user, st, loc)
	}
}
