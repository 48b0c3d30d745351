// Package npm finds JavaScript packages: installed ones, from each
// node_modules/NAME/package.json (and node_modules/@SCOPE/NAME/package.json)
// at any depth, grouped under the outermost node_modules directory; and
// locked ones, from package-lock.json and npm-shrinkwrap.json (lockfile
// versions 1, 2 and 3), yarn.lock (classic and berry) and pnpm-lock.yaml
// (versions 5, 6 and 9), each lockfile its own target. Lockfiles inside
// node_modules are dependencies' own and are left alone.
//
// Aliased dependencies ("npm:real@1.0.0") are reported under the real
// package's name; links, workspaces and non-registry sources (file:, git)
// are left out of lockfiles, as they are not registry packages.
package npm

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds npm packages.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "npm" }
func (Analyzer) Version() int { return 1 }

// Size limits.
const (
	maxLockfile    = 256 << 20
	maxPackageJSON = 8 << 20
)

// Declares: the lockfiles (npm, yarn, pnpm) declare; package.json files
// under node_modules are installed packages.
func (Analyzer) Declares(p string) bool { return path.Base(p) != "package.json" }

func (Analyzer) Wants(p string, _ fs.FileInfo) bool {
	base := path.Base(p)
	switch base {
	case "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml":
		return !strings.Contains("/"+p, "/node_modules/")
	case "package.json":
		_, ok := nodeModulesPackage(p)
		return ok
	}
	return false
}

// nodeModulesPackage returns the outermost node_modules directory of a
// node_modules/NAME/package.json or node_modules/@SCOPE/NAME/package.json.
func nodeModulesPackage(p string) (root string, ok bool) {
	dir := path.Dir(p)
	parent := path.Dir(dir)
	if strings.HasPrefix(path.Base(parent), "@") {
		parent = path.Dir(parent)
	}
	if path.Base(parent) != "node_modules" || strings.HasPrefix(path.Base(dir), ".") {
		return "", false
	}
	i := strings.Index("/"+p, "/node_modules/")
	if i < 0 {
		return "", false
	}
	return strings.TrimPrefix(p[:max(i-1, 0)]+"/node_modules", "/"), true
}

func (Analyzer) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	base := path.Base(f.Path)
	if base == "package.json" {
		return packageJSON(f)
	}
	b, err := f.ReadAll(maxLockfile)
	if err != nil {
		return nil, err
	}
	var pkgs []pkg.Package
	typ := "npm"
	switch base {
	case "package-lock.json", "npm-shrinkwrap.json":
		pkgs, err = ParsePackageLock(b)
	case "yarn.lock":
		typ = "yarn"
		pkgs, err = ParseYarnLock(b)
	case "pnpm-lock.yaml":
		typ = "pnpm"
		pkgs, err = ParsePnpmLock(b)
	}
	if err != nil {
		return nil, err
	}
	for i := range pkgs {
		pkgs[i].Ecosystem = pkg.Npm
	}
	return &analyzer.Result{Type: typ, Packages: dedupe(pkgs)}, nil
}

// dedupe drops repeated name@version entries of a lockfile and sorts.
func dedupe(pkgs []pkg.Package) []pkg.Package {
	slices.SortFunc(pkgs, func(a, b pkg.Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		// A package that is a dev dependency somewhere and a production
		// one elsewhere is a production dependency.
		if a.Dev != b.Dev {
			if !a.Dev {
				return -1
			}
			return 1
		}
		return 0
	})
	return slices.CompactFunc(pkgs, func(a, b pkg.Package) bool { return a.Name == b.Name && a.Version == b.Version })
}

