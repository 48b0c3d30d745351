package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
)

// TestBuildInterruptedInRun interrupts `lading build` (this test binary run
// as lading) while a RUN step runs, with SIGINT and with SIGKILL: no image
// is stored, no overlay mount is left in this mount namespace (RUN's
// mounts live in the build's own namespace), and no process of the step
// survives.
func TestBuildInterruptedInRun(t *testing.T) {
	testenv.Root(t, "RUN steps need root here")
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			root := t.TempDir()
			marker := "lading-interrupt-" + filepath.Base(root)
			dir := writeContext(t, map[string]string{
				"Dockerfile": "ARG BASE\nFROM $BASE\nRUN touch /started && sleep 300 && echo " + marker + "\n",
			})
			cmd := exec.Command(os.Args[0], "--root", root, "--progress", "none", "build", "--build-arg", "BASE=oci-archive:"+base, "-t", "example.com/never:1", dir)
			cmd.Env = append(os.Environ(), "LADING_TEST_MAIN=1")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for {
				m, _ := filepath.Glob(filepath.Join(root, "layers", "tmp", "*", "upper", "started"))
				if len(m) > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the RUN step never started")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil {
				t.Fatal("the interrupted build succeeded")
			}
			// The step's processes die with the build (give the kernel a moment).
			var left []string
			for i := 0; i < 50; i++ {
				if left = processesWith(marker); len(left) == 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("processes of the step still run: %v", left)
			}
			if m := mountsBelow(t, root); len(m) > 0 {
				t.Errorf("mounts left in this namespace: %v", m)
			}
			st, err := store.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			idx, err := st.Index(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range idx.Manifests {
				if d.Annotations[store.RefNameAnnotation] == "example.com/never:1" {
					t.Errorf("the interrupted build stored its image")
				}
			}
		})
	}
}

func mountsBelow(t *testing.T, dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// processesWith lists processes whose command line contains s.
func processesWith(s string) []string {
	ds, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err == nil && strings.Contains(string(b), s) && !strings.Contains(string(b), "-test.") {
			out = append(out, d)
		}
	}
	return out
}
