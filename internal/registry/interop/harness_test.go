package interop

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/testenv"
)

// tool finds a client in $PATH, $GOBIN, $GOPATH/bin or ~/go/bin, or skips.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	testenv.Skip(t, "%s not found in $PATH or $GOPATH/bin; .ci/setup.d/60-registry.sh installs it", name)
	return ""
}

// registry is a running "lading serve".
type registry struct {
	host string // host:port
	srv  *server.Server
	logs *bytes.Buffer
}

// The user the tests push and pull as (a system administrator, so that
// every client's every operation, the catalog included, is allowed: these
// tests are about the protocol; roles are tested in registry/server), and
// the projects their repositories live in.
const (
	user     = "ci"
	password = "Ci-password1"
	admin    = "Admin-password1"
)

var projects = []string{"skopeo", "podman", "buildah", "crane", "oras", "gc", "corpus", "conformance", "token"}

type setup func(t testing.TB, c *server.Config)

// withNoAuth serves an open registry (--no-auth).
func withNoAuth(_ testing.TB, c *server.Config) { c.Auth.Mode = "none" }

// withHtpasswd imports the user from an htpasswd file (bcrypt), as lading
// serve --htpasswd does.
func withHtpasswd(t testing.TB, c *server.Config) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(p, []byte(user+":"+string(h)+"\n"), 0o600)
	c.Auth.Htpasswd = p
}

// seed creates the user (unless imported), makes it an administrator, and
// creates the projects.
func seed(t testing.TB, srv *server.Server) {
	ctx := context.Background()
	c := srv.Core
	adm, err := c.Identity.Login(ctx, "admin", admin, "", false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Identity.UserByName(ctx, user)
	if err != nil {
		if u, err = c.Identity.CreateUser(ctx, adm, identity.UserCreate{Username: user, Email: "ci@example.com", Realname: "CI", Password: password}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Identity.SetSysAdmin(ctx, adm, u.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		if _, err := c.Projects.Create(ctx, adm, project.Create{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// withTLS serves HTTPS with a self-signed certificate for 127.0.0.1; it
// returns nothing, the certificate is in c.TLS.
func withTLS(t testing.TB, c *server.Config) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	c.TLS.Certificate = filepath.Join(dir, "tls.crt")
	c.TLS.Key = filepath.Join(dir, "tls.key")
	os.WriteFile(c.TLS.Certificate, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(c.TLS.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// start runs a registry on a loopback port until the test ends.
func start(t testing.TB, setups ...setup) *registry {
	t.Helper()
	var cfg server.Config
	for _, s := range setups {
		s(t, &cfg)
	}
	cfg.Auth.AdminPassword = admin
	cfg.Defaults(t.TempDir())
	logs := &bytes.Buffer{}
	srv, err := server.Open(context.Background(), cfg, server.Options{Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Mode != "none" {
		seed(t, srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	return &registry{host: l.Addr().String(), srv: srv, logs: logs}
}

// run runs a command and returns its standard output; it fails the test on
// an error, showing everything the command said.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	return runIn(t, "", env, name, args...)
}

// runIn is run in the directory dir.
func runIn(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tryIn(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func try(env []string, name string, args ...string) (string, error) {
	return tryIn("", env, name, args...)
}

func tryIn(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// ociLayout writes an OCI image layout holding one image, tagged tag, with
// random layers; it returns the directory and the image's digest.
func ociLayout(t testing.TB, tag string, layers ...int64) (string, string) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, size := range layers {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

// tarOf is a tar archive holding one file.
func tarOf(t testing.TB, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write([]byte(content))
	tw.Close()
	return b.Bytes()
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
