package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/testenv"
)

// rootlessHelper runs, in this test binary started by TestRootless as an
// unprivileged user, a Native sandbox on the root in $LADING_SANDBOX_ROOT,
// and prints what happened. With $LADING_SANDBOX_NOUSERNS it first forbids
// new user namespaces (in the user namespace it was started in) and then
// drops to uid 65534.
func rootlessHelper() {
	if os.Getenv("LADING_SANDBOX_NOUSERNS") != "" {
		if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
			fmt.Println("helper: limit user namespaces:", err)
			os.Exit(3)
		}
		if err := syscall.Setgid(65534); err != nil {
			fmt.Println("helper: setgid:", err)
			os.Exit(3)
		}
		if err := syscall.Setuid(65534); err != nil {
			fmt.Println("helper: setuid:", err)
			os.Exit(3)
		}
	}
	code, err := sandbox.Native().Run(context.Background(), sandbox.Spec{
		Root:   os.Getenv("LADING_SANDBOX_ROOT"),
		Args:   []string{"/bin/sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '; echo x > /tmp/x && echo wrote; set -- /proc/[0-9]*; echo $#"},
		Stdout: os.Stdout, Stderr: os.Stdout,
	})
	if err != nil {
		fmt.Printf("error: %v (unsupported: %v)\n", err, errors.Is(err, errdefs.ErrUnsupported))
	}
	os.Exit(code & 0xff)
}

// rootlessSetup makes a copy of the test binary and an alpine root that
// uid 65534 can use, and returns the command that starts the helper.
func rootlessSetup(t *testing.T) *exec.Cmd {
	testenv.Root(t, "the test switches to an unprivileged user")
	// t.TempDir's parent is private to root: make one nobody can enter.
	dir, err := os.MkdirTemp("", "lading-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("cp", "-a", alpine(t), root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", root).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	bin := filepath.Join(dir, "sandbox.test")
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(dst, src)
	dst.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"LADING_SANDBOX_HELPER=rootless", "LADING_SANDBOX_ROOT=" + root, "PATH=/usr/bin:/bin"}
	return cmd
}

// TestRootless runs the native sandbox as an unprivileged user: in a new
// user namespace that maps the user to root.
func TestRootless(t *testing.T) {
	cmd := rootlessSetup(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "user namespaces") {
		testenv.Skip(t, "unprivileged user namespaces are not allowed here: %s", out)
	}
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if want := "0\n 0 65534 1\nwrote\n1\n"; string(out) != want {
		t.Errorf("rootless sandbox printed %q, want %q", out, want)
	}
}

// TestNoUserNamespaces checks the error without root and without user
// namespaces: it says what is missing.
func TestNoUserNamespaces(t *testing.T) {
	cmd := rootlessSetup(t)
	cmd.Env = append(cmd.Env, "LADING_SANDBOX_NOUSERNS=1")
	// Root of a user namespace of its own (where it may forbid new ones),
	// with uid 65534 mapped so that it can become it.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 65534, HostID: 65534, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 65534, HostID: 65534, Size: 1}},
	}
	out, _ := cmd.CombinedOutput()
	s := string(out)
	if !strings.Contains(s, "not running as root") || !strings.Contains(s, "user namespaces") || !strings.Contains(s, "unsupported: true") {
		t.Errorf("without root and user namespaces: %q", s)
	}
}
