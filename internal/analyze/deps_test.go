package analyze

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The analyzers import only the analyzer contract, the package model, the
// error classes, the standard library and the parsing libraries listed
// here; nothing under analyze imports the CLI, the report writers or the
// scanner.
func TestAnalyzerDependencies(t *testing.T) {
	const mod = "github.com/lading-dev/lading/"
	allowedInternal := []string{mod + "internal/analyze/analyzer", mod + "internal/pkg", mod + "internal/errdefs"}
	allowedExternal := []string{"github.com/BurntSushi/toml", "go.yaml.in/yaml/v3", "golang.org/x/mod/modfile"}
	dirs, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(dirs, ".") {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() || d == "testdata" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(d, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, banned := range []string{"internal/cli", "internal/report", "internal/scan", "internal/match", "internal/registry"} {
					if strings.HasPrefix(p, mod+banned) {
						t.Errorf("%s imports %s", f, p)
					}
				}
				if d == "." || d == "analyzer" {
					continue // the driver imports the analyzers, the layer walker, the cache
				}
				switch {
				case strings.HasPrefix(p, mod):
					if !slices.Contains(allowedInternal, p) {
						t.Errorf("analyzer %s imports %s", f, p)
					}
				case strings.Contains(strings.Split(p, "/")[0], "."):
					if !slices.Contains(allowedExternal, p) {
						t.Errorf("analyzer %s imports %s (add it to the list if it is meant to be)", f, p)
					}
				}
			}
		}
	}
}
