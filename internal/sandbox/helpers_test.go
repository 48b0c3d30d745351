package sandbox_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestMain lets Native start this test binary as a sandbox's init.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if os.Getenv("LADING_SANDBOX_HELPER") == "rootless" {
		rootlessHelper()
	}
	code := m.Run()
	if base.dir != "" {
		os.RemoveAll(base.dir)
	}
	os.Exit(code)
}

var base struct {
	once sync.Once
	dir  string
	err  error
}

// alpine returns a fresh, writable copy of the root file system of the
// corpus image alpine-3.9 (busybox, musl).
func alpine(t *testing.T) string {
	t.Helper()
	src := corpustest.Image(t, "alpine-3.9.oci.tar")
	base.once.Do(func() {
		base.dir, base.err = os.MkdirTemp("", "lading-sandbox-test-")
		if base.err != nil {
			return
		}
		base.err = exportImage(filepath.Join(base.dir, "root"), "oci-archive:"+src+":3.9.6")
	})
	if base.err != nil {
		t.Fatal(base.err)
	}
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", filepath.Join(base.dir, "root"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

// alpineB is alpine for benchmarks: the shared copy, not a fresh one.
func alpineB(b *testing.B) string {
	b.Helper()
	src := corpustest.Image(b, "alpine-3.9.oci.tar")
	base.once.Do(func() {
		base.dir, base.err = os.MkdirTemp("", "lading-sandbox-test-")
		if base.err != nil {
			return
		}
		base.err = exportImage(filepath.Join(base.dir, "root"), "oci-archive:"+src+":3.9.6")
	})
	if base.err != nil {
		b.Fatal(base.err)
	}
	return filepath.Join(base.dir, "root")
}

func exportImage(dir, ref string) error {
	ctx := context.Background()
	r, err := image.Parse(ref)
	if err != nil {
		return err
	}
	src, err := image.Open(ctx, r)
	if err != nil {
		return err
	}
	defer src.Close()
	img, err := src.Select(nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(image.Export(ctx, pw, ref, img)) }()
	err = layer.Extract(ctx, dir, pr)
	pr.CloseWithError(err)
	return err
}

type runner struct {
	name string
	new  func(t *testing.T) sandbox.Runner
}

// runners are the runtimes the tests run on: the native sandbox, and runc
// (Debian's package) where it is installed.
var runners = []runner{
	{"native", func(t *testing.T) sandbox.Runner {
		testenv.Root(t, "the sandbox makes namespaces and mounts")
		return sandbox.Native()
	}},
	{"native-chroot", func(t *testing.T) sandbox.Runner {
		testenv.Root(t, "the sandbox makes namespaces and mounts")
		return sandbox.Native(sandbox.WithChroot())
	}},
	{"runc", func(t *testing.T) sandbox.Runner {
		testenv.Root(t, "runc runs containers as root")
		p := testenv.Tool(t, "runc", "runc")
		return sandbox.Runc(p, sandbox.WithStateDir(t.TempDir()))
	}},
}

// eachRunner runs f as a subtest per runtime.
func eachRunner(t *testing.T, f func(t *testing.T, r sandbox.Runner)) {
	for _, rn := range runners {
		t.Run(rn.name, func(t *testing.T) { f(t, rn.new(t)) })
	}
}

type result struct {
	code           int
	stdout, stderr string
	err            error
}

func run(t *testing.T, r sandbox.Runner, s sandbox.Spec) result {
	t.Helper()
	var out, errb bytes.Buffer
	if s.Stdout == nil {
		s.Stdout = &out
	}
	if s.Stderr == nil {
		s.Stderr = &errb
	}
	code, err := r.Run(context.Background(), s)
	return result{code: code, stdout: out.String(), stderr: errb.String(), err: err}
}

// sh runs script with /bin/sh -c in a fresh alpine root.
func sh(t *testing.T, r sandbox.Runner, script string) result {
	t.Helper()
	return run(t, r, sandbox.Spec{Root: alpine(t), Args: []string{"/bin/sh", "-c", script}})
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
