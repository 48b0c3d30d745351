package cli

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// writeAtomically replaces a file the way configuration management does:
// a new file renamed over the old one.
func writeAtomically(t *testing.T, p string, b []byte) {
	t.Helper()
	tmp := p + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// htpasswdFile is an htpasswd file's content for user/password pairs.
func htpasswdFile(t *testing.T, pairs ...string) []byte {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(pairs[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", pairs[i], h)
	}
	return []byte(b.String())
}

// selfSigned writes a certificate for 127.0.0.1 named cn, and its key.
func selfSigned(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	writeAtomically(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// tlsConn is one client connection, kept open across requests.
type tlsConn struct {
	c  *tls.Conn
	br *bufio.Reader
}

func dialTLS(t *testing.T, addr string) *tlsConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test checks the certificate itself
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsConn{c: c, br: bufio.NewReader(c)}
}

// subject is the common name of the certificate the server presented.
func (tc *tlsConn) subject() string {
	return tc.c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// get sends GET /v2/ on the connection with basic credentials and returns
// the status.
func (tc *tlsConn) get(t *testing.T, user, pass string) int {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if _, err := fmt.Fprintf(tc.c, "GET /v2/ HTTP/1.1\r\nHost: registry\r\nAuthorization: Basic %s\r\n\r\n", auth); err != nil {
		t.Fatalf("the connection is gone: %v", err)
	}
	resp, err := http.ReadResponse(tc.br, nil)
	if err != nil {
		t.Fatalf("the connection is gone: %v", err)
	}
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	resp.Body.Close()
	return resp.StatusCode
}

// getPath sends GET path on the connection and returns the status and
// the body.
func (tc *tlsConn) getPath(t *testing.T, path string) (int, string) {
	t.Helper()
	if _, err := fmt.Fprintf(tc.c, "GET %s HTTP/1.1\r\nHost: registry\r\n\r\n", path); err != nil {
		t.Fatalf("the connection is gone: %v", err)
	}
	resp, err := http.ReadResponse(tc.br, nil)
	if err != nil {
		t.Fatalf("the connection is gone: %v", err)
	}
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	resp.Body.Close()
	return resp.StatusCode, body.String()
}

// TestServeReload sends SIGHUP to a running "lading serve": it reloads the
// TLS certificate without dropping connections, the settings the
// configuration file fixes, and imports the htpasswd file's new users;
// it logs what changed, and keeps what it has when a new file is bad.
func TestServeReload(t *testing.T) {
	root := t.TempDir()
	pw := filepath.Join(root, "htpasswd")
	crt, key := filepath.Join(root, "tls.crt"), filepath.Join(root, "tls.key")
	cfg := filepath.Join(root, "registry.yaml")
	writeAtomically(t, pw, htpasswdFile(t, "alice", "alice-pw", "carol", "carol-pw"))
	writeAtomically(t, cfg, []byte("settings: {banner_message: first}\n"))
	selfSigned(t, crt, key, "lading-first")
	p := startServe(t, root, "--config", cfg, "--htpasswd", pw, "--tls-cert", crt, "--tls-key", key)
	addr := strings.TrimPrefix(p.base, "https://")
	old := dialTLS(t, addr)
	if got := old.subject(); got != "lading-first" {
		t.Fatalf("certificate %q", got)
	}
	if got := old.get(t, "alice", "alice-pw"); got != http.StatusOK {
		t.Fatalf("alice before the reload: %d", got)
	}
	if _, body := old.getPath(t, "/api/v2.0/systeminfo"); !strings.Contains(body, `"banner_message":"first"`) {
		t.Fatalf("systeminfo before the reload: %s", body)
	}
	// bob arrives in the file; a new certificate; a new banner.
	writeAtomically(t, pw, htpasswdFile(t, "bob", "bob-pw", "carol", "carol-pw"))
	writeAtomically(t, cfg, []byte("settings: {banner_message: second}\n"))
	selfSigned(t, crt, key, "lading-second")
	mark := len(p.stderr.String())
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, regexp.MustCompile(`htpasswd imported: 1 new users.*users=bob`), mark)
	p.waitLog(t, regexp.MustCompile(`settings reloaded: 1 fixed by the configuration`), mark)
	p.waitLog(t, regexp.MustCompile(`TLS certificate reloaded: CN=lading-second, not after \d{4}-`), mark)
	// The connection opened before the reload still works, and sees bob;
	// alice's account stays (the file is imported, accounts live in the
	// database).
	for user, want := range map[string]int{"bob": http.StatusOK, "alice": http.StatusOK, "dave": http.StatusUnauthorized} {
		if got := old.get(t, user, user+"-pw"); got != want {
			t.Errorf("%s on the old connection: %d, want %d", user, got, want)
		}
	}
	fresh := dialTLS(t, addr)
	if got := fresh.subject(); got != "lading-second" {
		t.Errorf("a new connection is served certificate %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := fresh.getPath(t, "/api/v2.0/systeminfo")
		if strings.Contains(body, `"banner_message":"second"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the banner did not change: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Bad files: the registry keeps what it has and says why.
	writeAtomically(t, pw, []byte("this line has no hash\n"))
	writeAtomically(t, crt, []byte("not a certificate"))
	mark = len(p.stderr.String())
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, regexp.MustCompile(`htpasswd import failed.*line 1`), mark)
	p.waitLog(t, regexp.MustCompile(`TLS certificate reload failed, keeping CN=lading-second`), mark)
	if got := fresh.get(t, "bob", "bob-pw"); got != http.StatusOK {
		t.Errorf("bob after a bad reload: %d", got)
	}
	if got := dialTLS(t, addr).subject(); got != "lading-second" {
		t.Errorf("certificate after a bad reload: %q", got)
	}
}
