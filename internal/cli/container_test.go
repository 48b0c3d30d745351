package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/treetest"
)

// containerLading is a lading root with the corpus image alpine-3.9 pulled
// as alpine:3.9.
func containerLading(t *testing.T) *lading {
	t.Helper()
	testenv.Root(t, "containers run in namespaces over overlayfs")
	src := corpustest.Image(t, "alpine-3.9.oci.tar")
	l := newLading(t)
	l.ok("pull", "oci-archive:"+src+":3.9.6", "alpine:3.9")
	return l
}

func TestRunCommand(t *testing.T) {
	l := containerLading(t)
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "f"), []byte("from the host\n"), 0o644)
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		out   string
	}{
		{"exit code", []string{"alpine:3.9", "sh", "-c", "echo hi; exit 3"}, "", 3, "hi\n"},
		{"stdin with -i", []string{"-i", "alpine:3.9", "cat"}, "typed", 0, "typed"},
		{"no stdin without -i", []string{"alpine:3.9", "cat"}, "typed", 0, ""},
		{"options", []string{"-e", "A=1", "-w", "/tmp/w", "-u", "nobody", "-v", vol + ":/data:ro", "--hostname", "h", "alpine:3.9",
			"sh", "-c", "echo $A; pwd; id -u; hostname; cat /data/f; touch /data/g 2>/dev/null || echo ro"}, "", 0,
			"1\n/tmp/w\n65534\nh\nfrom the host\nro\n"},
		{"entrypoint", []string{"--entrypoint", "/bin/echo", "alpine:3.9", "a", "b"}, "", 0, "a b\n"},
		{"image from an archive", []string{"oci-archive:" + corpustest.Image(t, "alpine-3.9.oci.tar") + ":3.9.6", "echo", "ok"}, "", 0, "ok\n"},
		{"image Cmd", []string{"alpine:3.9"}, "", 0, ""},
		{"tty", []string{"-t", "alpine:3.9", "tty"}, "", 0, "/dev/pts/0\r\n"},
		{"runc", []string{"--runtime", "runc", "alpine:3.9", "sh", "-c", "echo $((6*7))"}, "", 0, "42\n"},
		{"not found", []string{"alpine:3.9", "nosuchcommand"}, "", 127, ""},
		{"bad network", []string{"--network", "bridge", "alpine:3.9"}, "", exitUsage, ""},
		{"relative volume", []string{"-v", "data:/data", "alpine:3.9"}, "", exitUsage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "runc" {
				testenv.Tool(t, "runc", "runc")
			}
			l.stdin = tc.stdin
			out, errs, code := l.run(append([]string{"run", "--rm"}, tc.args...)...)
			if code != tc.code || out != tc.out {
				t.Errorf("exit %d, stdout %q; want %d, %q\nstderr: %s", code, out, tc.code, tc.out, errs)
			}
		})
	}
	l.stdin = ""
	if out := l.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("--rm left containers: %q", out)
	}
}

