// Package dotnet finds NuGet packages: those an application was built with,
// from its *.deps.json (libraries of type "package"), and locked ones, from
// packages.lock.json (every target framework's dependencies but project
// references).
package dotnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds NuGet packages.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "dotnet" }
func (Analyzer) Version() int { return 1 }

const maxSize = 64 << 20

// Declares: packages.lock.json declares; *.deps.json is what an
// application was built and deployed with.
func (Analyzer) Declares(p string) bool { return path.Base(p) == "packages.lock.json" }

func (Analyzer) Wants(p string, _ fs.FileInfo) bool {
	base := path.Base(p)
	return strings.HasSuffix(base, ".deps.json") || base == "packages.lock.json"
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(maxSize)
	if err != nil {
		return nil, err
	}
	var pkgs []pkg.Package
	typ := "dotnet-deps"
	if path.Base(f.Path) == "packages.lock.json" {
		typ = "nuget"
		pkgs, err = ParsePackagesLock(b)
	} else {
		pkgs, err = ParseDeps(b)
	}
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Type: typ, Packages: pkgs}, nil
}

// ParseDeps reads a *.deps.json.
func ParseDeps(b []byte) ([]pkg.Package, error) {
	var deps struct {
		Libraries map[string]struct {
			Type string `json:"type"`
		} `json:"libraries"`
	}
	if err := json.Unmarshal(b, &deps); err != nil {
		return nil, fmt.Errorf("deps.json: %w", err)
	}
	var out []pkg.Package
	for key, l := range deps.Libraries {
		if !strings.EqualFold(l.Type, "package") {
			continue
		}
		name, version, ok := strings.Cut(key, "/")
		if ok && name != "" && version != "" {
			out = append(out, pkg.Package{Name: name, Version: version, Ecosystem: pkg.NuGet})
		}
	}
	return out, nil
}

// ParsePackagesLock reads a packages.lock.json; a package locked for
// several target frameworks is reported once per version.
func ParsePackagesLock(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Dependencies map[string]map[string]struct {
			Type     string `json:"type"`
			Resolved string `json:"resolved"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("packages.lock.json: %w", err)
	}
	seen := map[string]bool{}
	var out []pkg.Package
	for _, deps := range lock.Dependencies {
		for name, d := range deps {
			if strings.EqualFold(d.Type, "Project") || d.Resolved == "" || seen[name+"@"+d.Resolved] {
				continue
			}
			seen[name+"@"+d.Resolved] = true
			out = append(out, pkg.Package{Name: name, Version: d.Resolved, Ecosystem: pkg.NuGet})
		}
	}
	return out, nil
}
