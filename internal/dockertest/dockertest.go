// Package dockertest starts a real Docker Engine (Debian's docker.io
// dockerd) for tests of the docker-daemon transport: its own data root in a
// temp dir, the vfs storage driver, no networking, listening on a private
// unix socket. It needs root; tests skip with a message otherwise (fail
// under LADING_CI=1, see internal/testenv).
package dockertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/testenv"
)

// Start runs dockerd until the test ends and returns its DOCKER_HOST value.
func Start(t testing.TB) string {
	t.Helper()
	bin := testenv.Tool(t, "dockerd", "Debian's docker.io")
	testenv.Root(t, "dockerd")
	dir, err := os.MkdirTemp("", "lading-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command(bin,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock,
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs")
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return "unix://" + sock
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			testenv.Skip(t, "dockerd did not start here (a container without the privileges it needs?):\n%s", tail(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("%s", b)
}
