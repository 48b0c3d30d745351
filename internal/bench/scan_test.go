package bench

import (
	"os/exec"
	"runtime"
	"testing"
)

// The peak resident set measured for a small child is the child's, not the
// bench's: after the bench process has held 256 MiB, a shell that holds
// a few MiB is measured at a few MiB (before, ru_maxrss of every child
// included the bench's own peak, which Linux folds in at exec).
func TestRunPeakIsTheChilds(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 256<<20)
	for i := range big {
		if i%4096 == 0 {
			big[i] = 1
		}
	}
	runtime.KeepAlive(big)
	big = nil
	peak, bench, err := runPeak(exec.Command(sh, "-c", "true"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("child peak %d KiB, bench %d KiB when it started the child", peak>>10, bench>>10)
	if peak == 0 || peak > 64<<20 {
		t.Errorf("peak RSS of `sh -c true` measured as %d MiB, want a few", peak>>20)
	}
}