func TestContainerWorkflow(t *testing.T) {
	l := containerLading(t)
	script := "echo x > /x; rm /etc/motd; rm -rf /etc/apk && mkdir /etc/apk; ln -s /x /etc/link"
	l.ok("run", "--name", "box", "alpine:3.9", "sh", "-c", script)
	ps := l.ok("ps", "-a")
	if !strings.Contains(ps, "box") || !strings.Contains(ps, "Exited (0)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	if out := l.ok("ps"); strings.Contains(out, "box") {
		t.Errorf("ps lists a stopped container:\n%s", out)
	}
	want := "C /etc\nC /etc/apk\nD /etc/apk/arch\nD /etc/apk/keys\nD /etc/apk/protected_paths.d\nD /etc/apk/repositories\nD /etc/apk/world\nA /etc/link\nD /etc/motd\nA /x\n"
	if diff := cmp.Diff(want, l.ok("diff", "box")); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
	id := strings.TrimSpace(l.ok("commit", "-m", "made by a test", "-c", `CMD ["cat", "/x"]`, "-c", "ENV MADE=1", "box", "example/box:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	if out := l.ok("run", "--rm", "example/box:1"); out != "x\n" {
		t.Errorf("run of the committed image: %q", out)
	}
	// What docker history shows.
	hist := l.ok("history", "--no-trunc", "example/box:1")
	if !strings.Contains(hist, "made by a test") || !strings.Contains(hist, script) {
		t.Errorf("history:\n%s", hist)
	}
	// The container's file system and the committed image's are the same.
	a, b := filepath.Join(t.TempDir(), "c")+"/", filepath.Join(t.TempDir(), "i")+"/"
	l.ok("export", "box", "-o", a)
	l.ok("export", "example/box:1", "-o", b)
	treetest.Equal(t, treetest.Snapshot(t, a, treetest.NoDirTimes()), treetest.Snapshot(t, b, treetest.NoDirTimes()), "export of the container vs export of the committed image")

	// skopeo reads the committed image in the store.
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	out, err := exec.Command(skopeo, "inspect", "--config", "oci:"+l.root+":docker.io/example/box:1").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var cfg struct {
		Config struct{ Cmd, Env []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct{ Comment string }
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != 2 || !slicesContain(cfg.Config.Env, "MADE=1") || cfg.History[len(cfg.History)-1].Comment != "made by a test" {
		t.Errorf("skopeo inspect --config: %s", out)
	}

	if _, errs, code := l.run("run", "--name", "box", "alpine:3.9", "true"); code == 0 || !strings.Contains(errs, "already in use") {
		t.Errorf("a second container named box: exit %d, %s", code, errs)
	}
	if out := l.ok("rm", "box"); out != "box\n" {
		t.Errorf("rm printed %q", out)
	}
	if _, _, code := l.run("rm", "box"); code != exitError {
		t.Errorf("rm of a removed container: exit %d", code)
	}
	if out := l.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("ps -a after rm: %q", out)
	}
	noMounts(t, l.root)
}

func slicesContain(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCommitRootfs commits a root file system changed outside lading.
func TestCommitRootfs(t *testing.T) {
	l := containerLading(t)
	dir := filepath.Join(t.TempDir(), "rootfs") + "/"
	l.ok("export", "alpine:3.9", "-o", dir)
	os.WriteFile(filepath.Join(dir, "etc/added"), []byte("added\n"), 0o640)
	os.RemoveAll(filepath.Join(dir, "usr/share"))
	os.Symlink("added", filepath.Join(dir, "etc/link"))
	l.ok("commit", "--rootfs", dir, "--base", "alpine:3.9", "-c", "USER nobody", "example/patched:1")
	got := filepath.Join(t.TempDir(), "got") + "/"
	l.ok("export", "example/patched:1", "-o", got)
	treetest.Equal(t, treetest.Snapshot(t, dir, treetest.NoDirTimes()), treetest.Snapshot(t, got, treetest.NoDirTimes()), "export of the committed image vs the directory")
	if out := l.ok("run", "--rm", "example/patched:1", "id", "-un"); out != "nobody\n" {
		t.Errorf("USER change: %q", out)
	}
	if _, _, code := l.run("commit", "--rootfs", dir, "example/x:1"); code != exitUsage {
		t.Errorf("--rootfs without --base: exit %d", code)
	}
}

// TestPodmanRunsCommitted has podman pull the committed image out of the
// store (as an OCI layout) and run it.
func TestPodmanRunsCommitted(t *testing.T) {
	podman := testenv.Tool(t, "podman", "podman")
	l := containerLading(t)
	l.ok("run", "--name", "box", "alpine:3.9", "sh", "-c", "echo podman-sees-this > /x")
	id := strings.TrimSpace(l.ok("commit", "-c", `CMD ["cat", "/x"]`, "box", "example/box:1"))
	dir := t.TempDir()
	// Debian's podman asks for rlimits this machine may not grant (EPERM
	// from runc); keep them modest.
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n"), 0o644)
	p := func(args ...string) string {
		t.Helper()
		base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}
		cmd := exec.Command(podman, append(base, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// newLading points DOCKER_CONFIG at an empty directory; podman wants a file there.
	os.WriteFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), []byte("{}"), 0o600)
	// skopeo copies the image out of the store into a docker-archive,
	// which podman loads.
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	archive := filepath.Join(dir, "box.tar")
	if out, err := exec.Command(skopeo, "copy", "--quiet", "oci:"+l.root+":docker.io/example/box:1", "docker-archive:"+archive+":example/box:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	p("load", "-q", "-i", archive)
	if out := p("image", "inspect", "--format", "{{.ID}}", "example/box:1"); !strings.Contains(out, strings.TrimPrefix(id, "sha256:")) {
		t.Errorf("podman image inspect: ID %q, want %s", out, id)
	}
	if out := p("run", "--rm", "--network", "none", "example/box:1"); !strings.Contains(out, "podman-sees-this") {
		t.Errorf("podman run: %q", out)
	}
}

// TestRunKilled kills `lading run` with SIGKILL: the container's processes
// die with it, and rm works (detaching the mount it left).
func TestRunKilled(t *testing.T) {
	for _, runtime := range []string{"native", "runc"} {
		t.Run(runtime, func(t *testing.T) {
			if runtime == "runc" {
				testenv.Tool(t, "runc", "runc")
			}
			l := containerLading(t)
			n := strconv.Itoa(100000 + rand.IntN(900000))
			cmd := exec.Command(os.Args[0], "--root", l.root, "--progress", "none", "run", "--name", "k", "--runtime", runtime, "alpine:3.9", "sleep", n)
			cmd.Env = append(os.Environ(), "LADING_TEST_MAIN=1")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for sleeping(n) == 0 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the container did not start")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if out := l.ok("ps"); !strings.Contains(out, " k\n") || !strings.Contains(out, "Up ") {
				t.Errorf("ps while running:\n%s", out)
			}
			if _, errs, code := l.run("rm", "k"); code == 0 || !strings.Contains(errs, "running") {
				t.Errorf("rm of a running container: exit %d, %s", code, errs)
			}
			cmd.Process.Kill()
			cmd.Wait()
			if runtime == "native" {
				// The sandbox's init dies with its parent.
				for i := 0; sleeping(n) > 0 && i < 100; i++ {
					time.Sleep(50 * time.Millisecond)
				}
				if sleeping(n) > 0 {
					t.Errorf("the container's process outlived lading run")
				}
			}
			if out := l.ok("ps", "-a"); !strings.Contains(out, "Exited (-1)") {
				t.Errorf("ps -a after the kill:\n%s", out)
			}
			l.ok("rm", "k")
			if sleeping(n) > 0 {
				t.Errorf("the container's process outlived rm")
			}
			noMounts(t, l.root)
		})
	}
}

// sleeping counts the processes running "sleep n".
func sleeping(n string) int {
	es, _ := os.ReadDir("/proc")
	c := 0
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == "sleep\x00"+n+"\x00" {
			c++
		}
	}
	return c
}

// noMounts fails if anything is mounted at or below dir.
func noMounts(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && (fs[4] == dir || strings.HasPrefix(fs[4], dir+"/")) {
			t.Errorf("still mounted: %s", fs[4])
		}
	}
}

// TestRunInteractiveTerminal runs `lading run -it` on a terminal (a pty
// the test holds): lading puts it in raw mode, gives the container its
// size, and restores it afterwards.
func TestRunInteractiveTerminal(t *testing.T) {
	l := containerLading(t)
	master, slave := hostPty(t)
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil || strings.Contains(out.String(), "done-marker") {
				return
			}
		}
	}()
	code := make(chan int, 1)
	go func() {
		code <- Run(context.Background(), []string{"--root", l.root, "--progress", "none", "run", "--rm", "-it", "alpine:3.9", "/bin/sh"}, slave, slave, slave)
	}()
	master.Write([]byte("stty size; tty; echo done-$((1+1))-marker; exit 5\n"))
	var c int
	select {
	case c = <-code:
	case <-time.After(60 * time.Second):
		t.Fatal("lading run -it did not end")
	}
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	<-read
	if c != 5 {
		t.Errorf("exit code %d, want 5", c)
	}
	for _, want := range []string{"40 120", "/dev/pts/0", "done-2-marker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("terminal output lacks %q: %q", want, out.String())
		}
	}
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if *before != *after {
		t.Errorf("the terminal was not restored: %+v, was %+v", after, before)
	}
}

