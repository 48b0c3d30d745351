// Package s3test starts a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, installed by .ci/setup.d/60-registry.sh
// with go install) serving a temporary directory on a loopback port. A test
// that needs it and does not find the binary is skipped with a message.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry/storage/s3"
	"github.com/lading-dev/lading/internal/testenv"
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
}

// Binary returns the path of versitygw, or "" when it is not installed. It
// looks in $PATH, then in $GOBIN, $GOPATH/bin and ~/go/bin.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
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
		p := filepath.Join(d, "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// Start starts a server that lives until the test ends, or skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		testenv.Skip(t, "versitygw not found in $PATH or $GOPATH/bin; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (see .ci/setup.d/60-registry.sh)")
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", port),
		AccessKey: "lading-test",
		SecretKey: "lading-test-secret-" + randHex(8),
		Region:    "us-east-1",
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--port", s.Endpoint,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--quiet",
		"posix", "--sidecar", filepath.Join(dir, "meta"), filepath.Join(dir, "data"))
	os.MkdirAll(filepath.Join(dir, "meta"), 0o755)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Endpoint, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw did not listen on %s: %v\n%s", s.Endpoint, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Config returns a driver configuration for a bucket of this server; the
// bucket is created when missing.
func (s *Server) Config(t testing.TB, bucket, prefix string) s3.Config {
	t.Helper()
	c := s3.Config{
		Endpoint:  s.Endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    s.Region,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		PartSize:  s3.MinPartSize,
	}
	d, err := s3.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureBucket(context.Background(), s.Region); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	return c
}

// Driver returns a driver on a fresh random prefix of bucket.
func (s *Server) Driver(t testing.TB, bucket string) *s3.Driver {
	t.Helper()
	d, err := s3.New(s.Config(t, bucket, "t-"+randHex(6)+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
