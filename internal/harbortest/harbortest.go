// Package harbortest starts a complete lading serve (the registry, the
// token service and Harbor's API on one loopback port) for tests, and
// talks to it the way Harbor's users do: with Harbor's own API client
// (github.com/goharbor/go-client) and with go-containerregistry's
// registry client, which speaks the Docker token flow.
package harbortest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/goharbor/go-client/pkg/harbor"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/scanning"
)

// AdminPassword is the administrator's password in servers started here.
const AdminPassword = "Harbor12345"

// Server is a running lading serve.
type Server struct {
	*server.Server
	// URL is "http://127.0.0.1:port"; Host is "127.0.0.1:port".
	URL, Host string
	// Logs holds the server's operational and access logs.
	Logs *Buffer
	// Scanning is registry-side scanning, as lading serve attaches it.
	Scanning *scanning.Service
	stop     func()
}

// Stop shuts the server down before the test ends (a restart on the
// same root, a lading that went away).
func (s *Server) Stop() { s.stop() }

// Buffer is a bytes.Buffer safe for concurrent writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Option changes the configuration or the options before the server
// opens.
type Option func(*settings)

type settings struct {
	cfg  server.Config
	opts server.Options
	scan scanning.Options
}

// WithDatabase uses a PostgreSQL database (a URL) instead of SQLite.
func WithDatabase(url string) Option { return func(s *settings) { s.cfg.Database.URL = url } }

// WithConfig changes the configuration with fn.
func WithConfig(fn func(*server.Config)) Option { return func(s *settings) { fn(&s.cfg) } }

// WithOptions changes the server's options with fn (events, policies).
func WithOptions(fn func(*server.Options)) Option { return func(s *settings) { fn(&s.opts) } }

// WithRoot uses a given lading root (two servers sharing storage).
func WithRoot(root string) Option { return func(s *settings) { s.cfg.Root = root } }

// WithScanning changes scanning's options with fn (the vulnerability
// database is scan.db of the configuration).
func WithScanning(fn func(*scanning.Options)) Option { return func(s *settings) { fn(&s.scan) } }

// WithCAFile trusts the PEM certificates of file for the LDAP directory
// and the OIDC provider (auth.ca_file).
func WithCAFile(file string) Option {
	return func(s *settings) { s.cfg.Auth.CAFile = file }
}

// Start starts a server that lives until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var st settings
	st.cfg.Auth.AdminPassword = AdminPassword
	logs := &Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	st.opts = server.Options{Log: log, AccessLog: logs, Version: "test"}
	for _, o := range opts {
		o(&st)
	}
	cfg, sopts := st.cfg, st.opts
	root := cfg.Root
	if root == "" {
		root = t.TempDir()
	}
	cfg.Defaults(root)
	srv, err := server.Open(context.Background(), cfg, sopts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	so := st.scan
	so.Log, so.Version = log, "test"
	if so.RegistryURL == "" {
		so.RegistryURL = url
	}
	sc, err := scanning.Attach(context.Background(), srv, so)
	if err != nil {
		l.Close()
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			sc.Close()
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return &Server{Server: srv, URL: url, Host: l.Addr().String(), Logs: logs, Scanning: sc, stop: stop}
}

// API returns Harbor's client for the server as user (anonymous when user
// is "").
func (s *Server) API(user, password string) *v2.HarborAPI {
	u, _ := url.Parse(s.URL + "/api/v2.0")
	var auth runtime.ClientAuthInfoWriter
	if user != "" {
		auth = httptransport.BasicAuth(user, password)
	}
	c := &harbor.Config{URL: u, Transport: http.DefaultTransport, AuthInfo: auth}
	return v2.New(c.ToV2Config())
}

// Admin returns Harbor's client as the administrator.
func (s *Server) Admin() *v2.HarborAPI { return s.API("admin", AdminPassword) }

// AdminSubject is the administrator as the services see them.
func (s *Server) AdminSubject(t testing.TB) access.Subject {
	t.Helper()
	who, err := s.Core.Identity.Login(context.Background(), "admin", AdminPassword, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return who
}

// Image is a small random image.
func Image(t testing.TB) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push pushes img to repo:tag with basic credentials ("" user:
// anonymous), through the token flow, as a registry client does.
func (s *Server) Push(ctx context.Context, img v1.Image, repo, tag, user, password string) error {
	ref, err := name.ParseReference(s.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(auth(user, password)))
}

// Pull pulls repo:tag (or @digest).
func (s *Server) Pull(ctx context.Context, ref, user, password string) (v1.Image, error) {
	r, err := name.ParseReference(s.Host+"/"+ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	return remote.Image(r, remote.WithContext(ctx), remote.WithAuth(auth(user, password)))
}

func auth(user, password string) authn.Authenticator {
	if user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: user, Password: password}
}
