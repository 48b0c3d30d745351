package sandbox_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/sandbox"
)

// TestEscape tries, from inside the sandbox, what would reach the host if
// the isolation failed. Each attempt must fail inside, and the host must be
// unchanged afterwards.
func TestEscape(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		t.Run("write outside the root", func(t *testing.T) { escapeWrite(t, r) })
		t.Run("read the host's /proc", func(t *testing.T) { escapeProc(t, r) })
		t.Run("mount", func(t *testing.T) { escapeMount(t, r) })
		t.Run("mknod", func(t *testing.T) { escapeMknod(t, r) })
		t.Run("fork bomb", func(t *testing.T) { escapeForkBomb(t, r) })
		t.Run("fill the disk", func(t *testing.T) { escapeFill(t, r) })
		t.Run("symlinks", func(t *testing.T) { escapeSymlinks(t, r) })
		t.Run("memory", func(t *testing.T) { escapeMemory(t, r) })
	})
}

// mustRun runs s and fails unless the process exits 0.
func mustRun(t *testing.T, r sandbox.Runner, s sandbox.Spec) result {
	t.Helper()
	if s.Root == "" {
		s.Root = alpine(t)
	}
	res := run(t, r, s)
	if res.err != nil || res.code != 0 {
		t.Fatalf("code %d, err %v\nstdout %q\nstderr %q", res.code, res.err, res.stdout, res.stderr)
	}
	noMountsBelow(t, s.Root)
	return res
}

// noMountsBelow fails if anything is still mounted at or below dir on the
// host.
func noMountsBelow(t *testing.T, dir string) {
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
			t.Errorf("left mounted on the host: %s", fs[4])
		}
	}
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Errorf("the sandbox made %s on the host", filepath.Join(dir, e.Name()))
	}
}

func escapeWrite(t *testing.T, r sandbox.Runner) {
	host := t.TempDir()
	root := alpine(t)
	script := fmt.Sprintf(`
mkdir -p %[1]s && echo pwned > %[1]s/1
echo pwned > /../../../..%[1]s/2
echo pwned > /proc/1/root/../../..%[1]s/3
ln -s / /tmp/up && echo pwned > /tmp/up/../..%[1]s/4
cd /proc/self/cwd/../../.. && echo pwned > .%[1]s/5
ls %[1]s | tr '\n' ' '`, host)
	res := mustRun(t, r, sandbox.Spec{Root: root, Args: []string{"/bin/sh", "-e", "-c", script}})
	if res.stdout != "1 2 3 4 5 " {
		t.Errorf("inside, %s has %q", host, res.stdout)
	}
	emptyDir(t, host)
	if _, err := os.Stat(filepath.Join(root, host, "5")); err != nil {
		t.Errorf("the writes did not land inside the root: %v", err)
	}
}

func escapeProc(t *testing.T, r sandbox.Runner) {
	secret := "lading-escape-secret-" + randHex()
	t.Setenv("LADING_ESCAPE_SECRET", secret)
	script := fmt.Sprintf(`
cat /proc/*/environ 2>/dev/null | tr '\0' '\n' | grep -c %[1]s
test -e /proc/%[2]d && echo host-pid-visible
cat /proc/1/environ | tr '\0' '\n' | grep -c ^LADING || true
set -- /proc/[0-9]*; echo $#
echo c > /proc/sysrq-trigger 2>/dev/null && echo sysrq
echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sysctl
true`, secret, os.Getpid())
	res := mustRun(t, r, sandbox.Spec{Args: []string{"/bin/sh", "-c", script}})
	if want := "0\n0\n1\n"; res.stdout != want {
		t.Errorf("inside: %q, want %q (no secret, no host pid, one process)", res.stdout, want)
	}
}

func escapeMount(t *testing.T, r sandbox.Runner) {
	script := `
mount -t tmpfs none /mnt 2>/dev/null && echo mounted-tmpfs
mount --bind /bin /mnt 2>/dev/null && echo bind-mounted
mount -o remount,rw /proc/sys 2>/dev/null && echo remounted
mount -t proc proc /mnt 2>/dev/null && echo proc
umount /proc 2>/dev/null && echo unmounted
unshare -U -r -m sh -c 'mount -t tmpfs none /mnt' 2>/dev/null && echo mounted-in-a-user-namespace
unshare -n true 2>/dev/null && echo unshared
true`
	res := mustRun(t, r, sandbox.Spec{Args: []string{"/bin/sh", "-c", script}})
	if res.stdout != "" {
		t.Errorf("inside: %q", res.stdout)
	}
}

