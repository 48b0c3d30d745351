package sandbox_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/testenv"
)

// BenchmarkRun times running /bin/true in a sandbox over the alpine root,
// beside two baselines from the same run: chroot(8) alone (a process and a
// chroot, no namespaces), and unshare(1) making the same namespaces in C
// (with a fresh /proc) before the chroot.
func BenchmarkRun(b *testing.B) {
	testenv.Root(b, "sandboxes need root")
	root := alpineB(b)
	ctx := context.Background()
	spec := sandbox.Spec{Root: root, Args: []string{"/bin/true"}}
	b.Run("native", func(b *testing.B) {
		r := sandbox.Native()
		for i := 0; i < b.N; i++ {
			if code, err := r.Run(ctx, spec); err != nil || code != 0 {
				b.Fatal(code, err)
			}
		}
	})
	b.Run("runc", func(b *testing.B) {
		p := testenv.Tool(b, "runc", "runc")
		r := sandbox.Runc(p, sandbox.WithStateDir(b.TempDir()))
		for i := 0; i < b.N; i++ {
			if code, err := r.Run(ctx, spec); err != nil || code != 0 {
				b.Fatal(code, err)
			}
		}
	})
	b.Run("baseline-chroot", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if out, err := exec.Command("chroot", root, "/bin/true").CombinedOutput(); err != nil {
				b.Fatal(err, string(out))
			}
		}
	})
	b.Run("baseline-unshare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			out, err := exec.Command("unshare", "--mount", "--pid", "--uts", "--ipc", "--net", "--fork", "--mount-proc="+root+"/proc", "chroot", root, "/bin/true").CombinedOutput()
			if err != nil {
				b.Fatal(err, string(out))
			}
		}
	})
}
