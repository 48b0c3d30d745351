package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/testenv"
)

// The real lading binary, built once for the tests that need a process of
// their own (signals, SIGKILL): go build of ./cmd/lading, as a user builds
// it.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// ladingBinary builds cmd/lading (once per test binary) and returns its
// path.
func ladingBinary(t *testing.T) string {
	t.Helper()
	goTool := testenv.Tool(t, "go", "golang")
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "lading-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "lading")
		cmd := exec.Command(goTool, "build", "-o", built.path, "github.com/lading-dev/lading/cmd/lading")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build ./cmd/lading: %v\n%s", built.err, built.out)
	}
	return built.path
}

// removeBinary deletes what ladingBinary built; TestMain calls it.
func removeBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// serveProcess is a running "lading serve".
type serveProcess struct {
	cmd    *exec.Cmd
	base   string // http(s)://host:port
	stderr *lockedBuffer
	done   chan struct{}
}

var servingURL = regexp.MustCompile(`serving on (https?://\S+)`)

// startServe starts the built binary as "lading --root root serve args..."
// on a loopback port and waits until it serves. The process is stopped
// (SIGTERM) when the test ends.
func startServe(t *testing.T, root string, args ...string) *serveProcess {
	t.Helper()
	bin := ladingBinary(t)
	p := &serveProcess{stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--root", root, "serve", "--address", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := servingURL.FindStringSubmatch(p.stderr.String()); m != nil {
			p.base = m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("lading serve exited: %s", p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lading serve did not start: %s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLog waits until the process has logged something matching re.
func (p *serveProcess) waitLog(t *testing.T, re *regexp.Regexp, after int) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		s := p.stderr.String()
		if m := re.FindString(s[after:]); m != "" {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("lading serve exited: %s", s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lading serve never logged %s: %s", re, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob pushes b monolithically with client c and returns the status.
func pushBlob(t *testing.T, c *http.Client, base, repo string, b []byte, user, pass string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, sha256Digest(b)), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Logf("push %s: %s %s", sha256Digest(b), resp.Status, strings.TrimSpace(body.String()))
	}
	return resp.StatusCode
}
