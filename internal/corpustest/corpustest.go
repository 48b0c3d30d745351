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

	"github.com/lading-dev/lading/internal/corpus"
	"github.com/lading-dev/lading/internal/testenv"
)

// Dir returns the corpus directory or skips t.
func Dir(t testing.TB) string {
	t.Helper()
	d, tried := corpus.Find()
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
