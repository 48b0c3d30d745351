// Package corpustest finds the shared test corpus (real images and advisory
// feeds) for tests. The corpus lives outside the repository, at
// ../shared/corpus beside the checkout or wherever $LADING_CORPUS points; a
// test that needs it and does not find it is skipped (through internal/testenv,
// so it fails under LADING_CI=1) with a message that says where it looked.
package corpustest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-dev/lading/internal/testenv"
)

// Dir returns the corpus directory or skips t.
func Dir(t testing.TB) string {
	t.Helper()
	d, tried := find()
	if d == "" {
		testenv.Skip(t, "corpus not found (tried %v); set LADING_CORPUS to ../shared/corpus", tried)
	}
	return d
}

// Image returns the path of a corpus image file (such as
// "alpine-3.10.oci.tar") or skips t.
func Image(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(t), "images", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Skip(t, "corpus image %s: %v", name, err)
	}
	return p
}

// Lookup returns the corpus directory, or "" when there is none. It is for
// benchmarks and commands that are not tests.
func Lookup() string {
	d, _ := find()
	return d
}

func find() (string, []string) {
	var tried []string
	if env := os.Getenv("LADING_CORPUS"); env != "" {
		tried = append(tried, env)
		if isCorpus(env) {
			return env, tried
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", tried
	}
	// Walk up to the module root (the directory with go.mod), then look
	// beside it.
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "corpus")
			tried = append(tried, c)
			if isCorpus(c) {
				return c, tried
			}
			return "", tried
		}
		if filepath.Dir(d) == d {
			return "", tried
		}
	}
}

func isCorpus(d string) bool {
	st, err := os.Stat(filepath.Join(d, "images"))
	return err == nil && st.IsDir()
}