func escapeMknod(t *testing.T, r sandbox.Runner) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	// The block device the host's root file system is on, and /dev/mem.
	maj, min := unix.Major(st.Dev), unix.Minor(st.Dev)
	script := fmt.Sprintf(`
mknod /tmp/disk b %d %d 2>/dev/null
head -c 512 /tmp/disk >/dev/null 2>&1 && echo read-disk
mknod /tmp/mem c 1 1 2>/dev/null
head -c 1 /tmp/mem >/dev/null 2>&1 && echo read-mem
mknod /dev/disk b %d %d 2>/dev/null
head -c 512 /dev/disk >/dev/null 2>&1 && echo read-disk-dev
true`, maj, min, maj, min)
	res := mustRun(t, r, sandbox.Spec{Args: []string{"/bin/sh", "-c", script}})
	if res.stdout != "" {
		t.Errorf("inside: %q", res.stdout)
	}
}

func escapeForkBomb(t *testing.T, r sandbox.Runner) {
	marker := "lading-forkbomb-" + randHex()
	// The shell stops at the first fork that fails; counting needs no fork.
	script := `(i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#`
	res := mustRun(t, r, sandbox.Spec{Args: []string{"/bin/sh", "-c", script, marker}, Limits: sandbox.Limits{Pids: 32}})
	n, err := strconv.Atoi(strings.TrimSpace(res.stdout))
	if err != nil || n > 32 || n < 20 {
		t.Errorf("inside: %q processes, want at most the limit of 32", res.stdout)
	}
	if left := hostProcesses(t, marker); left > 0 {
		t.Errorf("%d processes of the sandbox are still running on the host", left)
	}
}

// hostProcesses counts the host's processes whose command line has marker.
func hostProcesses(t *testing.T, marker string) int {
	es, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(b), marker) {
			n++
		}
	}
	return n
}

func escapeFill(t *testing.T, r sandbox.Runner) {
	root := alpine(t)
	script := `dd if=/dev/zero of=/data/fill bs=64k count=64 2>&1 | grep -o 'No space left on device' | head -1; du -k /data/fill | cut -f1`
	res := mustRun(t, r, sandbox.Spec{Root: root, Args: []string{"/bin/sh", "-c", script},
		Mounts: []sandbox.Mount{{Type: "tmpfs", Target: "/data", Size: 1 << 20}}})
	if want := "No space left on device\n1024\n"; res.stdout != want {
		t.Errorf("inside: %q, want %q", res.stdout, want)
	}
	emptyDir(t, filepath.Join(root, "data"))
}

func escapeSymlinks(t *testing.T, r sandbox.Runner) {
	host := t.TempDir()
	hostFile := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(hostFile, []byte("evil:x:4242:4242::/:/bin/sh\n"), 0o644)
	src := t.TempDir()
	root := alpine(t)
	for _, l := range [][2]string{
		{host, "mnt/evil"},                              // a mount target through it
		{"../../../../../.." + host, "mnt/rel"},         // a working directory through it
		{"/../../../.." + host + "/hosts", "etc/hosts"}, // a host-network file
	} {
		os.Remove(filepath.Join(root, l[1]))
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	res := mustRun(t, r, sandbox.Spec{
		Root: root, Dir: "/mnt/rel/work", Network: "host",
		Args:   []string{"/bin/sh", "-c", "pwd; touch /mnt/evil/sub/x && echo mounted"},
		Mounts: []sandbox.Mount{{Source: src, Target: "/mnt/evil/sub"}},
	})
	if want := host + "/work\nmounted\n"; res.stdout != want {
		t.Errorf("inside: %q, want %q", res.stdout, want)
	}
	emptyDir(t, host)
	if _, err := os.Stat(filepath.Join(src, "x")); err != nil {
		t.Errorf("the bind mount did not land where the symlink points inside the root: %v", err)
	}
	// A user name looked up through a symlinked /etc/passwd reads the
	// root's, never the host's.
	os.Remove(filepath.Join(root, "etc/passwd"))
	os.Symlink(hostFile, filepath.Join(root, "etc/passwd"))
	res = run(t, r, sandbox.Spec{Root: root, User: "evil", Args: []string{"/bin/true"}})
	if res.err == nil {
		t.Errorf("user evil from the host's file: code %d", res.code)
	}
}

func escapeMemory(t *testing.T, r sandbox.Runner) {
	// ulimit -v is a safety net should the cgroup limit not hold: awk
	// then fails with "out of memory" instead of being killed.
	script := `ulimit -v 1048576; awk 'BEGIN { s = "x"; while (1) s = s s }' 2>/dev/null; echo $?`
	res := mustRun(t, r, sandbox.Spec{Args: []string{"/bin/sh", "-c", script}, Limits: sandbox.Limits{Memory: 64 << 20}})
	if res.stdout != "137\n" {
		t.Errorf("inside: awk exited %q, want 137 (killed by the memory limit)", res.stdout)
	}
}

func randHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
