// Package testenv is the one way a test says that it cannot run here: a tool,
// a server, the corpus or a privilege is missing. Locally such a test is
// skipped with a message naming what is missing and how to get it; under
// LADING_CI=1 (set by .ci/run) it fails instead, so that a green CI run
// cannot hide truth it did not check.
//
// Skips that are part of a test's design (testing.Short, a platform the
// feature does not exist on) use t.Skip directly; everything that a CI
// machine is expected to provide goes through this package.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (LADING_CI=1), where nothing may
// be skipped for want of a tool, a server, the corpus or a privilege.
func CI() bool { return os.Getenv("LADING_CI") == "1" }

// Skip skips t with the formatted reason, or fails it under CI.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("LADING_CI=1: would skip: %s", msg)
	}
	t.Skip(msg)
}

// Tool returns the path of the executable name, or skips t (fails under
// CI) saying that it is missing and, when pkg is not empty, which package
// provides it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if pkg != "" {
			Skip(t, "%s not found in PATH (install %s; .ci/run does)", name, pkg)
		}
		Skip(t, "%s not found in PATH", name)
	}
	return p
}

// Root skips t (fails under CI) unless the test runs as root; why says what
// root is needed for.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root: %s", why)
	}
}
