package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"

	"github.com/lading-dev/lading/internal/dockertest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestDaemon writes an image into a real Docker Engine and reads it back,
// and checks with the docker CLI that the engine sees the same image ID.
func TestDaemon(t *testing.T) {
	host := dockertest.Start(t)
	ctx := context.Background()
	img := testImage(t, "daemon")
	ref, _ := Parse("docker-daemon:lading/daemon-test:1")
	if _, err := Write(ctx, ref, Artifact{Image: img}, WithDaemonHost(host), WithTempDir(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	docker := testenv.Tool(t, "docker", "docker.io")
	cmd := exec.Command(docker, "image", "inspect", "--format", "{{.Id}}", "lading/daemon-test:1")
	cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker image inspect: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want.String() {
		t.Errorf("docker sees image ID %s, want %s", got, want)
	}
	src, err := Open(ctx, ref, WithDaemonHost(host), WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if diff := cmp.Diff(identityOf(t, img), identityOf(t, src.Image)); diff != "" {
		t.Errorf("read back from the daemon (-want +got):\n%s", diff)
	}
	missing, _ := Parse("docker-daemon:lading/absent:1")
	if _, err := Open(ctx, missing, WithDaemonHost(host)); !errdefs.IsNotFound(err) {
		t.Errorf("absent image: %v, want not found", err)
	}
}

func TestDaemonAbsent(t *testing.T) {
	_, err := Open(context.Background(), Reference{Transport: Daemon, Name: "docker.io/library/x:1"}, WithDaemonHost("unix:///nonexistent/docker.sock"))
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "no Docker daemon") {
		t.Errorf("err = %v, want a clear unavailable error", err)
	}
}

// A daemon that refuses a load after reading the first bytes: the image
// write stops, and when Write returns, nothing of it is still running and
// its temp files are gone (before, the archive writer went on writing into
// the pipe nobody read, using the caller's progress reporter, after Write
// had returned).
func TestDaemonLoadRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/images/load" {
			http.NotFound(w, r)
			return
		}
		io.CopyN(io.Discard, r.Body, 4096)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"errorDetail":{"message":"no space left on device"}}`)
	}))
	defer srv.Close()
	img := gzipTestImage(t, 3, 2<<20)
	tmp := t.TempDir()
	before := goleak.IgnoreCurrent()
	ref, _ := Parse("docker-daemon:lading/refused:1")
	_, err := Write(context.Background(), ref, Artifact{Image: img}, WithDaemonHost("tcp://"+srv.Listener.Addr().String()), WithTempDir(tmp))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("Write = %v, want the daemon's error", err)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "dockerarchive.Write") {
		t.Errorf("the archive writer still runs after Write returned:\n%s", stacks)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	srv.Close()
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

// gzipTestImage is an image of n gzipped layers of size random bytes.
func gzipTestImage(t *testing.T, n int, size int64) v1.Image {
	t.Helper()
	img := empty.Image
	for range n {
		l, err := random.Layer(size, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}
