package registry_test

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/lading-dev/lading"

// forbidden are the packages the registry must never depend on, even
// indirectly: the scanner (scan-on-push comes through registry.Notifier)
// and the command line.
var forbidden = []string{
	module + "/internal/analyze",
	module + "/internal/scan",
	module + "/internal/match",
	module + "/internal/vulndb",
	module + "/internal/report",
	module + "/internal/cli",
}

// TestDependencies walks the module-internal imports of every package under
// internal/registry (tests excluded) and fails on a forbidden one.
func TestDependencies(t *testing.T) {
	var roots []string
	filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() == "testdata" {
			return nil
		}
		roots = append(roots, module+"/internal/registry/"+filepath.ToSlash(p))
		return nil
	})
	seen := map[string]string{} // package -> who imported it
	queue := append([]string(nil), roots...)
	for _, r := range roots {
		seen[strings.TrimSuffix(r, "/.")] = "(root)"
	}
	for len(queue) > 0 {
		pkg := strings.TrimSuffix(queue[0], "/.")
		queue = queue[1:]
		dir := "../../" + strings.TrimPrefix(pkg, module+"/")
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				continue
			}
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range bp.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") {
					t.Errorf("%s imports %s (via %s)", pkg, imp, seen[pkg])
				}
			}
			if _, ok := seen[imp]; !ok {
				seen[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	if len(seen) < len(roots) {
		t.Fatalf("walked %d packages", len(seen))
	}
}
