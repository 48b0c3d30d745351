package image

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/dockertest"
	"github.com/lading-dev/lading/internal/errdefs"
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
	if docker, err := exec.LookPath("docker"); err == nil {
		cmd := exec.Command(docker, "image", "inspect", "--format", "{{.Id}}", "lading/daemon-test:1")
		cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+host)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker image inspect: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want.String() {
			t.Errorf("docker sees image ID %s, want %s", got, want)
		}
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
