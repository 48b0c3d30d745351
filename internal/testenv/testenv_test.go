package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/testenv"
)

// TestSkipFailsUnderCI runs a test that would skip in a child process, once
// with LADING_CI=1 and once without, and checks the verdicts.
func TestSkipFailsUnderCI(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		testenv.Tool(t, "no-such-tool-for-lading-tests", "nothing")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"1", true, "LADING_CI=1: would skip: no-such-tool-for-lading-tests not found"},
		{"", false, "--- SKIP"},
	} {
		cmd := exec.Command(exe, "-test.run", "^TestSkipFailsUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "LADING_CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("LADING_CI=%q: failed=%v, want %v\n%s", tc.ci, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("LADING_CI=%q: output lacks %q:\n%s", tc.ci, tc.want, out)
		}
	}
}