func hostPty(t *testing.T) (master, slave *os.File) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		t.Fatal(errno)
	}
	unix.SetNonblock(m, true) // so that read deadlines work
	master, slave = os.NewFile(uintptr(m), "master"), os.NewFile(s, "slave")
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

// TestRmiKeepsContainerImages: the last name of an image a container was
// made from is not removed without --force, and prune keeps the image for
// the container (commit still works) until the container is removed.
func TestRmiKeepsContainerImages(t *testing.T) {
	l := containerLading(t)
	l.ok("run", "--name", "box", "alpine:3.9", "true")
	l.ok("tag", "alpine:3.9", "other:1")
	l.ok("rmi", "other:1") // another name stays
	_, errs, code := l.run("rmi", "alpine:3.9")
	if code == 0 || !strings.Contains(errs, "box") || !strings.Contains(errs, "--force") {
		t.Fatalf("rmi of the image box uses: exit %d, %s", code, errs)
	}
	if out := l.ok("rmi", "--force", "alpine:3.9"); strings.Contains(out, "Deleted:") {
		t.Errorf("rmi --force deleted blobs of the container's image:\n%s", out)
	}
	if out := l.ok("prune"); !strings.Contains(out, "Deleted 0 blobs") {
		t.Errorf("prune deleted what the container uses:\n%s", out)
	}
	l.ok("commit", "box", "example/after:1") // reads the image's blobs
	l.ok("rm", "box")
	if out := l.ok("rmi", "example/after:1"); !strings.Contains(out, "Deleted:") {
		t.Errorf("rmi after the container is gone kept the blobs:\n%s", out)
	}
}
