package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/lading-dev/lading/internal/overlaytest"
)

// The kernel is the truth for overlay rules: internal/overlaytest lays
// each layer out as a container runtime would and mounts them as one
// overlay, and the merged tree is compared entry for entry with what Export
// gives. Stacks where runtimes themselves disagree are left out
// (overlaytest.ErrNotApplicable).

// requireOverlay skips t (fails it under LADING_CI=1) unless this process
// can mount overlayfs and has GNU tar.
func requireOverlay(t *testing.T) { overlaytest.Require(t) }

// kernelTree returns the listing of the merged overlay of layers.
func kernelTree(t *testing.T, layers [][]byte, gz bool) ([]string, error) {
	st := overlaytest.New(t)
	for _, l := range layers {
		if err := st.Add(bytes.NewReader(l), gz); err != nil {
			return nil, err
		}
	}
	merged, unmount := st.Mount(false)
	defer unmount()
	return listDir(t, merged), nil
}

// extractTree extracts a merged tar with Extract and lists the result.
func extractTree(t testing.TB, merged []byte, opts ...Option) []string {
	t.Helper()
	d := t.TempDir()
	if err := Extract(context.Background(), d, bytes.NewReader(merged), opts...); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return listDir(t, d)
}

// gnuTarTree extracts a merged tar with GNU tar and lists the result.
func gnuTarTree(t testing.TB, merged []byte) []string {
	t.Helper()
	d := t.TempDir()
	cmd := exec.Command("tar", "--numeric-owner", "-xpf", "-", "-C", d)
	cmd.Stdin = bytes.NewReader(merged)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	return listDir(t, d)
}

// layerwiseTree applies layers one by one with Extract(ApplyWhiteouts).
func layerwiseTree(t testing.TB, layers [][]byte, opts ...Option) []string {
	t.Helper()
	d := t.TempDir()
	for i, l := range layers {
		o := append([]Option{ApplyWhiteouts(), WithName(fmt.Sprintf("layer %d/%d", i+1, len(layers)))}, opts...)
		if err := Extract(context.Background(), d, bytes.NewReader(l), o...); err != nil {
			t.Fatalf("Extract: %v", err)
		}
	}
	return listDir(t, d)
}

func TestKernelOverlay(t *testing.T) {
	requireOverlay(t)
	for _, tc := range stackCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := stackOf(t, tc.layers...)
			if tc.noKernel != "" {
				// The harness must see it too, and refuse the stack.
				if _, err := kernelTree(t, layers, false); !errors.Is(err, overlaytest.ErrNotApplicable) {
					t.Errorf("the kernel harness compares a stack it should refuse (%s): %v", tc.noKernel, err)
				}
				return
			}
			kernel, err := kernelTree(t, layers, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(tc.want, kernel); diff != "" {
				t.Errorf("the test's expectation differs from the kernel (-want +kernel):\n%s", diff)
			}
			merged, err := export(t, layers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(kernel, extractTree(t, merged)); diff != "" {
				t.Errorf("Export+Extract differs from the kernel (-kernel +ours):\n%s", diff)
			}
			if diff := cmpLines(kernel, gnuTarTree(t, merged)); diff != "" {
				t.Errorf("Export+tar -x differs from the kernel (-kernel +ours):\n%s", diff)
			}
			if diff := cmpLines(kernel, layerwiseTree(t, layers)); diff != "" {
				t.Errorf("Extract(ApplyWhiteouts) layer by layer differs from the kernel (-kernel +ours):\n%s", diff)
			}
		})
	}
}

// TestKernelRandomStacks compares Export with the kernel on stacks made from
// a fixed random sequence by the generator FuzzOverlay uses.
func TestKernelRandomStacks(t *testing.T) {
	requireOverlay(t)
	n := 300
	if testing.Short() {
		n = 30
	}
	r := rand.New(rand.NewPCG(2024, 1))
	var compared, exportErr, noKernel int
	for i := range n {
		data := make([]byte, 3*(3+r.IntN(18)))
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		layers := opStack(t, data)
		merged, err := export(t, layers, AllowDevices())
		if err != nil {
			exportErr++
			continue
		}
		kernel, err := kernelTree(t, layers, false)
		if errors.Is(err, overlaytest.ErrNotApplicable) {
			if testing.Verbose() {
				t.Logf("stack %d: %v", i, err)
			}
			noKernel++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		compared++
		if diff := cmpLines(kernel, extractTree(t, merged, AllowDevices())); diff != "" {
			t.Errorf("stack %d (fuzz input %v): Export+Extract differs from the kernel (-kernel +ours):\n%s", i, data, diff)
		}
	}
	t.Logf("%d stacks: %d compared with the kernel, %d refused by Export, %d not applicable", n, compared, exportErr, noKernel)
	if compared < n/2 {
		t.Errorf("only %d of %d stacks compared", compared, n)
	}
}
