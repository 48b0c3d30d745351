// Package registrytest starts a real registry for tests: Debian's
// docker-registry (CNCF Distribution) on 127.0.0.1, with no auth, htpasswd
// basic auth, or the Docker token flow backed by a token server run in the
// test. Tests skip with a message when the docker-registry binary is absent.
package registrytest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/testenv"
)

// Auth selects how the registry authenticates.
type Auth int

// Auth modes.
const (
	None     Auth = iota
	Htpasswd      // basic auth against an htpasswd file
	Token         // bearer tokens from a token server
)

// Registry is a running registry.
type Registry struct {
	Host     string // 127.0.0.1:PORT
	User     string
	Password string
	Dir      string // its storage root
}

// Start runs docker-registry until the test ends.
func Start(t testing.TB, auth Auth) *Registry {
	t.Helper()
	bin := testenv.Tool(t, "docker-registry", "Debian's docker-registry")
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "data"), User: "alice", Password: "s3cret-pass"}
	port := freePort(t)
	r.Host = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Dir, r.Host)
	var front *httptest.Server
	switch auth {
	case Htpasswd:
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hp := filepath.Join(dir, "htpasswd")
		os.WriteFile(hp, []byte(r.User+":"+string(hash)+"\n"), 0o600)
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: lading-test\n    path: %s\n", hp)
	case Token:
		// The token endpoint shares the registry's host:port, as Harbor's
		// does (clients refuse token realms on other private addresses):
		// a front server answers /token and proxies the rest.
		ts := newTokenServer(t, r.User, r.Password, dir)
		backend := r.Host
		proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: backend})
		front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/token" {
				ts.ServeHTTP(w, req)
				return
			}
			proxy.ServeHTTP(w, req)
		}))
		front.Start()
		t.Cleanup(front.Close)
		r.Host = strings.TrimPrefix(front.URL, "http://")
		cfg += fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: lading-test-registry\n    issuer: lading-test\n    rootcertbundle: %s\n", front.URL, ts.certFile)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", cfgFile)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	backendHost := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + backendHost + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tokenServer issues the JWTs Distribution's token auth verifies: RS256,
// the signing certificate in the x5c header, the registry's service as
// audience, and the requested repository actions granted to the one user.
type tokenServer struct {
	http.Handler
	certFile string
	key      *rsa.PrivateKey
	certDER  []byte
}

func newTokenServer(t testing.TB, user, password, dir string) *tokenServer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lading-test token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, certDER: der, certFile: filepath.Join(dir, "token.pem")}
	os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	ts.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="lading-test"`)
			http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
			return
		}
		var access []map[string]any
		for _, scope := range r.URL.Query()["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) != 3 {
				continue
			}
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
		tok, err := ts.sign(r.URL.Query().Get("service"), u, access)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
	})
	return ts
}

func (ts *tokenServer) sign(service, subject string, access []map[string]any) (string, error) {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	now := time.Now()
	if access == nil {
		access = []map[string]any{}
	}
	claims, _ := json.Marshal(map[string]any{
		"iss": "lading-test", "sub": subject, "aud": service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": access,
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}
