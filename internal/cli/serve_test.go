package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	servingOn = regexp.MustCompile(`serving on (http://\S+)`)
	metricsOn = regexp.MustCompile(`metrics on (http://\S+)`)
)

func TestServe(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--root", root, "serve", "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"}, nil, io.Discard, stderr)
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := servingOn.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Authentication is on by default: /v2/ challenges to the token
	// service, the API answers, the administrator's first password is in
	// a file only its owner reads.
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, `Bearer realm="`+base+`/service/token"`) {
		t.Errorf("GET /v2/: %s, challenge %q", resp.Status, ch)
	}
	if resp, err := http.Get(base + "/api/v2.0/ping"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v2.0/ping: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if st, err := os.Stat(filepath.Join(root, "registry", "initial-admin-password")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("initial admin password file: %v %v", st, err)
	}
	// --metrics-address: /metrics there, not on the registry's port.
	m := metricsOn.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics address printed: %s", stderr.String())
	}
	for u, status := range map[string]int{m[1]: http.StatusOK, base + "/metrics": http.StatusNotFound} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: %s, want %d", u, resp.Status, status)
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve exit code %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Errorf("no JSON access log on stderr: %s", stderr.String())
	}
	for _, p := range []string{"registry/meta.db", "registry/content"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("default layout: %v", err)
		}
	}

	var out bytes.Buffer
	if code := Run(context.Background(), []string{"--root", root, "serve", "gc", "--dry-run"}, nil, &out, io.Discard); code != exitOK {
		t.Errorf("serve gc exit code %d", code)
	}
	if !strings.HasPrefix(out.String(), "would delete 0 unreferenced blobs") {
		t.Errorf("serve gc --dry-run: %q", out.String())
	}
}

func TestServeBadInvocations(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"serve", "extra"}, exitUsage},
		{[]string{"serve", "--storage", "s3://bucket"}, exitUsage},
		{[]string{"serve", "--tls-cert", "x.pem"}, exitUsage},
		{[]string{"serve", "--anonymous-read"}, exitUsage},
		{[]string{"serve", "--config", filepath.Join(root, "missing.yaml")}, exitError},
		{[]string{"serve", "--address", "256.0.0.1:99999"}, exitError},
	} {
		var stderr bytes.Buffer
		code := Run(context.Background(), append([]string{"--root", root}, tc.args...), nil, io.Discard, &stderr)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, stderr.String())
		}
		// The error is the last line (a first start logs the
		// administrator's creation before).
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "lading: ") {
			t.Errorf("%v: stderr %q", tc.args, stderr.String())
		}
	}
}
