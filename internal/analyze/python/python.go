// Package python finds Python packages: installed distributions, from
// *.dist-info/METADATA, *.egg-info/PKG-INFO (or an *.egg-info file) and
// EGG-INFO/PKG-INFO of eggs, grouped under the directory that holds them
// (site-packages, dist-packages); and locked or pinned ones, from
// poetry.lock, Pipfile.lock, uv.lock and requirements files
// (requirements*.txt; only "==" and "===" pins name a version), each its own
// target.
//
// Names are reported as the distribution spells them; package URLs use the
// normalized name (PEP 503).
package python

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds Python packages.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "python" }
func (Analyzer) Version() int { return 1 }

// Size limits.
const (
	maxMetadata = 8 << 20
	maxLockfile = 64 << 20
)

// Declares: lockfiles and requirements files declare; dist-info, egg-info
// and eggs are installed packages.
func (Analyzer) Declares(p string) bool {
	base := path.Base(p)
	return base == "poetry.lock" || base == "Pipfile.lock" || base == "uv.lock" ||
		strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt")
}

func (Analyzer) Wants(p string, _ fs.FileInfo) bool {
	base := path.Base(p)
	dir := path.Base(path.Dir(p))
	switch {
	case base == "METADATA":
		return strings.HasSuffix(dir, ".dist-info")
	case base == "PKG-INFO":
		return strings.HasSuffix(dir, ".egg-info") || dir == "EGG-INFO"
	case strings.HasSuffix(base, ".egg-info"):
		return true // the single-file form distutils writes
	case base == "poetry.lock", base == "Pipfile.lock", base == "uv.lock":
		return true
	case strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt"):
		return true
	}
	return false
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	base := path.Base(f.Path)
	limit := int64(maxLockfile)
	installed := base == "METADATA" || base == "PKG-INFO" || strings.HasSuffix(base, ".egg-info")
	if installed {
		limit = maxMetadata
	}
	b, err := f.ReadAll(limit)
	if err != nil {
		return nil, err
	}
	if installed {
		p, ok := ParseMetadata(b)
		if !ok {
			return nil, fmt.Errorf("no Name and Version in the metadata")
		}
		// The target is the directory that holds the distributions.
		holder := path.Dir(f.Path)
		if base == "METADATA" || base == "PKG-INFO" {
			holder = path.Dir(holder)
		}
		if strings.HasSuffix(holder, ".egg") {
			holder = path.Dir(holder) // an egg: site-packages/x.egg/EGG-INFO
		}
		return &analyzer.Result{Type: "python-packages", Target: holder, Packages: []pkg.Package{p}}, nil
	}
	var pkgs []pkg.Package
	typ := ""
	switch {
	case base == "poetry.lock":
		typ = "poetry"
		pkgs, err = parsePoetry(b)
	case base == "uv.lock":
		typ = "uv"
		pkgs, err = parseUV(b)
	case base == "Pipfile.lock":
		typ = "pipenv"
		pkgs, err = parsePipfileLock(b)
	default:
		typ = "pip"
		pkgs = parseRequirements(b)
	}
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	for i := range pkgs {
		pkgs[i].Ecosystem = pkg.PyPI
	}
	return &analyzer.Result{Type: typ, Packages: pkgs}, nil
}

// ParseMetadata reads the core metadata of a distribution (METADATA,
// PKG-INFO: RFC 822 headers up to the first blank line): its Name,
// Version and licenses (License-Expression, else License when it is a
// short name rather than a license text, and the "License ::" classifiers).
func ParseMetadata(b []byte) (pkg.Package, bool) {
	p := pkg.Package{Ecosystem: pkg.PyPI}
	var license, expr string
	var classifiers []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxMetadata)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // the body (the description) follows
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "License" {
				license += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		last = k
		switch strings.ToLower(k) {
		case "name":
			p.Name = v
		case "version":
			p.Version = v
		case "license":
			license = v
		case "license-expression":
			expr = v
		case "classifier":
			if l, ok := strings.CutPrefix(v, "License :: "); ok {
				parts := strings.Split(l, " :: ")
				classifiers = append(classifiers, parts[len(parts)-1])
			}
		}
	}
	switch {
	case expr != "":
		p.AddLicense(expr)
	case license != "" && license != "UNKNOWN" && !strings.Contains(license, "\n") && len(license) < 100:
		p.AddLicense(license)
	}
	for _, c := range classifiers {
		p.AddLicense(c)
	}
	return p, p.Name != "" && p.Version != ""
}

func parsePoetry(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Package []struct {
			Name     string   `toml:"name"`
			Version  string   `toml:"version"`
			Category string   `toml:"category"`
			Groups   []string `toml:"groups"`
		} `toml:"package"`
	}
	if _, err := toml.Decode(string(b), &lock); err != nil {
		return nil, fmt.Errorf("poetry.lock: %w", err)
	}
	var out []pkg.Package
	for _, e := range lock.Package {
		if e.Name == "" || e.Version == "" {
			continue
		}
		dev := e.Category == "dev"
		if len(e.Groups) > 0 {
			dev = true
			for _, g := range e.Groups {
				if g == "main" {
					dev = false
				}
			}
		}
		out = append(out, pkg.Package{Name: e.Name, Version: e.Version, Dev: dev})
	}
	return out, nil
}

func parseUV(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Package []struct {
			Name    string         `toml:"name"`
			Version string         `toml:"version"`
			Source  map[string]any `toml:"source"`
		} `toml:"package"`
	}
	if _, err := toml.Decode(string(b), &lock); err != nil {
		return nil, fmt.Errorf("uv.lock: %w", err)
	}
	var out []pkg.Package
	for _, e := range lock.Package {
		if e.Name == "" || e.Version == "" {
			continue
		}
		// The project itself and local paths are not registry packages.
		if _, ok := e.Source["editable"]; ok {
			continue
		}
		if _, ok := e.Source["virtual"]; ok {
			continue
		}
		out = append(out, pkg.Package{Name: e.Name, Version: e.Version})
	}
	return out, nil
}

func parsePipfileLock(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Default map[string]struct {
			Version string `json:"version"`
		} `json:"default"`
		Develop map[string]struct {
			Version string `json:"version"`
		} `json:"develop"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("Pipfile.lock: %w", err)
	}
	var out []pkg.Package
	for name, e := range lock.Default {
		if v, ok := strings.CutPrefix(e.Version, "=="); ok && v != "" {
			out = append(out, pkg.Package{Name: name, Version: v})
		}
	}
	for name, e := range lock.Develop {
		if _, ok := lock.Default[name]; ok {
			continue
		}
		if v, ok := strings.CutPrefix(e.Version, "=="); ok && v != "" {
			out = append(out, pkg.Package{Name: name, Version: v, Dev: true})
		}
	}
	return out, nil
}

// pinRe matches "name[extras]==version" or "===version".
var pinRe = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$`)

func parseRequirements(b []byte) []pkg.Package {
	var out []pkg.Package
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // environment markers
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '-' {
			continue
		}
		if m := pinRe.FindStringSubmatch(line); m != nil {
			out = append(out, pkg.Package{Name: m[1], Version: m[2]})
		}
	}
	return out
}