func packageJSON(f *analyzer.File) (*analyzer.Result, error) {
	root, _ := nodeModulesPackage(f.Path)
	b, err := f.ReadAll(maxPackageJSON)
	if err != nil {
		return nil, err
	}
	var m struct {
		Name     string          `json:"name"`
		Version  string          `json:"version"`
		License  json.RawMessage `json:"license"`
		Licenses json.RawMessage `json:"licenses"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	if m.Name == "" || m.Version == "" {
		return nil, nil // not a package manifest (a file of a package's own)
	}
	p := pkg.Package{Name: m.Name, Version: m.Version, Ecosystem: pkg.Npm}
	for _, l := range licenses(m.License, m.Licenses) {
		p.AddLicense(l)
	}
	return &analyzer.Result{Type: "node_modules", Target: root, Packages: []pkg.Package{p}}, nil
}

// licenses reads package.json's "license" (a string, or the old {"type"}
// object) and "licenses" (an array of strings or {"type"} objects).
func licenses(raws ...json.RawMessage) []string {
	var out []string
	var one func(raw json.RawMessage)
	one = func(raw json.RawMessage) {
		var s string
		var obj struct {
			Type string `json:"type"`
		}
		var arr []json.RawMessage
		switch {
		case len(raw) == 0:
		case json.Unmarshal(raw, &s) == nil:
			out = append(out, s)
		case json.Unmarshal(raw, &obj) == nil:
			out = append(out, obj.Type)
		case json.Unmarshal(raw, &arr) == nil:
			for _, r := range arr {
				one(r)
			}
		}
	}
	for _, r := range raws {
		one(r)
	}
	return out
}

type lockEntry struct {
	Version string          `json:"version"`
	Name    string          `json:"name"`
	Dev     bool            `json:"dev"`
	Link    bool            `json:"link"`
	License json.RawMessage `json:"license"`
}

// ParsePackageLock reads a package-lock.json or npm-shrinkwrap.json.
func ParsePackageLock(b []byte) ([]pkg.Package, error) {
	var lock struct {
		LockfileVersion int                        `json:"lockfileVersion"`
		Packages        map[string]json.RawMessage `json:"packages"`
		Dependencies    map[string]json.RawMessage `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("package-lock.json: %w", err)
	}
	var out []pkg.Package
	if len(lock.Packages) > 0 {
		// Versions 2 and 3: "node_modules/a/node_modules/b" paths.
		for key, raw := range lock.Packages {
			var e lockEntry
			if json.Unmarshal(raw, &e) != nil {
				continue
			}
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 || e.Link {
				continue // the root project, a workspace, or a link to one
			}
			name := key[i+len("node_modules/"):]
			if e.Name != "" {
				name = e.Name
			}
			if p, ok := registryPackage(name, e.Version); ok {
				p.Dev = e.Dev
				for _, l := range licenses(e.License) {
					p.AddLicense(l)
				}
				out = append(out, p)
			}
		}
		return out, nil
	}
	// Version 1: nested "dependencies".
	var walk func(deps map[string]json.RawMessage, depth int) error
	walk = func(deps map[string]json.RawMessage, depth int) error {
		if depth > 256 {
			return fmt.Errorf("package-lock.json: dependencies nested deeper than 256 levels")
		}
		for name, raw := range deps {
			var e struct {
				Version      string                     `json:"version"`
				Dev          bool                       `json:"dev"`
				Dependencies map[string]json.RawMessage `json:"dependencies"`
			}
			if json.Unmarshal(raw, &e) != nil {
				continue
			}
			if p, ok := registryPackage(name, e.Version); ok {
				p.Dev = e.Dev
				out = append(out, p)
			}
			if err := walk(e.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(lock.Dependencies, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// registryPackage makes a package of a name and a locked version, resolving
// an alias ("npm:real@1.0.0"); ok is false for versions that are not
// registry versions (file:, link:, git URLs, tarball URLs).
func registryPackage(name, version string) (pkg.Package, bool) {
	if rest, ok := strings.CutPrefix(version, "npm:"); ok {
		i := strings.LastIndexByte(rest, '@')
		if i <= 0 {
			return pkg.Package{}, false
		}
		name, version = rest[:i], rest[i+1:]
	}
	if name == "" || version == "" || strings.ContainsAny(version, ":/") {
		return pkg.Package{}, false
	}
	return pkg.Package{Name: name, Version: version, Ecosystem: pkg.Npm}, true
}

// splitNameSpec splits "name@spec" or "@scope/name@spec" at the first "@"
// after the name (a spec may hold another: "npm:real@1.0.0").
func splitNameSpec(s string) (name, spec string, ok bool) {
	if len(s) < 2 {
		return "", "", false
	}
	i := strings.IndexByte(s[1:], '@')
	if i < 0 {
		return "", "", false
	}
	return s[:i+1], s[i+2:], true
}
